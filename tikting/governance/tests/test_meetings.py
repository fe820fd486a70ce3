"""Review meetings as meetings: attendees and apologies, the agenda frozen and circulated before
the meeting (items added since kept beside it), and action items that land in the register."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.test import override_settings
from django.utils import timezone

from tikting.core.audit import history_for
from tikting.core.exceptions import ConflictError, PermissionDeniedError
from tikting.core.models import AuditEntry
from tikting.governance import services as S
from tikting.governance.models import MeetingAction, ReviewMeeting, ReviewStatus
from tikting.improvement import choices as C
from tikting.improvement import services as IS
from tikting.improvement.models import Action, Item
from tikting.test import make_user, ready_item

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()


@pytest.fixture
def meeting(cast) -> ReviewMeeting:
    return S.create_review(actor=cast.manager, title="December review", scheduled_for=TODAY)


# --- Attendance -----------------------------------------------------------------------------------


def test_attendance_is_recorded_with_its_history(meeting, cast):
    S.set_attendance(
        meeting, actor=cast.manager, attendees=[cast.owner, cast.contributor], apologies=[cast.viewer]
    )
    meeting.refresh_from_db()
    assert set(meeting.attendees.all()) == {cast.owner, cast.contributor}
    assert list(meeting.apologies.all()) == [cast.viewer]
    entry = AuditEntry.objects.filter(object_id=str(meeting.pk), message="Attendance recorded").get()
    assert entry.changes["apologies"] == [[], [str(cast.viewer)]]
    assert meeting.version == 2


def test_nobody_both_attends_and_sends_apologies(meeting, cast):
    with pytest.raises(ValidationError) as exc:
        S.set_attendance(meeting, actor=cast.manager, attendees=[cast.owner], apologies=[cast.owner])
    assert str(cast.owner) in exc.value.message_dict["apologies"][0]
    assert not meeting.attendees.exists()


def test_a_stale_attendance_edit_conflicts(meeting, cast):
    S.set_attendance(meeting, actor=cast.manager, attendees=[cast.owner], apologies=[], expected_version=1)
    with pytest.raises(ConflictError):
        S.set_attendance(
            meeting, actor=cast.manager, attendees=[cast.viewer], apologies=[], expected_version=1
        )
    assert list(ReviewMeeting.objects.get(pk=meeting.pk).attendees.all()) == [cast.owner]


def test_attendance_is_final_once_the_review_is_closed(meeting, cast):
    S.hold_review(meeting, actor=cast.manager)
    S.set_attendance(meeting, actor=cast.manager, attendees=[cast.owner], apologies=[])  # held: still open
    S.close_review(meeting, actor=cast.manager)
    with pytest.raises(ValidationError) as exc:
        S.set_attendance(meeting, actor=cast.manager, attendees=[], apologies=[cast.owner])
    assert "closed" in exc.value.message_dict["status"][0]


@pytest.mark.parametrize("role", ["viewer", "contributor", "owner"])
def test_only_managers_record_attendance(meeting, cast, role):
    with pytest.raises(PermissionDeniedError):
        S.set_attendance(meeting, actor=getattr(cast, role), attendees=[cast.owner], apologies=[])


# --- Freeze and circulate -------------------------------------------------------------------------


def test_circulating_needs_the_attendees_first(meeting, cast):
    with pytest.raises(ValidationError) as exc:
        S.circulate_agenda(meeting, actor=cast.manager)
    assert "attendees" in exc.value.message_dict
    assert ReviewMeeting.objects.get(pk=meeting.pk).status == ReviewStatus.PLANNED


def test_circulating_freezes_the_agenda_and_records_when_and_to_whom(meeting, cast):
    IS.create_item(actor=cast.contributor, title="Old request to assess")
    cast.owner.email = "olga@example.org"
    cast.owner.save()
    S.set_attendance(meeting, actor=cast.manager, attendees=[cast.owner, cast.contributor], apologies=[])
    before = timezone.now()
    meeting = S.circulate_agenda(
        meeting, actor=cast.manager, link="http://tk.example/governance/reviews/1/print/"
    )
    assert meeting.status == ReviewStatus.CIRCULATED
    assert meeting.circulated_at is not None and meeting.circulated_at >= before
    names = [r["name"] for r in meeting.circulated_to]
    assert names[0] == str(cast.manager)  # the chair, then the attendees
    assert set(names[1:]) == {str(cast.owner), str(cast.contributor)}
    assess = next(s for s in meeting.agenda["sections"] if s["key"] == "assess")
    assert [row["title"] for row in assess["items"]] == ["Old request to assess"]
    assert AuditEntry.objects.filter(
        object_id=str(meeting.pk), message__startswith="Agenda circulated to 3"
    ).exists()


def test_circulation_emails_the_attendees_with_an_address(meeting, cast):
    cast.owner.email = "olga@example.org"
    cast.owner.save()
    cast.contributor.email = ""
    cast.contributor.save()
    IS.create_item(actor=cast.contributor, title="Chatbot for resets")
    S.set_attendance(meeting, actor=cast.manager, attendees=[cast.owner, cast.contributor], apologies=[])
    meeting = S.circulate_agenda(meeting, actor=cast.manager, link="http://tk.example/r/1/print/")
    to = sorted(address for message in mail.outbox for address in message.to)
    assert to == sorted(a for a in ["olga@example.org", cast.manager.email] if a)
    body = mail.outbox[0].body
    assert "Chatbot for resets" in body and "http://tk.example/r/1/print/" in body
    assert mail.outbox[0].subject == "Agenda: December review"
    by_name = {r["name"]: r for r in meeting.circulated_to}
    assert by_name[str(cast.owner)]["emailed"] is True
    assert by_name[str(cast.contributor)]["emailed"] is False


@override_settings(
    EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend", EMAIL_HOST="127.0.0.1", EMAIL_PORT=9
)
def test_a_failed_send_is_recorded_not_raised(meeting, cast):
    """Port 9 (discard) refuses here: the circulation stands, nobody is marked e-mailed."""
    cast.owner.email = "olga@example.org"
    cast.owner.save()
    S.set_attendance(meeting, actor=cast.manager, attendees=[cast.owner], apologies=[])
    meeting = S.circulate_agenda(meeting, actor=cast.manager)
    assert meeting.status == ReviewStatus.CIRCULATED
    assert not any(r["emailed"] for r in meeting.circulated_to)
    entry = AuditEntry.objects.get(object_id=str(meeting.pk), message__startswith="Agenda circulated")
    assert "e-mail failed" in entry.message


def test_items_added_after_circulation_are_kept_beside_the_agenda(meeting, cast):
    IS.create_item(actor=cast.contributor, title="Before circulation")
    S.set_attendance(meeting, actor=cast.manager, attendees=[cast.owner], apologies=[])
    S.circulate_agenda(meeting, actor=cast.manager)
    IS.create_item(actor=cast.contributor, title="After circulation")
    S.record_meeting_action(
        meeting, actor=cast.manager, title="Raised here", owner=cast.owner, due_date=TODAY
    )
    meeting = S.hold_review(ReviewMeeting.objects.get(pk=meeting.pk), actor=cast.manager)
    assess = next(s for s in meeting.agenda["sections"] if s["key"] == "assess")
    assert [row["title"] for row in assess["items"]] == ["Before circulation"]  # not silently changed
    added = meeting.agenda["added_since_circulation"]
    assert [(s["key"], [r["title"] for r in s["items"]]) for s in added] == [
        ("assess", ["After circulation"])
    ]


def test_a_review_circulates_once_and_only_before_it_is_held(meeting, cast):
    S.set_attendance(meeting, actor=cast.manager, attendees=[cast.owner], apologies=[])
    S.circulate_agenda(meeting, actor=cast.manager)
    with pytest.raises(ValidationError, match="circulated on"):
        S.circulate_agenda(meeting, actor=cast.manager)
    S.hold_review(meeting, actor=cast.manager)
    with pytest.raises(ValidationError):
        S.circulate_agenda(meeting, actor=cast.manager)


def test_holding_without_circulating_still_freezes_at_the_meeting(meeting, cast):
    IS.create_item(actor=cast.contributor, title="Walk-in item")
    meeting = S.hold_review(meeting, actor=cast.manager)
    assert meeting.circulated_at is None
    assert "added_since_circulation" not in meeting.agenda
    assess = next(s for s in meeting.agenda["sections"] if s["key"] == "assess")
    assert [row["title"] for row in assess["items"]] == ["Walk-in item"]


# --- Action items ---------------------------------------------------------------------------------


def test_an_action_item_on_an_item_is_a_register_action(meeting, cast):
    item = ready_item(cast)
    due = TODAY + dt.timedelta(days=14)
    entry = S.record_meeting_action(
        meeting, actor=cast.manager, title="Call the vendor", owner=cast.contributor, due_date=due, item=item
    )
    action = Action.objects.get(item=item, title="Call the vendor")
    assert (action.owner, action.due_date) == (cast.contributor, due)
    assert (entry.action, entry.item, entry.raised_item, entry.item_ref) == (action, item, False, item.ref)
    assert entry.state() == ("open", "Open")
    # the register's history of the item has the action, the review's history the action item
    assert any(e.object_id == str(action.pk) for e in history_for(item))
    assert AuditEntry.objects.filter(
        object_id=str(entry.pk), message__startswith="Action item recorded"
    ).exists()
    IS.update_action(action, actor=cast.contributor, done=True)
    assert MeetingAction.objects.get(pk=entry.pk).state() == ("done", "Done")


def test_an_action_item_without_an_item_raises_a_new_register_item(meeting, cast):
    due = TODAY + dt.timedelta(days=30)
    entry = S.record_meeting_action(
        meeting, actor=cast.manager, title="Automate licence reclaim", owner=cast.owner, due_date=due
    )
    item = Item.objects.get(title="Automate licence reclaim")
    assert (item.status, item.owner, item.target_date) == (C.Status.NEW, cast.owner, due)
    assert entry.raised_item and entry.item == item and entry.action is None
    assert entry.state() == ("open", "New: to assess")
    assert item.submitted_by == cast.manager


def test_an_action_item_needs_an_owner_and_a_due_date_not_before_the_meeting(meeting, cast):
    with pytest.raises(ValidationError) as exc:
        S.record_meeting_action(meeting, actor=cast.manager, title="", owner=None, due_date=None)
    assert set(exc.value.message_dict) == {"title", "owner", "due_date"}
    with pytest.raises(ValidationError) as exc:
        S.record_meeting_action(
            meeting, actor=cast.manager, title="Late", owner=cast.owner, due_date=TODAY - dt.timedelta(days=1)
        )
    assert "before the meeting" in exc.value.message_dict["due_date"][0]
    assert not MeetingAction.objects.exists() and not Item.objects.filter(title="Late").exists()


def test_the_register_rules_apply_to_action_items(meeting, cast):
    item = ready_item(cast)
    viewer = make_user("vinnie", "viewer")
    with pytest.raises(ValidationError) as exc:  # a viewer cannot own work (improvement's rule)
        S.record_meeting_action(
            meeting, actor=cast.manager, title="Read it", owner=viewer, due_date=TODAY, item=item
        )
    assert "owner" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:  # a new item's owner has the owner role
        S.record_meeting_action(
            meeting, actor=cast.manager, title="New one", owner=cast.contributor, due_date=TODAY
        )
    assert "owner" in exc.value.message_dict
    assert not MeetingAction.objects.exists()


def test_no_action_items_once_the_review_is_closed(meeting, cast):
    S.hold_review(meeting, actor=cast.manager)
    S.close_review(meeting, actor=cast.manager)
    with pytest.raises(ValidationError, match="closed"):
        S.record_meeting_action(meeting, actor=cast.manager, title="Late", owner=cast.owner, due_date=TODAY)


@pytest.mark.parametrize("role", ["viewer", "contributor", "owner"])
def test_only_managers_record_action_items(meeting, cast, role):
    with pytest.raises(PermissionDeniedError):
        S.record_meeting_action(
            meeting, actor=getattr(cast, role), title="X", owner=cast.owner, due_date=TODAY
        )
