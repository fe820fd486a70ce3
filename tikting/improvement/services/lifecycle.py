"""Services that move an item through its life: assess, step through the 7-step model, block and
escalate, evaluate, close (with follow-ups), reopen, and watch it for the control period after."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from tikting.accounts.models import Actor, User
from tikting.core import audit

from .. import choices as C
from .. import permissions as P
from ..models import Comment, Item
from .common import (
    ITEM_FIELDS,
    MANAGER_FIELDS,
    _check_owner,
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
    if owner is not None:
        locked.owner = owner
    _set_status(locked, new_status, actor=actor, reason=reason or f"assessed: {decision}")
    return _save_item(locked, before, actor=actor, message=f"Assessed: {decision}")


@transaction.atomic
def transition_item(
    item: Item, *, actor: Actor, to: str, reason: str = "", expected_version: int | None = None
) -> Item:
    """Move an accepted item one step forward or back in the 7-step model, checking preconditions."""
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
    if moving_forward:
        gaps = locked.gaps_for(to)
        if gaps:
            raise ValidationError(
                {
                    "status": f"{locked.ref} cannot enter '{C.Status(to).label}': it needs "
                    f"{Item.describe_gaps(gaps)}."
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
    before = audit.snapshot(locked)
    locked.escalated_at = timezone.now()
    Comment.objects.create(item=locked, author=_user(actor), kind=Comment.Kind.ESCALATION, body=note)
    return _save_item(locked, before, actor=actor, message="Escalated to the register owner")


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
    """Latest measurement minus baseline of the first primary indicator that has both."""
    for indicator in item.indicators.filter(role=C.IndicatorRole.PRIMARY):
        latest = indicator.latest_measurement()
        if latest is not None and indicator.baseline_value is not None:
            return latest.value - indicator.baseline_value
    return None


@transaction.atomic
def close_item(
    item: Item,
    *,
    actor: Actor,
    outcome: str,
    benefit_category: str = "",
    realised_delta: Decimal | str | None = None,
    lessons: str = "",
    follow_ups: Sequence[dict[str, Any]] = (),
    expected_version: int | None = None,
) -> Item:
    """Close an item (step 7 done) with its outcome; or withdraw it from any open step.

    Successful and partly successful items are then watched for the control period.
    Follow-up items are created as new children of this one.
    """
    P.check(actor, P.can_drive, item, what=f"close {item.ref}")
    locked = _lock(Item, item, expected_version)
    errors: dict[str, str] = {}
    if outcome not in C.Outcome.values:
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
    if outcome in {C.Outcome.SUCCESSFUL, C.Outcome.PARTLY_SUCCESSFUL} and not benefit_category:
        errors["benefit_category"] = "Say which benefit was realised."
    if benefit_category and benefit_category not in C.BenefitCategory.values:
        errors["benefit_category"] = f"Choose one of: {', '.join(C.BenefitCategory.values)}."
    for n, follow_up in enumerate(follow_ups, start=1):
        if not (follow_up.get("title") or "").strip():
            errors[f"follow_ups[{n}].title"] = "A follow-up needs a title."
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
    locked.blocked = False
    if outcome in {C.Outcome.SUCCESSFUL, C.Outcome.PARTLY_SUCCESSFUL}:
        locked.control_until = timezone.localdate(now) + dt.timedelta(
            days=settings.TIKTING_CONTROL_PERIOD_DAYS
        )
        locked.sustainment = C.Sustainment.HOLDING
    _set_status(locked, C.Status.CLOSED, actor=actor, reason=f"outcome: {outcome}")
    closed = _save_item(locked, before, actor=actor, message=f"Closed: {C.Outcome(outcome).label}")
    for follow_up in follow_ups:
        data = {k: v for k, v in follow_up.items() if k in ITEM_FIELDS - MANAGER_FIELDS}
        data.setdefault("practice", closed.practice)
        data.setdefault("service", closed.service)
        data.setdefault("source_channel", C.SourceChannel.OTHER)
        data.setdefault("source_reference", f"Follow-up of {closed.ref}")
        create_item(actor=actor if actor is None or P.can_submit(actor) else None, parent=closed, **data)
    return closed


@transaction.atomic
def reopen_item(item: Item, *, actor: Actor, reason: str) -> Item:
    """Bring a rejected item back to assessment (a manager changed their mind)."""
    P.check(actor, lambda u: P.can_manage(u), what="reopen items")
    locked = _lock(Item, item, None)
    if locked.status != C.Status.REJECTED:
        raise ValidationError({"status": "Only rejected items are reopened."})
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the item is reopened."})
    before = audit.snapshot(locked)
    _set_status(locked, C.Status.NEW, actor=actor, reason=reason)
    return _save_item(locked, before, actor=actor, message="Reopened for assessment")


def check_item_sustainment(item: Item, *, today: dt.date | None = None) -> str:
    """During the control period, an indicator that slides back flags the item (`slipped`).

    An indicator that met its target at evaluation slides back when its latest measurement no
    longer meets the target; one that did not, when it falls back to (or behind) its baseline.
    After the control period an item that held is `sustained`.
    """
    today = today or timezone.localdate()
    status = item.sustainment
    slipped = False
    for indicator in item.indicators.filter(role=C.IndicatorRole.PRIMARY):
        measurements = list(indicator.measurements.order_by("measured_at", "id"))
        at_close = [m for m in measurements if item.closed_at and m.measured_at <= item.closed_at]
        after = [m for m in measurements if item.closed_at and m.measured_at > item.closed_at]
        if not after:
            continue
        latest = after[-1].value
        reference = at_close[-1].value if at_close else None
        if indicator.meets_target(reference):
            slipped |= not indicator.meets_target(latest)
        else:
            slipped |= not indicator.improved(latest)
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
