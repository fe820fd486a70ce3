"""The review page, the printable record and the API for attendance, circulation and action items."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from tikting.governance import services as GS
from tikting.governance.models import MeetingAction, ReviewMeeting, ReviewStatus
from tikting.improvement import services as S
from tikting.improvement.models import Action, Item
from tikting.test import ready_item

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()
DUE = TODAY + dt.timedelta(days=21)


@pytest.fixture
def meeting(cast) -> ReviewMeeting:
    return GS.create_review(actor=cast.manager, title="December review", scheduled_for=TODAY)


# --- The page -------------------------------------------------------------------------------------


def test_managers_record_attendance_on_the_page(meeting, cast, login):
    client = login(cast.manager)
    response = client.post(
        f"/governance/reviews/{meeting.pk}/attendance/",
        {"attendees": [cast.owner.pk, cast.contributor.pk], "apologies": [cast.viewer.pk], "version": 1},
    )
    assert response.status_code == 302
    meeting.refresh_from_db()
    assert set(meeting.attendees.all()) == {cast.owner, cast.contributor}
    page = client.get(meeting.get_absolute_url()).content.decode()
    assert f"{cast.viewer}</dd>" in page  # apologies
    assert "data-attendance-form" in page


def test_an_attendance_conflict_and_a_double_listing_are_refused_with_words(meeting, cast, login):
    client = login(cast.manager)
    GS.set_attendance(meeting, actor=cast.manager, attendees=[cast.owner], apologies=[])  # version 2 now
    stale = client.post(
        f"/governance/reviews/{meeting.pk}/attendance/", {"attendees": [cast.viewer.pk], "version": 1}
    )
    assert stale.status_code == 409
    assert "changed by someone else" in stale.content.decode()
    both = client.post(
        f"/governance/reviews/{meeting.pk}/attendance/",
        {"attendees": [cast.viewer.pk], "apologies": [cast.viewer.pk], "version": 2},
    )
    assert both.status_code == 422
    assert "listed as attending and as sending apologies" in both.content.decode()
    assert list(ReviewMeeting.objects.get(pk=meeting.pk).attendees.all()) == [cast.owner]


def test_freeze_and_circulate_from_the_page(meeting, cast, login):
    client = login(cast.manager)
    page = client.get(meeting.get_absolute_url()).content.decode()
    assert "Freeze and circulate the agenda" in page and "disabled" in page  # no attendees yet
    GS.set_attendance(meeting, actor=cast.manager, attendees=[cast.owner], apologies=[])
    response = client.post(f"/governance/reviews/{meeting.pk}/circulate/")
    assert response.status_code == 302
    meeting.refresh_from_db()
    assert meeting.status == ReviewStatus.CIRCULATED
    S.create_item(actor=cast.contributor, title="Came in late")
    page = client.get(meeting.get_absolute_url()).content.decode()
    assert "data-circulation" in page and str(cast.owner) in page
    assert "Came in late" in page and "added since circulation" in page
    agenda = client.get(f"/governance/agenda/?meeting={meeting.pk}").content.decode()
    assert "data-added-since-circulation" in agenda  # the row is marked on the live agenda
    # Invitees (and every reader) read the circulated agenda on the printable page
    printable = login(cast.owner).get(f"/governance/reviews/{meeting.pk}/print/").content.decode()
    assert "as circulated before the meeting" in printable and "Came in late" in printable


def test_action_items_from_the_page_with_their_state_and_links(meeting, cast, login):
    item = ready_item(cast)
    client = login(cast.manager)
    on_item = client.post(
        f"/governance/reviews/{meeting.pk}/actions/",
        {
            "title": "Call the vendor",
            "owner": cast.contributor.pk,
            "due_date": DUE.isoformat(),
            "item": item.ref,
        },
    )
    assert on_item.status_code == 302
    new = client.post(
        f"/governance/reviews/{meeting.pk}/actions/",
        {"title": "Automate reclaim", "owner": cast.owner.pk, "due_date": DUE.isoformat(), "item": ""},
    )
    assert new.status_code == 302
    action = Action.objects.get(title="Call the vendor")
    raised = Item.objects.get(title="Automate reclaim")
    S.update_action(action, actor=cast.contributor, done=True)
    page = login(cast.viewer).get(meeting.get_absolute_url()).content.decode()
    assert f'href="/register/{item.pk}/#actions"' in page and f'href="/register/{raised.pk}/"' in page
    assert 'data-action-state="done"' in page and "New: to assess" in page
    printable = login(cast.viewer).get(f"/governance/reviews/{meeting.pk}/print/").content.decode()
    assert "Call the vendor" in printable and "Automate reclaim" in printable


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ({"title": "X", "owner": "", "due_date": DUE.isoformat()}, "owner", "Choose who owns the action"),
        ({"title": "X", "due_date": "", "owner": "OWNER"}, "due_date", "Give the due date"),
        (
            {"title": "X", "due_date": DUE.isoformat(), "owner": "OWNER", "item": "INC-7"},
            "item",
            "not an item reference",
        ),
        (
            {"title": "X", "due_date": DUE.isoformat(), "owner": "OWNER", "item": "CI-99999"},
            "item",
            "No register item CI-99999",
        ),
    ],
)
def test_a_bad_action_item_is_refused_naming_the_field(meeting, cast, login, data, field, words):
    data = {k: (cast.owner.pk if v == "OWNER" else v) for k, v in data.items()}
    response = login(cast.manager).post(f"/governance/reviews/{meeting.pk}/actions/", data)
    assert response.status_code == 422
    assert words in response.content.decode()
    assert not MeetingAction.objects.exists()


@pytest.mark.parametrize("role", ["viewer", "contributor", "owner"])
def test_the_forms_are_for_managers_only(meeting, cast, login, role):
    client = login(getattr(cast, role))
    page = client.get(meeting.get_absolute_url()).content.decode()
    assert "data-attendance-form" not in page and "data-action-form" not in page
    assert "Freeze and circulate" not in page
    for path in ("attendance", "circulate", "actions"):
        assert client.post(f"/governance/reviews/{meeting.pk}/{path}/").status_code == 403


def test_a_closed_review_offers_no_forms_but_shows_the_record(meeting, cast, login):
    GS.set_attendance(meeting, actor=cast.manager, attendees=[cast.owner], apologies=[cast.viewer])
    GS.record_meeting_action(meeting, actor=cast.manager, title="Report back", owner=cast.owner, due_date=DUE)
    GS.hold_review(meeting, actor=cast.manager)
    GS.close_review(meeting, actor=cast.manager)
    page = login(cast.manager).get(meeting.get_absolute_url()).content.decode()
    assert "data-attendance-form" not in page and "data-action-form" not in page
    assert "Report back" in page and str(cast.viewer) in page


# --- The API --------------------------------------------------------------------------------------


def test_the_api_records_attendance_circulates_and_adds_action_items(meeting, cast, login):
    client = login(cast.manager)
    base = f"/api/governance/reviews/{meeting.pk}"
    response = client.put(
        f"{base}/attendance",
        {"attendees": [cast.owner.pk], "apologies": [cast.contributor.pk], "expected_version": 1},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert [u["id"] for u in body["attendees"]] == [cast.owner.pk]
    assert [u["id"] for u in body["apologies"]] == [cast.contributor.pk]
    stale = client.put(
        f"{base}/attendance",
        {"attendees": [], "apologies": [], "expected_version": 1},
        content_type="application/json",
    )
    assert stale.status_code == 409
    unknown = client.put(
        f"{base}/attendance", {"attendees": [999999], "apologies": []}, content_type="application/json"
    )
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["field"] == "attendees"

    circulated = client.post(f"{base}/circulate")
    assert circulated.status_code == 200
    body = circulated.json()
    assert body["status"] == "circulated" and body["circulated_at"]
    assert {r["name"] for r in body["circulated_to"]} == {str(cast.manager), str(cast.owner)}
    assert body["agenda"]["sections"]
    again = client.post(f"{base}/circulate")
    assert again.status_code == 422 and again.json()["detail"][0]["field"] == "status"

    item = ready_item(cast)
    created = client.post(
        f"{base}/actions",
        {
            "title": "Call the vendor",
            "owner_id": cast.contributor.pk,
            "due_date": DUE.isoformat(),
            "item_id": item.pk,
        },
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    out = created.json()
    assert (out["raised_item"], out["item"]["id"], out["state"]) == (False, item.pk, "open")
    assert out["action_id"] == Action.objects.get(title="Call the vendor").pk
    bad = client.post(
        f"{base}/actions",
        {"title": "X", "owner_id": cast.viewer.pk, "due_date": DUE.isoformat()},
        content_type="application/json",
    )
    assert bad.status_code == 422 and {e["field"] for e in bad.json()["detail"]} == {"owner_id"}
    detail = client.get(base).json()
    assert [a["title"] for a in detail["action_items"]] == ["Call the vendor"]


def test_the_review_gets_a_start_time_and_duration(cast, login):
    client = login(cast.manager)
    response = client.post(
        "/api/governance/reviews",
        {"title": "Timed", "start_time": "09:30", "duration_minutes": 90},
        content_type="application/json",
    )
    assert response.status_code == 201
    assert (response.json()["start_time"], response.json()["duration_minutes"]) == ("09:30:00", 90)
    too_long = client.post(
        "/api/governance/reviews", {"title": "Long", "duration_minutes": 900}, content_type="application/json"
    )
    assert too_long.status_code == 422
