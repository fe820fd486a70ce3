import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from tikting.core.audit import history_for
from tikting.core.exceptions import PermissionDeniedError
from tikting.core.models import AuditEntry
from tikting.governance import services as S
from tikting.governance.models import Minute, ReviewStatus
from tikting.improvement import choices as C
from tikting.improvement import services as IS
from tikting.lib.display import when
from tikting.test import ready_item

pytestmark = pytest.mark.django_db


@pytest.fixture
def meeting(cast):
    return S.create_review(actor=cast.manager, scheduled_for=dt.date(2025, 3, 4))


@pytest.fixture
def new_item(cast):
    return IS.create_item(actor=cast.contributor, title="Self-service password reset")


def test_it_plans_a_review_named_after_the_month_with_the_actor_as_chair(meeting, cast):
    assert meeting.title == "Register review, March 2025"
    assert meeting.chair == cast.manager
    assert meeting.status == ReviewStatus.PLANNED
    assert AuditEntry.objects.filter(object_id=str(meeting.pk), action="create").exists()


@pytest.mark.parametrize("role", ["viewer", "contributor", "owner"])
def test_only_managers_plan_reviews(cast, role):
    with pytest.raises(PermissionDeniedError):
        S.create_review(actor=getattr(cast, role))


def test_admins_and_the_system_plan_reviews(cast):
    assert S.create_review(actor=cast.admin).pk
    assert S.create_review(actor=None).chair is None


def test_it_updates_and_holds_a_review(meeting, cast):
    meeting = S.update_review(meeting, actor=cast.manager, notes="Budget for Q2 agreed")
    assert meeting.notes == "Budget for Q2 agreed"
    meeting = S.hold_review(meeting, actor=cast.manager)
    assert meeting.status == ReviewStatus.HELD
    assert meeting.held_at is not None
    with pytest.raises(ValidationError) as err:
        S.hold_review(meeting, actor=cast.manager)
    assert "status" in err.value.message_dict


def test_update_review_rejects_unknown_fields_and_an_empty_title(meeting, cast):
    with pytest.raises(ValidationError) as err:
        S.update_review(meeting, actor=cast.manager, status="held")
    assert "status" in err.value.message_dict
    with pytest.raises(ValidationError) as err:
        S.update_review(meeting, actor=cast.manager, title="  ")
    assert "title" in err.value.message_dict


def test_owners_cannot_record_minutes(meeting, new_item, cast):
    with pytest.raises(PermissionDeniedError):
        S.record_minute(meeting, actor=cast.owner, item=new_item, kind="note", text="x")
    assert not Minute.objects.exists()


def test_a_note_is_recorded_on_the_item_timeline_and_changes_nothing(meeting, cast):
    item = ready_item(cast)
    minute = S.record_minute(meeting, actor=cast.manager, item=item, kind="note", text="Good progress")
    item.refresh_from_db()
    assert item.status == C.Status.PLAN
    assert minute.effect == ""
    assert minute.actor == cast.manager
    assert history_for(item).filter(object_id=str(minute.pk), message__contains="Note").exists()


def test_accept_minute_assesses_the_item_and_assigns_the_owner(meeting, new_item, cast):
    minute = S.record_minute(
        meeting, actor=cast.manager, item=new_item, kind="accept", text="Worth it", owner=cast.owner
    )
    new_item.refresh_from_db()
    assert new_item.status == C.Status.VISION
    assert new_item.owner == cast.owner
    assert new_item.assessed_by == cast.manager
    assert minute.effect == "Assessed: 1. Vision"


def test_defer_minute_needs_text_and_a_revisit_date(meeting, new_item, cast):
    with pytest.raises(ValidationError) as err:
        S.record_minute(meeting, actor=cast.manager, item=new_item, kind="defer")
    assert "text" in err.value.message_dict
    with pytest.raises(ValidationError) as err:
        S.record_minute(meeting, actor=cast.manager, item=new_item, kind="defer", text="No budget this year")
    # assess_item's error, under the minute's field names
    assert set(err.value.message_dict) == {"revisit_date"}
    assert not Minute.objects.exists()
    revisit = timezone.localdate() + dt.timedelta(days=90)
    minute = S.record_minute(
        meeting, actor=cast.manager, item=new_item, kind="defer", text="No budget", revisit_date=revisit
    )
    new_item.refresh_from_db()
    assert (new_item.status, new_item.revisit_date, new_item.assessment_reason) == (
        C.Status.DEFERRED,
        revisit,
        "No budget",
    )
    assert minute.effect == f"Assessed: Deferred until {when(revisit)}"


def test_reject_minute_rejects_with_its_text_as_reason(meeting, new_item, cast):
    S.record_minute(meeting, actor=cast.manager, item=new_item, kind="reject", text="Duplicate of CI-00001")
    new_item.refresh_from_db()
    assert new_item.status == C.Status.REJECTED
    assert new_item.assessment_reason == "Duplicate of CI-00001"


def test_assessment_kinds_are_refused_on_items_past_assessment(meeting, cast):
    item = ready_item(cast)
    with pytest.raises(ValidationError) as err:
        S.record_minute(meeting, actor=cast.manager, item=item, kind="reject", text="no")
    assert "kind" in err.value.message_dict


def test_assign_sets_the_owner(meeting, cast):
    item = ready_item(cast)
    minute = S.record_minute(meeting, actor=cast.manager, item=item, kind="assign", owner=cast.other_owner)
    item.refresh_from_db()
    assert item.owner == cast.other_owner
    assert minute.effect == f"Owner: {cast.other_owner}"


def test_assign_needs_an_owner_who_may_own(meeting, cast):
    item = ready_item(cast)
    with pytest.raises(ValidationError) as err:
        S.record_minute(meeting, actor=cast.manager, item=item, kind="assign")
    assert "owner" in err.value.message_dict
    with pytest.raises(ValidationError) as err:
        S.record_minute(meeting, actor=cast.manager, item=item, kind="assign", owner=cast.viewer)
    assert "owner" in err.value.message_dict


def test_unknown_kind_is_refused(meeting, new_item, cast):
    with pytest.raises(ValidationError) as err:
        S.record_minute(meeting, actor=cast.manager, item=new_item, kind="approve")
    assert "kind" in err.value.message_dict


def test_minutes_may_be_typed_up_after_the_review_was_held(meeting, new_item, cast):
    meeting = S.hold_review(meeting, actor=cast.manager)
    assert S.record_minute(meeting, actor=cast.manager, item=new_item, kind="continue").pk
