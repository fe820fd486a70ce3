"""Services that move an item through its life: assess, step through the 7-step model, block and
escalate, evaluate, close (with follow-ups), reopen, and watch it for the control period after."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from tikting.accounts.models import Actor, User
from tikting.core import audit, events
from tikting.core.bounds import check_long_text
from tikting.core.models import StatusChange

from .. import choices as C
from .. import permissions as P
from ..models import Comment, Indicator, Item
from .common import (
    ITEM_FIELDS,
    MANAGER_FIELDS,
    _announce_owner,
    _check_owner,
    _check_writable,
    _decimal,
    _lock,
    _save_item,
    _set_status,
    _user,
)
from .items import create_item


@transaction.atomic
def assess_item(
    item: Item,
    *,
    actor: Actor,
    decision: str,
    reason: str = "",
    revisit_date: dt.date | None = None,
    owner: User | None = None,
    expected_version: int | None = None,
) -> Item:
    """Accept (into step 1, Vision), defer (reason and revisit date) or reject (reason) an item."""
    P.check(actor, lambda u: P.can_manage(u), what="assess items")
    locked = _lock(Item, item, expected_version)
    if locked.status not in {C.Status.NEW, C.Status.DEFERRED}:
        raise ValidationError(
            {
                "decision": f"Only new or deferred items are assessed; "
                f"{locked.ref} is {locked.get_status_display()}."
            }
        )
    reason = (reason or "").strip()
    check_long_text(reason=reason)
    errors: dict[str, str] = {}
    if decision not in C.Decision.values:
        errors["decision"] = f"Choose one of: {', '.join(C.Decision.values)}."
    if decision in {C.Decision.DEFER, C.Decision.REJECT} and not reason:
        errors["reason"] = f"A reason is required to {decision} an item."
    if decision == C.Decision.DEFER:
        if not revisit_date:
            errors["revisit_date"] = "A revisit date is required to defer an item."
        elif revisit_date <= timezone.localdate():
            errors["revisit_date"] = "The revisit date must be in the future."
    if owner is not None:
        try:
            _check_owner(owner)
        except ValidationError as exc:
            errors.update({k: v[0] for k, v in exc.message_dict.items()})
    if errors:
        raise ValidationError(errors)
    before = audit.snapshot(locked)
    new_status = {
        C.Decision.ACCEPT: C.Status.VISION,
        C.Decision.DEFER: C.Status.DEFERRED,
        C.Decision.REJECT: C.Status.REJECTED,
    }[C.Decision(decision)]
    locked.assessment_reason = reason
    locked.revisit_date = revisit_date if decision == C.Decision.DEFER else None
    locked.assessed_by = _user(actor)
    locked.assessed_at = timezone.now()
    previous_owner = locked.owner_id
    if owner is not None:
        locked.owner = owner
    _set_status(locked, new_status, actor=actor, reason=reason or f"assessed: {decision}")
    saved = _save_item(locked, before, actor=actor, message=f"Assessed: {decision}")
    if saved.owner_id != previous_owner:
        _announce_owner(saved, saved.owner_id, actor=actor)
    return saved


@transaction.atomic
def transition_item(
    item: Item, *, actor: Actor, to: str, reason: str = "", expected_version: int | None = None
) -> Item:
    """Move an accepted item one step forward or back in the 7-step model. A step forward needs
    what choices.PRECONDITIONS lists for it, a step back that the item is not blocked; the
    ValidationError (on `status`) lists every gap and what to do about it."""
    P.check(actor, P.can_drive, item, what=f"move {item.ref} through its steps")
    locked = _lock(Item, item, expected_version)
    allowed = C.TRANSITIONS.get(locked.status, frozenset())
    if to not in allowed:
        options = ", ".join(C.Status(s).label for s in sorted(allowed, key=C.STEPS.index)) or "none"
        raise ValidationError(
            {
                "status": f"{locked.ref} cannot go from '{locked.get_status_display()}' to "
                f"'{C.Status(to).label if to in C.Status.values else to}'. Allowed: {options}."
            }
        )
    moving_forward = C.STEPS.index(to) > C.STEPS.index(locked.status)
    gaps = locked.gaps_for(to, back=not moving_forward)
    if gaps:
        move = "enter" if moving_forward else "go back to"
        raise ValidationError(
            {
                "status": f"{locked.ref} cannot {move} '{C.Status(to).label}': it needs "
                f"{locked.explain_gaps(gaps)}."
            }
        )
    before = audit.snapshot(locked)
    if to == C.Status.ACTION:
        locked.evaluation_result = ""
    _set_status(locked, to, actor=actor, reason=reason)
    return _save_item(locked, before, actor=actor, message=reason)


@transaction.atomic
def set_blocked(
    item: Item, *, actor: Actor, blocked: bool, blocker: str = "", expected_version: int | None = None
) -> Item:
    """Mark an open item blocked (saying by what) or unblocked; unblocking clears the escalation."""
    P.check(actor, P.can_drive, item, what=f"change the blockers of {item.ref}")
    locked = _lock(Item, item, expected_version)
    _check_writable(locked, "change its blockers")
    blocker = (blocker or "").strip()
    if blocked and not blocker:
        raise ValidationError({"blocker": "Say what blocks the item."})
    if blocked and not locked.is_open:
        raise ValidationError(
            {"blocked": f"{locked.ref} is {locked.get_status_display()}: only open items block."}
        )
    before = audit.snapshot(locked)
    locked.blocked = blocked
    locked.blocker = blocker if blocked else ""
    if blocked and not locked.blocked_since:
        locked.blocked_since = timezone.now()
    if not blocked:
        locked.blocked_since = None
        locked.escalated_at = None
    return _save_item(locked, before, actor=actor, message="Blocked" if blocked else "Unblocked")


@transaction.atomic
def escalate_item(item: Item, *, actor: Actor, note: str) -> Item:
    """Escalate a blocker to the register owner: recorded on the item and put on the review agenda."""
    P.check(actor, P.can_drive, item, what=f"escalate {item.ref}")
    note = (note or "").strip()
    if not note:
        raise ValidationError({"note": "Say what you need from the register owner."})
    locked = _lock(Item, item, None)
    if not locked.is_open:
        raise ValidationError(
            {"note": f"{locked.ref} is {locked.get_status_display().lower()}: only open items are escalated."}
        )
    check_long_text(note=note)
    before = audit.snapshot(locked)
    locked.escalated_at = timezone.now()
    Comment.objects.create(item=locked, author=_user(actor), kind=Comment.Kind.ESCALATION, body=note)
    saved = _save_item(locked, before, actor=actor, message="Escalated to the register owner")
    events.emit(
        events.Kind.ESCALATED,
        saved,
        actor=actor,
        summary=f"{saved.ref} {saved.title} escalated"[:300],
        text=note,
    )
    return saved


@transaction.atomic
def evaluate_item(item: Item, *, actor: Actor, note: str = "", expected_version: int | None = None) -> Item:
    """Step 6: compare each primary indicator's latest measurement with its target, record the result."""
    P.check(actor, P.can_drive, item, what=f"evaluate {item.ref}")
    locked = _lock(Item, item, expected_version)
    if locked.status != C.Status.EVALUATION:
        raise ValidationError(
            {"status": f"{locked.ref} is evaluated in step 6, not in '{locked.get_status_display()}'."}
        )
    results: list[str] = []
    for indicator in locked.indicators.filter(role=C.IndicatorRole.PRIMARY):
        latest = indicator.latest_measurement()
        if latest is None:
            continue
        results.append(indicator.evaluate(latest.value))
    if not results:
        raise ValidationError({"measurements": "No primary indicator has a measurement to evaluate."})
    check_long_text(note=note)
    if all(r == C.EvaluationResult.ACHIEVED for r in results):
        result = C.EvaluationResult.ACHIEVED
    elif any(r in {C.EvaluationResult.ACHIEVED, C.EvaluationResult.PARTLY} for r in results):
        result = C.EvaluationResult.PARTLY
    else:
        result = C.EvaluationResult.NOT_ACHIEVED
    before = audit.snapshot(locked)
    locked.evaluation_result = result
    locked.evaluation_note = (note or "").strip()
    locked.evaluated_at = timezone.now()
    locked.realised_delta = measured_delta(locked)
    return _save_item(locked, before, actor=actor, message=f"Evaluated: {C.EvaluationResult(result).label}")


def measured_delta(item: Item) -> Decimal | None:
    """Latest measurement minus baseline of the first primary indicator that has both
    (Item.delta_indicator)."""
    indicator = item.delta_indicator()
    latest = indicator.latest_measurement() if indicator is not None else None
    if indicator is None or latest is None or indicator.baseline_value is None:
        return None
    return latest.value - indicator.baseline_value


def default_outcome(item: Item) -> str:
    """The outcome the item's evaluation stands for (choices.OUTCOME_FOR_RESULT); "" without one:
    an outcome is never "successful" by default."""
    return C.OUTCOME_FOR_RESULT.get(item.evaluation_result, "")


@transaction.atomic
def close_item(
    item: Item,
    *,
    actor: Actor,
    outcome: str = "",
    benefit_category: str = "",
    realised_delta: Decimal | str | None = None,
    lessons: str = "",
    follow_ups: Sequence[dict[str, Any]] = (),
    expected_version: int | None = None,
) -> Item:
    """Close an item (step 7 done) with its outcome; or withdraw it from any open step.

    The outcome defaults to what the evaluation says (achieved: successful, partly: partly
    successful, not achieved: unsuccessful); one better than the evaluation needs its reason in
    `lessons`. Like a step, closing needs what choices.PRECONDITIONS lists for CLOSED: not
    blocked, every action done or cancelled with a reason. Successful and partly successful items
    are then watched for the control period. Follow-up items are created as new children.
    """
    P.check(actor, P.can_drive, item, what=f"close {item.ref}")
    locked = _lock(Item, item, expected_version)
    errors: dict[str, str] = {}
    outcome = outcome or (default_outcome(locked) if locked.status == C.Status.MOMENTUM else "")
    if not outcome:
        errors["outcome"] = (
            f"Choose an outcome ({', '.join(C.Outcome.values)}): {locked.ref} has no evaluation "
            "to take it from."
        )
    elif outcome not in C.Outcome.values:
        errors["outcome"] = f"Choose one of: {', '.join(C.Outcome.values)}."
    elif outcome == C.Outcome.WITHDRAWN:
        if not locked.is_open:
            errors["outcome"] = (
                f"{locked.ref} is {locked.get_status_display()}: only open items are withdrawn."
            )
        if not (lessons or "").strip():
            errors["lessons"] = "Say why the item is withdrawn."
    elif locked.status != C.Status.MOMENTUM:
        errors["status"] = (
            f"{locked.ref} closes from step 7 (Keep the momentum); it is in '{locked.get_status_display()}'. "
            "Withdraw it instead to stop early."
        )
    else:
        evaluated = default_outcome(locked)
        if evaluated and C.OUTCOME_RANK[outcome] > C.OUTCOME_RANK[evaluated] and not (lessons or "").strip():
            errors["lessons"] = (
                f"The evaluation says '{locked.get_evaluation_result_display()}' "
                f"('{C.Outcome(evaluated).label}'): say in the lessons why the outcome is "
                f"'{C.Outcome(outcome).label}'."
            )
    if outcome in {C.Outcome.SUCCESSFUL, C.Outcome.PARTLY_SUCCESSFUL} and not benefit_category:
        errors["benefit_category"] = "Say which benefit was realised."
    if benefit_category and benefit_category not in C.BenefitCategory.values:
        errors["benefit_category"] = f"Choose one of: {', '.join(C.BenefitCategory.values)}."
    for n, follow_up in enumerate(follow_ups, start=1):
        if not (follow_up.get("title") or "").strip():
            errors[f"follow_ups[{n}].title"] = "A follow-up needs a title."
    if locked.is_open and "status" not in errors:
        gaps = locked.gaps_for(C.Status.CLOSED)
        if gaps:
            verb = "be withdrawn" if outcome == C.Outcome.WITHDRAWN else "close"
            errors["status"] = f"{locked.ref} cannot {verb}: it needs {locked.explain_gaps(gaps)}."
    if errors:
        raise ValidationError(errors)
    before = audit.snapshot(locked)
    now = timezone.now()
    locked.outcome = outcome
    locked.benefit_category = benefit_category or ""
    delta = _decimal(realised_delta, "realised_delta")
    locked.realised_delta = delta if delta is not None else measured_delta(locked)
    if lessons:
        locked.lessons = lessons.strip()
    locked.closed_at = now
    if outcome in {C.Outcome.SUCCESSFUL, C.Outcome.PARTLY_SUCCESSFUL}:
        locked.control_until = timezone.localdate(now) + dt.timedelta(
            days=settings.TIKTING_CONTROL_PERIOD_DAYS
        )
        locked.sustainment = C.Sustainment.HOLDING
    _set_status(locked, C.Status.CLOSED, actor=actor, reason=f"outcome: {outcome}")
    closed = _save_item(locked, before, actor=actor, message=f"Closed: {C.Outcome(outcome).label}")
    for follow_up in follow_ups:
        _create_follow_up(closed, actor=actor, data=follow_up)
    return closed


def _create_follow_up(parent: Item, *, actor: Actor, data: dict[str, Any]) -> Item:
    fields = {k: v for k, v in data.items() if k in ITEM_FIELDS - MANAGER_FIELDS}
    fields.setdefault("practice", parent.practice)
    fields.setdefault("service", parent.service)
    fields.setdefault("source_channel", C.SourceChannel.OTHER)
    fields.setdefault("source_reference", f"Follow-up of {parent.ref}")
    fields["parent"] = parent
    return create_item(actor=actor if actor is None or P.can_submit(actor) else None, **fields)


@transaction.atomic
def raise_follow_up(item: Item, *, actor: Actor, **data: Any) -> Item:
    """A follow-up of an item (a new item, its child, to be assessed): the momentum step, also
    after the item closed. Whoever may submit an opportunity raises one."""
    P.check(actor, P.can_submit, what=f"raise follow-ups of {item.ref}")
    if not (data.get("title") or "").strip():
        raise ValidationError({"title": "A follow-up needs a title."})
    return _create_follow_up(item, actor=actor, data=data)


@transaction.atomic
def reopen_item(item: Item, *, actor: Actor, reason: str, expected_version: int | None = None) -> Item:
    """A manager takes back an ended item, saying why (the reason is on the timeline):

    - a rejected item goes back to assessment (New);
    - a closed item goes back to the step it was closed or withdrawn from; its closure (outcome,
      benefit, control period, sustainment) is undone, the lessons and the evaluation are kept.
    """
    P.check(actor, lambda u: P.can_manage(u), what="reopen items")
    locked = _lock(Item, item, expected_version)
    if locked.status not in C.ENDED_STATUSES:
        raise ValidationError({"status": "Only closed or rejected items are reopened."})
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the item is reopened."})
    check_long_text(reason=reason)
    before = audit.snapshot(locked)
    if locked.status == C.Status.REJECTED:
        _set_status(locked, C.Status.NEW, actor=actor, reason=reason)
        return _save_item(locked, before, actor=actor, message=f"Reopened for assessment: {reason}")
    back_to = _status_before_closing(locked)
    locked.outcome = ""
    locked.benefit_category = ""
    locked.closed_at = None
    locked.control_until = None
    locked.sustainment = C.Sustainment.NONE
    locked.slipped_at = None
    _set_status(locked, back_to, actor=actor, reason=reason)
    return _save_item(
        locked, before, actor=actor, message=f"Reopened at '{C.Status(back_to).label}': {reason}"
    )


def _status_before_closing(item: Item) -> str:
    """The open status the item was closed or withdrawn from (its last status change into
    closed); step 7 when the history does not say (an item imported closed)."""
    change = (
        StatusChange.objects.filter(
            content_type=ContentType.objects.get_for_model(Item),
            object_id=str(item.pk),
            new_status=C.Status.CLOSED,
        )
        .order_by("-at", "-id")
        .first()
    )
    if change is not None and change.old_status in C.OPEN_STATUSES:
        return change.old_status
    return C.Status.MOMENTUM


@transaction.atomic
def undo_acceptance(item: Item, *, actor: Actor, reason: str, expected_version: int | None = None) -> Item:
    """A manager takes back an acceptance, saying why: the item returns to New, to be assessed
    again. Only while it is still at step 1 (Vision): once its owner has moved it on, the work
    built on the acceptance is withdrawn instead (close_item, outcome withdrawn)."""
    P.check(actor, lambda u: P.can_manage(u), what="undo acceptances")
    locked = _lock(Item, item, expected_version)
    reason = (reason or "").strip()
    if locked.status != C.Status.VISION:
        if locked.is_active:
            message = (
                f"{locked.ref} has moved on to '{locked.get_status_display()}': its acceptance can no "
                "longer be undone. Withdraw it instead."
            )
        else:
            message = f"{locked.ref} is {locked.get_status_display()}: only an accepted item (step 1) is."
        raise ValidationError({"status": message})
    if not reason:
        raise ValidationError({"reason": "Say why the acceptance is undone."})
    check_long_text(reason=reason)
    before = audit.snapshot(locked)
    locked.assessed_by = None
    locked.assessed_at = None
    locked.assessment_reason = ""
    _set_status(locked, C.Status.NEW, actor=actor, reason=f"acceptance undone: {reason}")
    return _save_item(locked, before, actor=actor, message=f"Acceptance undone: {reason}")


def slip_limit(indicator: Indicator, reached: Decimal | None) -> Decimal | None:
    """The value past which `indicator` has slipped back (has_slipped), given the value it
    `reached` at closure: the target for an indicator that met it; otherwise `reached` give or
    take SUSTAINMENT_TOLERANCE of the improvement reached from the baseline; the baseline when
    nothing was measured by closure."""
    if indicator.meets_target(reached):
        return indicator.target_value
    if reached is None:
        return indicator.baseline_value
    gained = Decimal(0)
    if indicator.baseline_value is not None and indicator.improved(reached):
        gained = abs(reached - indicator.baseline_value)
    worse = Decimal(1) if indicator.direction == C.Direction.LOWER else Decimal(-1)
    return reached + worse * gained * C.SUSTAINMENT_TOLERANCE


def has_slipped(indicator: Indicator, reached: Decimal | None, value: Decimal) -> bool:
    """Has `value`, measured after closure, slid back from what the item reached (`reached`)?
    An indicator that met its target slips when it no longer meets it; one that did not, when
    it is worse than slip_limit (no better than the baseline, when nothing was measured by
    closure)."""
    if indicator.meets_target(reached):
        return not indicator.meets_target(value)
    if reached is None:
        return not indicator.improved(value)
    limit = slip_limit(indicator, reached)
    assert limit is not None  # `reached` is known
    return value > limit if indicator.direction == C.Direction.LOWER else value < limit


def value_at_closure(indicator: Indicator, closed_at: dt.datetime | None) -> Decimal | None:
    """The indicator's last measurement taken by the closure: the value the item reached."""
    if closed_at is None:
        return None
    last = indicator.measurements.filter(measured_at__lte=closed_at).order_by("-measured_at", "-id").first()
    return last.value if last is not None else None


def check_item_sustainment(item: Item, *, today: dt.date | None = None) -> str:
    """During the control period, an indicator that slides back flags the item (`slipped`).

    Every closed item under watch is judged against its target and the value it reached at
    closure (has_slipped): an indicator that met its target slips when a later measurement no
    longer meets it; one that did not (partly achieved) slips when a later measurement gives back
    more than SUSTAINMENT_TOLERANCE of the improvement reached. The latest measurement after
    closure decides. After the control period an item that held is `sustained`.
    """
    today = today or timezone.localdate()
    status = item.sustainment
    slipped = False
    for indicator in item.indicators.filter(role=C.IndicatorRole.PRIMARY):
        if item.closed_at is None:
            continue
        latest = (
            indicator.measurements.filter(measured_at__gt=item.closed_at)
            .order_by("-measured_at", "-id")
            .first()
        )
        if latest is None:
            continue
        slipped |= has_slipped(indicator, value_at_closure(indicator, item.closed_at), latest.value)
    if slipped:
        status = C.Sustainment.SLIPPED
    elif item.control_until and item.control_until < today:
        status = C.Sustainment.SUSTAINED
    elif item.sustainment == C.Sustainment.SLIPPED:
        status = C.Sustainment.HOLDING
    if status != item.sustainment:
        before = audit.snapshot(item)
        item.sustainment = status
        item.slipped_at = timezone.now() if status == C.Sustainment.SLIPPED else item.slipped_at
        item.save(update_fields=["sustainment", "slipped_at"])
        audit.record(
            item,
            action="update",
            actor=None,
            changes=audit.diff(before, audit.snapshot(item)),
            message=f"Sustainment: {C.Sustainment(status).label}",
        )
    return status
