"""Reviews are records (issue 9): a held review keeps its agenda and minutes as they were at the
meeting, minutes are edited until the review is closed and amended after, an acceptance needs a
minute line and a manager can undo one with a reason."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from tikting.core.exceptions import PermissionDeniedError
from tikting.governance import services as S
from tikting.governance.models import Minute, MinuteKind, ReviewStatus
from tikting.improvement import choices as C
from tikting.improvement import services as IS
from tikting.improvement.tests.test_api import Api, fields

pytestmark = pytest.mark.django_db


@pytest.fixture
def meeting(cast):
    return S.create_review(actor=cast.manager, scheduled_for=dt.date(2026, 11, 30))


@pytest.fixture
def new_item(cast):
    return IS.create_item(actor=cast.contributor, title="Self-service password reset")


def held(meeting, cast):
    return S.hold_review(meeting, actor=cast.manager)


def test_holding_a_review_freezes_its_agenda_and_the_print_reads_it(cast, login, meeting, new_item):
    S.record_minute(meeting, actor=cast.manager, item=new_item, kind="note", text="Discussed")
    meeting = held(meeting, cast)
    section = next(s for s in meeting.agenda["sections"] if s["key"] == "assess")
    assert section["count"] == 1 and section["items"][0]["title"] == "Self-service password reset"
    # The register moves on after the meeting.
    IS.update_item(new_item, actor=cast.manager, title="Password reset portal")
    IS.create_item(actor=cast.contributor, title="Submitted after the meeting")
    page = login(cast.viewer).get(f"/governance/reviews/{meeting.pk}/print/").content.decode()
    assert 'data-agenda="frozen"' in page
    assert "Self-service password reset" in page
    assert "Password reset portal" not in page and "Submitted after the meeting" not in page


def test_a_planned_review_prints_todays_agenda_and_says_so(cast, login, meeting, new_item):
    page = login(cast.viewer).get(f"/governance/reviews/{meeting.pk}/print/").content.decode()
    assert 'data-agenda="live"' in page and "the review is not held yet" in page


def test_minutes_keep_the_item_as_it_was_when_they_were_taken(cast, login, meeting, new_item):
    S.record_minute(
        meeting, actor=cast.manager, item=new_item, kind="accept", text="Worth it", owner=cast.owner
    )
    IS.update_item(new_item, actor=cast.manager, title="Renamed later")
    minute = Minute.objects.get()
    assert (minute.item_ref, minute.item_title, minute.item_status) == (
        new_item.ref,
        "Self-service password reset",
        "vision",
    )
    page = login(cast.viewer).get(f"/governance/reviews/{meeting.pk}/").content.decode()
    assert "Self-service password reset" in page and "Renamed later" not in page
    body = Api(cast.viewer).get(f"/governance/reviews/{meeting.pk}").json()
    assert body["minutes"][0]["item_title"] == "Self-service password reset"


def test_minutes_are_edited_until_the_review_is_closed_then_amended(cast, meeting, new_item):
    minute = S.record_minute(meeting, actor=cast.manager, item=new_item, kind="note", text="Frist draft")
    held(meeting, cast)
    assert S.edit_minute(minute, actor=cast.manager, text="First draft").text == "First draft"
    with pytest.raises(ValidationError) as err:
        S.amend_minute(minute, actor=cast.manager, text="x")
    assert "edit the minute itself" in err.value.message_dict["status"][0]
    S.close_review(meeting, actor=cast.manager)
    with pytest.raises(ValidationError) as err:
        S.edit_minute(minute, actor=cast.manager, text="Rewritten history")
    assert "Record an amendment" in err.value.message_dict["status"][0]
    with pytest.raises(ValidationError):
        S.record_minute(meeting, actor=cast.manager, item=new_item, kind="note", text="late")
    with pytest.raises(ValidationError):
        S.update_review(meeting, actor=cast.manager, notes="changed later")
    amendment = S.amend_minute(minute, actor=cast.manager, text="Also: the desk agreed")
    minute.refresh_from_db()
    assert minute.text == "First draft"  # the minute stays as recorded
    assert (amendment.kind, amendment.amends, amendment.meeting) == (MinuteKind.AMEND, minute, meeting)
    with pytest.raises(PermissionDeniedError):
        S.amend_minute(minute, actor=cast.owner, text="mine")


def test_the_review_page_edits_then_amends_minutes(cast, login, meeting, new_item):
    minute = S.record_minute(meeting, actor=cast.manager, item=new_item, kind="note", text="Draft")
    client = login(cast.manager)
    client.post(
        f"/governance/reviews/{meeting.pk}/minutes/{minute.pk}/edit/", {f"minute{minute.pk}-text": "Final"}
    )
    minute.refresh_from_db()
    assert minute.text == "Final"
    held(meeting, cast)
    client.post(f"/governance/reviews/{meeting.pk}/close/")
    meeting.refresh_from_db()
    assert meeting.status == ReviewStatus.CLOSED and meeting.closed_at is not None
    page = client.get(f"/governance/reviews/{meeting.pk}/").content.decode()
    assert "Record the amendment" in page and "Save the minute" not in page
    client.post(
        f"/governance/reviews/{meeting.pk}/minutes/{minute.pk}/edit/",
        {f"minute{minute.pk}-text": "Corrected date"},
    )
    minute.refresh_from_db()
    assert minute.text == "Final" and minute.amendments.get().text == "Corrected date"
    assert (
        f'data-amendment="{minute.amendments.get().pk}"'
        in client.get(f"/governance/reviews/{meeting.pk}/").content.decode()
    )


def test_an_acceptance_needs_a_minute_line(cast, meeting, new_item, login):
    with pytest.raises(ValidationError) as err:
        S.record_minute(meeting, actor=cast.manager, item=new_item, kind="accept")
    assert err.value.message_dict["text"] == ["Say why: a 'Accept' minute needs a minute line."]
    new_item.refresh_from_db()
    assert new_item.status == C.Status.NEW
    response = Api(cast.manager).post(
        f"/governance/reviews/{meeting.pk}/minutes", {"item_id": new_item.pk, "kind": "accept"}
    )
    assert response.status_code == 422 and fields(response) == {"text"}


def test_a_manager_undoes_an_acceptance_with_a_reason(cast, meeting, new_item):
    accepted = S.record_minute(
        meeting, actor=cast.manager, item=new_item, kind="accept", text="Go", owner=cast.owner
    )
    held(meeting, cast)
    S.close_review(meeting, actor=cast.manager)
    with pytest.raises(PermissionDeniedError):
        S.undo_acceptance(accepted, actor=cast.owner, reason="mine")
    with pytest.raises(ValidationError) as err:
        S.undo_acceptance(accepted, actor=cast.manager, reason="")
    assert "reason" in err.value.message_dict
    undone = S.undo_acceptance(accepted, actor=cast.manager, reason="Duplicate of an older item")
    new_item.refresh_from_db()
    assert new_item.status == C.Status.NEW
    assert (undone.kind, undone.amends, undone.text) == (
        MinuteKind.UNACCEPT,
        accepted,
        "Duplicate of an older item",
    )
    with pytest.raises(ValidationError):
        S.undo_acceptance(accepted, actor=cast.manager, reason="again")


def test_reviews_are_held_closed_amended_and_undone_through_the_api(cast, meeting, new_item):
    api = Api(cast.manager)
    accepted = api.post(
        f"/governance/reviews/{meeting.pk}/minutes", {"item_id": new_item.pk, "kind": "accept", "text": "Go"}
    ).json()
    body = api.post(f"/governance/reviews/{meeting.pk}/hold").json()
    assert body["status"] == "held" and body["agenda"]["sections"][0]["key"] == "assess"
    edited = api.patch(f"/governance/reviews/{meeting.pk}/minutes/{accepted['id']}", {"text": "Go ahead"})
    assert edited.json()["text"] == "Go ahead"
    assert api.post(f"/governance/reviews/{meeting.pk}/close").json()["status"] == "closed"
    refused = api.patch(f"/governance/reviews/{meeting.pk}/minutes/{accepted['id']}", {"text": "again"})
    assert refused.status_code == 422 and "Record an amendment" in refused.json()["detail"][0]["message"]
    amendment = api.post(
        f"/governance/reviews/{meeting.pk}/minutes/{accepted['id']}/amendments", {"text": "Owner confirmed"}
    )
    assert amendment.status_code == 201 and amendment.json()["amends_id"] == accepted["id"]
    undone = api.post(
        f"/governance/reviews/{meeting.pk}/minutes/{accepted['id']}/undo-acceptance", {"reason": "Duplicate"}
    )
    assert undone.status_code == 201 and undone.json()["kind"] == "unaccept"
    assert Api(cast.owner).post(f"/governance/reviews/{meeting.pk}/close").status_code == 403
