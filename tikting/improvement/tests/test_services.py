import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from tikting.core.audit import history_for
from tikting.core.exceptions import ConflictError, PermissionDeniedError
from tikting.core.models import StatusChange
from tikting.improvement import choices as C
from tikting.improvement import services as S
from tikting.improvement.models import Item
from tikting.test import ready_item

pytestmark = pytest.mark.django_db


def test_submitted_item_is_new_with_derived_priority(cast):
    item = S.create_item(actor=cast.contributor, title="Self-service password reset", impact=5, effort=1)
    assert item.status == C.Status.NEW
    assert item.quadrant == C.Quadrant.QUICK_WIN
    assert item.priority_score == 25
    assert item.submitted_by == cast.contributor
    assert history_for(item).filter(action="create").count() == 1


@pytest.mark.parametrize(
    ("impact", "effort", "quadrant"),
    [
        (5, 1, "quick_win"),
        (3, 3, "major_project"),
        (2, 2, "fill_in"),
        (1, 5, "thankless"),
        (2, 3, "thankless"),
    ],
)
def test_quadrants(impact, effort, quadrant):
    assert C.quadrant_for(impact, effort) == quadrant


def test_viewer_cannot_submit(cast):
    with pytest.raises(PermissionDeniedError):
        S.create_item(actor=cast.viewer, title="x")


def test_contributor_cannot_assign_owner(cast):
    with pytest.raises(PermissionDeniedError):
        S.create_item(actor=cast.contributor, title="x", owner=cast.owner)


def test_defer_needs_reason_and_future_revisit_date(cast):
    item = S.create_item(actor=cast.contributor, title="x")
    with pytest.raises(ValidationError) as err:
        S.assess_item(item, actor=cast.manager, decision="defer")
    assert set(err.value.message_dict) == {"reason", "revisit_date"}
    with pytest.raises(ValidationError) as err:
        S.assess_item(
            item, actor=cast.manager, decision="defer", reason="budget", revisit_date=timezone.localdate()
        )
    assert "revisit_date" in err.value.message_dict


def test_reject_needs_reason(cast):
    item = S.create_item(actor=cast.contributor, title="x")
    with pytest.raises(ValidationError) as err:
        S.assess_item(item, actor=cast.manager, decision="reject", reason="  ")
    assert "reason" in err.value.message_dict
    item = S.assess_item(item, actor=cast.manager, decision="reject", reason="duplicate of CI-1")
    assert item.status == C.Status.REJECTED


def test_only_managers_assess(cast):
    item = S.create_item(actor=cast.contributor, title="x")
    with pytest.raises(PermissionDeniedError):
        S.assess_item(item, actor=cast.owner, decision="accept")


def test_deferred_item_comes_back_on_revisit_date(cast):
    item = S.create_item(actor=cast.contributor, title="x")
    revisit = timezone.localdate() + dt.timedelta(days=10)
    S.assess_item(item, actor=cast.manager, decision="defer", reason="after migration", revisit_date=revisit)
    assert S.wake_deferred(as_of=revisit - dt.timedelta(days=1)) == 0
    assert S.wake_deferred(as_of=revisit) == 1
    item.refresh_from_db()
    assert item.status == C.Status.NEW


def test_acting_requires_owner_target_date_baseline_target(cast):
    item = S.create_item(actor=cast.contributor, title="x", vision="v")
    item = S.assess_item(item, actor=cast.manager, decision="accept")
    assert set(item.readiness_gaps()) == {"owner", "target_date", "baseline", "target"}
    S.add_indicator(item, actor=cast.manager, name="MTTR", baseline_value="8")
    item = S.transition_item(item, actor=cast.manager, to="current_state")
    item = S.transition_item(item, actor=cast.manager, to="target_state")
    with pytest.raises(ValidationError) as err:
        S.transition_item(item, actor=cast.manager, to="plan")
    assert "an indicator with a target" in str(err.value)
    indicator = item.indicators.get()
    S.update_indicator(indicator, actor=cast.manager, target_value="4")
    item = S.transition_item(item, actor=cast.manager, to="plan")
    with pytest.raises(ValidationError) as err:
        S.transition_item(item, actor=cast.manager, to="action")
    message = str(err.value)
    assert "an owner" in message and "a target date" in message and "planned action" in message


def test_steps_cannot_be_skipped(cast):
    item = S.create_item(actor=cast.contributor, title="x", vision="v")
    item = S.assess_item(item, actor=cast.manager, decision="accept")
    with pytest.raises(ValidationError) as err:
        S.transition_item(item, actor=cast.manager, to="action")
    assert "cannot go from" in str(err.value)


def test_full_lifecycle_with_evaluation_closure_and_follow_up(cast):
    item = ready_item(cast)
    item = S.transition_item(item, actor=cast.owner, to="action")
    with pytest.raises(ValidationError):
        S.transition_item(item, actor=cast.owner, to="evaluation")  # no measurement yet
    indicator = item.indicators.get()
    S.record_measurement(indicator, actor=cast.owner, value="7")
    S.update_action(item.actions.get(), actor=cast.owner, done=True)
    item = S.transition_item(item, actor=cast.owner, to="evaluation")
    item = S.evaluate_item(item, actor=cast.owner)
    assert item.evaluation_result == C.EvaluationResult.PARTLY
    assert item.realised_delta == Decimal("-3")
    item = S.transition_item(item, actor=cast.owner, to="action", reason="adjust")
    S.record_measurement(indicator, actor=cast.owner, value="5.5")
    item = S.transition_item(item, actor=cast.owner, to="evaluation")
    item = S.evaluate_item(item, actor=cast.owner)
    assert item.evaluation_result == C.EvaluationResult.ACHIEVED
    item = S.transition_item(item, actor=cast.owner, to="momentum")
    item = S.close_item(
        item,
        actor=cast.owner,
        outcome="successful",
        benefit_category="time_saved",
        lessons="Runbooks pay off",
        follow_ups=[{"title": "Runbooks for the VPN"}],
    )
    assert item.status == C.Status.CLOSED
    assert item.realised_delta == Decimal("-4.5")
    assert item.sustainment == C.Sustainment.HOLDING
    assert item.control_until == timezone.localdate() + dt.timedelta(days=90)
    child = item.children.get()
    assert child.status == C.Status.NEW and child.service == cast.email
    statuses = list(
        StatusChange.objects.filter(object_id=str(item.pk))
        .order_by("at", "id")
        .values_list("new_status", flat=True)
    )
    assert statuses[0] == "new" and statuses[-1] == "closed"


def test_sustainment_flags_slide_back(cast):
    item = ready_item(cast)
    item = S.transition_item(item, actor=cast.owner, to="action")
    indicator = item.indicators.get()
    S.record_measurement(indicator, actor=cast.owner, value="5")
    S.update_action(item.actions.get(), actor=cast.owner, done=True)
    for step in ("evaluation",):
        item = S.transition_item(item, actor=cast.owner, to=step)
    item = S.evaluate_item(item, actor=cast.owner)
    item = S.transition_item(item, actor=cast.owner, to="momentum")
    item = S.close_item(item, actor=cast.owner, outcome="successful", benefit_category="quality")
    S.record_measurement(indicator, actor=cast.owner, value="5.8")
    item.refresh_from_db()
    assert item.sustainment == C.Sustainment.HOLDING
    S.record_measurement(indicator, actor=cast.owner, value="9")
    item.refresh_from_db()
    assert item.sustainment == C.Sustainment.SLIPPED
    assert Item.objects.slipped().filter(pk=item.pk).exists()


def test_close_from_wrong_step_is_refused_but_withdraw_works(cast):
    item = ready_item(cast)
    with pytest.raises(ValidationError) as err:
        S.close_item(item, actor=cast.owner, outcome="successful", benefit_category="quality")
    assert "status" in err.value.message_dict
    with pytest.raises(ValidationError) as err:
        S.close_item(item, actor=cast.owner, outcome="withdrawn")
    assert "lessons" in err.value.message_dict
    S.cancel_action(item.actions.get(), actor=cast.owner, reason="superseded")
    item = S.close_item(item, actor=cast.owner, outcome="withdrawn", lessons="superseded by CI-9")
    assert item.status == C.Status.CLOSED and item.sustainment == ""


def test_concurrent_edit_conflicts(cast):
    item = S.create_item(actor=cast.contributor, title="Original")
    first_read, second_read = Item.objects.get(pk=item.pk), Item.objects.get(pk=item.pk)
    S.update_item(first_read, actor=cast.manager, expected_version=first_read.version, title="First")
    with pytest.raises(ConflictError):
        S.update_item(second_read, actor=cast.manager, expected_version=second_read.version, title="Second")
    item.refresh_from_db()
    assert item.title == "First"


def test_owner_edits_own_items_only(cast):
    mine = ready_item(cast)
    S.update_item(mine, actor=cast.owner, description="more detail")
    with pytest.raises(PermissionDeniedError):
        S.update_item(mine, actor=cast.other_owner, description="hijack")
    with pytest.raises(PermissionDeniedError):
        S.update_item(mine, actor=cast.owner, owner=cast.other_owner)


def test_history_records_old_and_new(cast):
    item = S.create_item(actor=cast.contributor, title="Old title")
    S.update_item(item, actor=cast.manager, title="New title", impact=5)
    entry = history_for(item).filter(action="update").first()
    assert entry.actor == cast.manager
    assert entry.changes["title"] == ["Old title", "New title"]
    assert entry.changes["impact"] == [3, 5]


def test_blocked_needs_blocker_and_escalation_is_recorded(cast):
    item = ready_item(cast)
    with pytest.raises(ValidationError):
        S.set_blocked(item, actor=cast.owner, blocked=True)
    item = S.set_blocked(item, actor=cast.owner, blocked=True, blocker="waiting for vendor")
    assert item.blocked and item.blocked_since
    item = S.escalate_item(item, actor=cast.owner, note="Need budget sign-off")
    assert item.escalated_at and item.comments.filter(kind="escalation").exists()
    assert Item.objects.blocked().filter(pk=item.pk).exists()


def test_rank_items(cast):
    a = S.create_item(actor=cast.contributor, title="a", impact=1, effort=5)
    b = S.create_item(actor=cast.contributor, title="b", impact=5, effort=1)
    assert list(Item.objects.backlog_order().values_list("title", flat=True)) == ["b", "a"]
    S.rank_items([a.pk, b.pk], actor=cast.manager)
    assert list(Item.objects.backlog_order().values_list("title", flat=True)) == ["a", "b"]
    with pytest.raises(PermissionDeniedError):
        S.rank_items([b.pk], actor=cast.owner)


def test_governance_flags(cast):
    today = timezone.localdate()
    item = S.create_item(actor=cast.contributor, title="x")
    Item.objects.filter(pk=item.pk).update(
        identified_at=timezone.now() - dt.timedelta(days=100),
        last_activity_at=timezone.now() - dt.timedelta(days=31),
    )
    item.refresh_from_db()
    assert item.is_stale() and "stale" in item.flags()
    assert Item.objects.stale().filter(pk=item.pk).exists()
    item = S.update_item(item, actor=cast.manager, target_date=today + dt.timedelta(days=10))
    # identified 100 days ago, 110 days span: 15 % is 16 days, so 10 days left is "due soon"
    assert item.is_due_soon() and Item.objects.due_soon().filter(pk=item.pk).exists()
    assert not item.is_stale()
    item = S.update_item(item, actor=cast.manager, target_date=today - dt.timedelta(days=1))
    assert item.is_overdue() and Item.objects.overdue().filter(pk=item.pk).exists()


def test_owner_must_have_owner_role(cast):
    item = S.create_item(actor=cast.contributor, title="x")
    with pytest.raises(ValidationError) as err:
        S.assess_item(item, actor=cast.manager, decision="accept", owner=cast.viewer)
    assert "owner" in err.value.message_dict
    with pytest.raises(ValidationError) as err:
        S.update_item(item, actor=cast.manager, owner=cast.contributor)
    assert "owner" in err.value.message_dict
    item = S.update_item(item, actor=cast.manager, owner=cast.owner)
    assert item.owner == cast.owner


def test_reopen_needs_reason(cast):
    item = S.create_item(actor=cast.contributor, title="x")
    item = S.assess_item(item, actor=cast.manager, decision="reject", reason="not now")
    with pytest.raises(ValidationError) as err:
        S.reopen_item(item, actor=cast.manager, reason="")
    assert "reason" in err.value.message_dict
    assert S.reopen_item(item, actor=cast.manager, reason="new evidence").status == C.Status.NEW


def test_a_measurement_entered_to_the_minute_counts_after_action_started(cast):
    """Forms take times to the minute: a measurement in the minute action started counts."""
    item = S.transition_item(ready_item(cast), actor=cast.owner, to="action")
    started = timezone.now()
    S.record_measurement(
        item.indicators.get(),
        actor=cast.owner,
        value="7",
        measured_at=started.replace(second=0, microsecond=0),
    )
    assert "measurement" not in item.gaps_for(C.Status.EVALUATION)
