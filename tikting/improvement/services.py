"""Every operation that changes the register: one function per verb (Zulip's `do_*` actions).

Each runs in a transaction, takes the acting user as keyword-only `actor` (None: the system),
checks permission, validates, writes an audit row (and a status-change row on transitions).
Edits of an item or indicator take `expected_version`: when the row changed since the caller read
it, ConflictError is raised and nothing is written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from tikting.accounts.models import Role
from tikting.core import audit
from tikting.core.exceptions import ConflictError

from . import choices as C
from . import permissions as P
from .models import Action, Comment, Indicator, Item, Measurement, SourceLink

# Item fields a service may set through create_item / update_item.
ITEM_FIELDS = frozenset(
    {
        "title",
        "description",
        "practice",
        "service",
        "justification",
        "justification_type",
        "vision",
        "expected_outcome",
        "impact",
        "effort",
        "target_date",
        "review_milestone",
        "source_channel",
        "source_reference",
        "external_id",
        "parent",
        "owner",
        "rank",
    }
)
# Of those, only an improvement manager may set these.
MANAGER_FIELDS = frozenset({"owner", "rank"})
INDICATOR_FIELDS = frozenset(
    {
        "name",
        "unit",
        "direction",
        "role",
        "baseline_value",
        "baseline_date",
        "baseline_method",
        "target_value",
        "target_date",
        "metric_key",
        "metric_scope",
    }
)
ACTION_FIELDS = frozenset({"title", "owner", "due_date", "done"})


def _check_fields(changes: dict[str, Any], allowed: Iterable[str]) -> None:
    unknown = sorted(set(changes) - set(allowed))
    if unknown:
        raise ValidationError(dict.fromkeys(unknown, "This field cannot be set here."))


def _decimal(value: Any, field: str) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise ValidationError({field: f"'{value}' is not a number."}) from exc


def _lock(model: type[models.Model], obj: models.Model, expected_version: int | None) -> Any:
    locked: Any = model._default_manager.select_for_update().get(pk=obj.pk)
    if expected_version is not None and locked.version != int(expected_version):
        raise ConflictError(locked, expected_version)
    return locked


def _touch(item: Item, now: dt.datetime | None = None) -> None:
    """A child of the item changed: the item is not stale."""
    Item.objects.filter(pk=item.pk).update(last_activity_at=now or timezone.now())


def _save_item(item: Item, before: dict[str, Any], *, actor, message: str = "") -> Item:
    item.version += 1
    item.last_activity_at = timezone.now()
    item.full_clean()
    item.save()
    changes = audit.diff(before, audit.snapshot(item))
    changes.pop("last_activity_at", None)
    changes.pop("updated_at", None)
    audit.record(item, action="update", actor=actor, changes=changes, message=message)
    return item


def _set_status(item: Item, new: str, *, actor, reason: str = "") -> None:
    old = item.status
    item.status = new
    item.status_changed_at = timezone.now()
    audit.record_status(item, old=old, new=new, actor=actor, reason=reason, at=item.status_changed_at)


# --- Items -----------------------------------------------------------------------------------


@transaction.atomic
def create_item(*, actor, **data: Any) -> Item:
    """Submit an opportunity. It starts as New, to be assessed by an improvement manager."""
    P.check(actor, P.can_submit, what="submit an improvement opportunity")
    _check_fields(data, ITEM_FIELDS)
    if set(data) & MANAGER_FIELDS and any(data.get(f) is not None for f in MANAGER_FIELDS):
        P.check(actor, P.can_manage, what="assign an owner or rank")
    _check_owner(data.get("owner"))
    item = Item(**data)
    item.submitted_by = actor if getattr(actor, "pk", None) else None
    item.status = C.Status.NEW
    item.full_clean()
    item.save()
    audit.record(item, action="create", actor=actor, changes=audit.diff({}, audit.snapshot(item)))
    audit.record_status(item, old="", new=item.status, actor=actor, reason="submitted", at=item.identified_at)
    return item


@transaction.atomic
def update_item(item: Item, *, actor, expected_version: int | None = None, **changes: Any) -> Item:
    P.check(actor, P.can_edit, item, what=f"edit {item.ref}")
    _check_fields(changes, ITEM_FIELDS)
    locked = _lock(Item, item, expected_version)
    before = audit.snapshot(locked)
    if any(
        getattr(locked, f if f not in {"owner", "parent"} else f"{f}_id") != _pk(changes[f])
        for f in set(changes) & MANAGER_FIELDS
    ):
        P.check(actor, P.can_manage, what="assign an owner or rank")
    if "owner" in changes:
        _check_owner(changes["owner"])
    if "parent" in changes and changes["parent"] is not None and _pk(changes["parent"]) == locked.pk:
        raise ValidationError({"parent": "An item cannot be its own parent."})
    for name, value in changes.items():
        setattr(locked, name, value)
    return _save_item(locked, before, actor=actor)


def _pk(value: Any) -> Any:
    return getattr(value, "pk", value)


def _check_owner(owner: Any) -> None:
    """An item's owner must be an active user with the owner role or above."""
    if owner is None:
        return
    if not getattr(owner, "pk", None):
        from tikting.accounts.models import User

        owner = User.objects.filter(pk=owner).first()
    if owner is None or not owner.has_role(Role.OWNER):
        raise ValidationError({"owner": "The owner must be an active user with the owner role or above."})


@transaction.atomic
def assess_item(
    item: Item,
    *,
    actor,
    decision: str,
    reason: str = "",
    revisit_date: dt.date | None = None,
    owner=None,
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
    locked.assessed_by = actor if getattr(actor, "pk", None) else None
    locked.assessed_at = timezone.now()
    if owner is not None:
        locked.owner = owner
    _set_status(locked, new_status, actor=actor, reason=reason or f"assessed: {decision}")
    return _save_item(locked, before, actor=actor, message=f"Assessed: {decision}")


@transaction.atomic
def transition_item(
    item: Item, *, actor, to: str, reason: str = "", expected_version: int | None = None
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
    item: Item, *, actor, blocked: bool, blocker: str = "", expected_version: int | None = None
) -> Item:
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
def escalate_item(item: Item, *, actor, note: str) -> Item:
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
def evaluate_item(item: Item, *, actor, note: str = "", expected_version: int | None = None) -> Item:
    """Step 6: compare each primary indicator's latest measurement with its target, record the result."""
    P.check(actor, P.can_drive, item, what=f"evaluate {item.ref}")
    locked = _lock(Item, item, expected_version)
    if locked.status != C.Status.EVALUATION:
        raise ValidationError(
            {"status": f"{locked.ref} is evaluated in step 6, not in '{locked.get_status_display()}'."}
        )
    results = []
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
    actor,
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
def reopen_item(item: Item, *, actor, reason: str) -> Item:
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


@transaction.atomic
def rank_items(ordered_ids: Sequence[int], *, actor) -> int:
    """Set the manual backlog order: the given items get ranks 1..n in that order."""
    P.check(actor, lambda u: P.can_manage(u), what="rank the backlog")
    ids = [int(i) for i in ordered_ids]
    items = {i.pk: i for i in Item.objects.select_for_update().filter(pk__in=ids)}
    missing = [i for i in ids if i not in items]
    if missing:
        raise ValidationError({"items": f"Unknown item ids: {missing[:10]}"})
    changed = []
    for position, pk in enumerate(ids, start=1):
        item = items[pk]
        if item.rank != position:
            audit.record(
                item,
                action="update",
                actor=actor,
                changes={"rank": [item.rank, position]},
                message="Backlog re-ranked",
            )
            item.rank = position
            item.version += 1
            changed.append(item)
    Item.objects.bulk_update(changed, ["rank", "version"])
    return len(changed)


@transaction.atomic
def add_comment(item: Item, *, actor, body: str, kind: str = Comment.Kind.COMMENT) -> Comment:
    P.check(actor, P.can_comment, what="comment")
    body = (body or "").strip()
    if not body:
        raise ValidationError({"body": "A comment cannot be empty."})
    comment = Comment.objects.create(item=item, author=_user(actor), kind=kind, body=body)
    _touch(item)
    return comment


@transaction.atomic
def link_source(item: Item, *, actor, record: models.Model, is_origin: bool = True) -> SourceLink:
    """Link a record of any kind (incident, problem, CI, …) to the item."""
    P.check(actor, P.can_edit, item, what=f"link records to {item.ref}")
    from django.contrib.contenttypes.models import ContentType

    link, created = SourceLink.objects.get_or_create(
        item=item,
        content_type=ContentType.objects.get_for_model(record),
        object_id=str(record.pk),
        defaults={"label": str(record)[:200], "is_origin": is_origin},
    )
    if created:
        audit.record(link, action="create", actor=actor, root=item, changes={"record": [None, str(record)]})
        _touch(item)
    return link


# --- Indicators and measurements --------------------------------------------------------------


def _clean_indicator_values(data: dict[str, Any]) -> dict[str, Any]:
    for field in ("baseline_value", "target_value"):
        if field in data:
            data[field] = _decimal(data[field], field)
    return data


@transaction.atomic
def add_indicator(item: Item, *, actor, **data: Any) -> Indicator:
    P.check(actor, P.can_edit, item, what=f"add indicators to {item.ref}")
    _check_fields(data, INDICATOR_FIELDS)
    indicator = Indicator(item=item, **_clean_indicator_values(dict(data)))
    if indicator.baseline_value is not None and not indicator.baseline_date:
        indicator.baseline_date = timezone.localdate()
    if indicator.baseline_value is not None and not indicator.baseline_method:
        indicator.baseline_method = "manual"
    indicator.full_clean()
    indicator.save()
    audit.record(
        indicator, action="create", actor=actor, root=item, changes=audit.diff({}, audit.snapshot(indicator))
    )
    _touch(item)
    return indicator


@transaction.atomic
def update_indicator(
    indicator: Indicator, *, actor, expected_version: int | None = None, **changes: Any
) -> Indicator:
    P.check(actor, P.can_edit, indicator.item, what=f"edit indicators of {indicator.item.ref}")
    _check_fields(changes, INDICATOR_FIELDS)
    locked = _lock(Indicator, indicator, expected_version)
    before = audit.snapshot(locked)
    for name, value in _clean_indicator_values(dict(changes)).items():
        setattr(locked, name, value)
    if "baseline_value" in changes and locked.baseline_value is not None and "baseline_date" not in changes:
        locked.baseline_date = locked.baseline_date or timezone.localdate()
    locked.version += 1
    locked.full_clean()
    locked.save()
    diff = audit.diff(before, audit.snapshot(locked))
    diff.pop("updated_at", None)
    audit.record(locked, action="update", actor=actor, root=locked.item, changes=diff)
    _touch(locked.item)
    return locked


@transaction.atomic
def remove_indicator(indicator: Indicator, *, actor) -> None:
    item = indicator.item
    P.check(actor, P.can_edit, item, what=f"remove indicators of {item.ref}")
    audit.record(
        indicator, action="delete", actor=actor, root=item, changes=audit.diff(audit.snapshot(indicator), {})
    )
    indicator.delete()
    _touch(item)


@transaction.atomic
def record_measurement(
    indicator: Indicator,
    *,
    actor,
    value: Any,
    measured_at: dt.datetime | None = None,
    note: str = "",
    source: str = Measurement.Source.MANUAL,
) -> Measurement:
    item = Item.objects.get(pk=indicator.item_id)
    P.check(actor, P.can_drive, item, what=f"record measurements of {item.ref}")
    number = _decimal(value, "value")
    if number is None:
        raise ValidationError({"value": "A measurement needs a value."})
    measured_at = measured_at or timezone.now()
    if measured_at > timezone.now() + dt.timedelta(minutes=5):
        raise ValidationError({"measured_at": "A measurement cannot be in the future."})
    measurement = Measurement(
        indicator=indicator,
        value=number,
        measured_at=measured_at,
        note=note or "",
        source=source,
        recorded_by=_user(actor),
    )
    measurement.full_clean()
    measurement.save()
    audit.record(
        measurement,
        action="create",
        actor=actor,
        root=item,
        changes={"value": [None, str(number)], "indicator": [None, indicator.name]},
        message=f"Measured {indicator.name}: {number.normalize()}",
    )
    _touch(item)
    if item.status == C.Status.CLOSED and item.sustainment in {C.Sustainment.HOLDING, C.Sustainment.SLIPPED}:
        check_item_sustainment(item)
    return measurement


# --- Actions ----------------------------------------------------------------------------------


@transaction.atomic
def add_action(item: Item, *, actor, title: str, owner=None, due_date: dt.date | None = None) -> Action:
    P.check(actor, P.can_drive, item, what=f"plan actions for {item.ref}")
    action = Action(item=item, title=(title or "").strip(), owner=owner, due_date=due_date)
    action.full_clean()
    action.save()
    audit.record(
        action, action="create", actor=actor, root=item, changes=audit.diff({}, audit.snapshot(action))
    )
    _touch(item)
    return action


@transaction.atomic
def update_action(action: Action, *, actor, expected_version: int | None = None, **changes: Any) -> Action:
    P.check(actor, P.can_drive, action.item, what=f"change actions of {action.item.ref}")
    _check_fields(changes, ACTION_FIELDS)
    locked = _lock(Action, action, expected_version)
    before = audit.snapshot(locked)
    for name, value in changes.items():
        setattr(locked, name, value)
    if "done" in changes:
        locked.done_at = timezone.now() if locked.done else None
    locked.version += 1
    locked.full_clean()
    locked.save()
    audit.record(
        locked,
        action="update",
        actor=actor,
        root=locked.item,
        changes=audit.diff(before, audit.snapshot(locked)),
    )
    _touch(locked.item)
    return locked


@transaction.atomic
def remove_action(action: Action, *, actor) -> None:
    item = action.item
    P.check(actor, P.can_drive, item, what=f"change actions of {item.ref}")
    audit.record(
        action, action="delete", actor=actor, root=item, changes=audit.diff(audit.snapshot(action), {})
    )
    action.delete()
    _touch(item)


# --- Scheduled housekeeping (run daily by `tikting register housekeeping` or a task) ---------


@transaction.atomic
def wake_deferred(*, as_of: dt.date | None = None, actor=None) -> int:
    """Deferred items whose revisit date has come are back in the assessment queue."""
    count = 0
    for item in Item.objects.select_for_update().deferred_due(as_of):
        before = audit.snapshot(item)
        _set_status(item, C.Status.NEW, actor=actor, reason=f"revisit date {item.revisit_date} reached")
        _save_item(item, before, actor=actor, message="Back for assessment: revisit date reached")
        count += 1
    return count


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


def check_sustainment(*, today: dt.date | None = None) -> dict[str, int]:
    counts: dict[str, int] = {}
    watched = Item.objects.closed().filter(sustainment__in=[C.Sustainment.HOLDING, C.Sustainment.SLIPPED])
    for item in watched.iterator():
        with transaction.atomic():
            status = check_item_sustainment(item, today=today)
        counts[status] = counts.get(status, 0) + 1
    return counts


def _user(actor):
    return actor if getattr(actor, "pk", None) else None


# --- Indicators bound to a tikting metric ------------------------------------------------------


def metric_value(metric_key: str, scope: dict[str, Any], start: dt.date, end: dt.date) -> tuple[Any, int]:
    """The metric's value and record count over [start, end] (local dates) within `scope` (the
    metrics engine's filters: service, priority, group, category, ci, source, status)."""
    from tikting.metrics.engine import compute

    filters = {**scope, "opened_from": start.isoformat(), "opened_to": end.isoformat()}
    total = compute(metric_key, filters=filters).total
    value = None if total.value is None else Decimal(str(round(total.value, 4)))
    return value, total.count


@transaction.atomic
def bind_indicator(
    indicator: Indicator,
    *,
    actor,
    metric_key: str,
    scope: dict[str, Any] | None = None,
    window_start: dt.date,
    window_end: dt.date,
    expected_version: int | None = None,
) -> Indicator:
    """Bind an indicator to a tikting metric and scope, and compute its baseline over a window.

    The baseline comes from the records (e.g. MTTR of service E-mail, priority 2, over the last
    90 days), never typed in; its method says which metric, scope, window and how many records.
    Unit and direction follow the metric. Raises ValidationError naming `metric_key`, a scope
    filter or `window_start` when they cannot be used, or when the window holds no records.
    """
    from tikting.metrics.definitions import get_definition

    item = indicator.item
    P.check(actor, P.can_edit, item, what=f"edit indicators of {item.ref}")
    scope = {k: v for k, v in (scope or {}).items() if v not in (None, "")}
    if window_start > window_end:
        raise ValidationError({"window_start": "The window starts after it ends."})
    try:
        definition = get_definition(metric_key)
    except ValidationError as exc:
        raise ValidationError({"metric_key": exc.messages}) from exc
    value, count = metric_value(metric_key, scope, window_start, window_end)
    if value is None:
        raise ValidationError(
            {"window_start": f"No records in scope between {window_start} and {window_end}: no baseline."}
        )
    described = ", ".join(f"{k} {v}" for k, v in sorted(scope.items())) or "all records"
    locked = _lock(Indicator, indicator, expected_version)
    before = audit.snapshot(locked)
    locked.metric_key = metric_key
    locked.metric_scope = scope
    locked.unit = {"hours": "h"}.get(definition.unit, definition.unit)[:30]
    if definition.direction in C.Direction.values:
        locked.direction = definition.direction
    locked.baseline_value = value
    locked.baseline_date = window_end
    locked.baseline_method = (
        f"computed: {definition.label}, {described}, {window_start}..{window_end}, {count} records"
    )[:300]
    locked.version += 1
    locked.full_clean()
    locked.save()
    diff = audit.diff(before, audit.snapshot(locked))
    diff.pop("updated_at", None)
    audit.record(
        locked, action="update", actor=actor, root=locked.item, changes=diff, message="Bound to a metric"
    )
    _touch(locked.item)
    return locked


def take_computed_measurements(*, today: dt.date | None = None) -> int:
    """Measure every bound indicator whose item is acting, evaluating, or closed and under watch,
    once per measurement interval: the metric over the interval that just ended. Returns how many
    measurements were recorded. Run daily by `tikting register housekeeping`."""
    today = today or timezone.localdate()
    interval = dt.timedelta(days=settings.TIKTING_MEASUREMENT_INTERVAL_DAYS)
    watched = models.Q(item__status__in=[C.Status.ACTION, C.Status.EVALUATION]) | models.Q(
        item__status=C.Status.CLOSED, item__control_until__gte=today
    )
    taken = 0
    bound = Indicator.objects.exclude(metric_key="").filter(watched).select_related("item")
    for indicator in bound:
        last = (
            indicator.measurements.filter(source=Measurement.Source.COMPUTED).order_by("-measured_at").first()
        )
        if last is not None and timezone.localdate(last.measured_at) > today - interval:
            continue
        start = today - interval + dt.timedelta(days=1)
        value, count = metric_value(indicator.metric_key, indicator.metric_scope, start, today)
        if value is None:
            continue
        record_measurement(
            indicator,
            actor=None,
            value=value,
            measured_at=min(timezone.now(), timezone.make_aware(dt.datetime.combine(today, dt.time(23, 59)))),
            note=f"{start}..{today}, {count} records",
            source=Measurement.Source.COMPUTED,
        )
        taken += 1
    return taken
