"""Every operation that changes a sprint, its cards or its time logs.

Each runs in a transaction, takes the acting user as keyword-only `actor` (None: the system),
checks permission (permissions.py), validates (ValidationError naming the fields) and writes an
audit row (tikting.core.audit.record) with the sprint as the root, so the sprint page's history
holds everything that happened to it. Edits that can race carry `expected_version`
(ConflictError when stale).

Decision taken: a review's "close" is a decision recorded for the item's owner to act on (as a
governance minute is): it does not close the register item, whose closure needs its own outcome
and evaluation (improvement.services.close_item).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max, Sum
from django.utils import timezone

from tikting.accounts.models import Actor, Team, User
from tikting.core import audit
from tikting.core.bounds import check_long_text
from tikting.core.exceptions import ConflictError, PermissionDeniedError
from tikting.improvement.models import Item
from tikting.lib import display

from . import permissions as P
from .models import (
    MAX_DAYS,
    MIN_DAYS,
    Column,
    Decision,
    Disposition,
    Sprint,
    SprintItem,
    SprintStatus,
    TimeLog,
    max_items,
)
from .results import measured_result

SPRINT_FIELDS = ("name", "goal", "start", "end", "over_scope_reason")
MAX_HOURS_A_DAY = Decimal("24")


def _user(actor: Actor) -> User | None:
    return actor if isinstance(actor, User) and actor.pk else None


def _require(allowed: bool, what: str) -> None:
    if not allowed:
        raise PermissionDeniedError(f"You may not {what}.")


def _check_version(obj: Sprint | SprintItem, expected_version: int | None) -> None:
    if expected_version is not None and obj.version != expected_version:
        raise ConflictError(obj, expected_version)


def _check_open(sprint: Sprint, what: str) -> None:
    if sprint.is_closed:
        raise ValidationError({"status": f"'{sprint}' has been reviewed and closed: you cannot {what}."})


def _hours(value: Any, field: str, *, allow_zero: bool = True) -> Decimal:
    try:
        hours = Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError) as exc:
        raise ValidationError({field: f"'{value}' is not a number of hours."}) from exc
    if hours < 0 or (hours == 0 and not allow_zero):
        raise ValidationError(
            {field: "Hours must be more than 0." if not allow_zero else "Hours cannot be negative."}
        )
    return hours


def _check_dates(start: dt.date, end: dt.date) -> None:
    days = (end - start).days + 1
    if days < MIN_DAYS or days > MAX_DAYS:
        raise ValidationError(
            {
                "end": f"A sprint lasts two to four weeks ({MIN_DAYS} to {MAX_DAYS} days); "
                f"this one is {days} days."
            }
        )


def _locked(sprint: Sprint) -> Sprint:
    return Sprint.objects.select_for_update().select_related("team").get(pk=sprint.pk)


# --- Sprints ------------------------------------------------------------------------------------


@transaction.atomic
def create_sprint(*, actor: Actor, team: Team, name: str, goal: str, start: dt.date, end: dt.date) -> Sprint:
    """Plan a sprint for `team` (managers and improvement owners). Records `create`.
    Raises ValidationError for a blank goal or name, or dates outside two to four weeks."""
    _require(P.can_plan(actor), "plan improvement sprints")
    errors: dict[str, str] = {}
    if not (name or "").strip():
        errors["name"] = "Give the sprint a name."
    if not (goal or "").strip():
        errors["goal"] = "Say what the sprint is for: its goal."
    if errors:
        raise ValidationError(errors)
    check_long_text(goal=goal)
    _check_dates(start, end)
    sprint = Sprint.objects.create(
        team=team, name=name.strip(), goal=goal.strip(), start=start, end=end, created_by=_user(actor)
    )
    audit.record(
        sprint, action="create", actor=actor, changes=audit.diff({}, audit.snapshot(sprint, SPRINT_FIELDS))
    )
    return sprint


@transaction.atomic
def update_sprint(
    sprint: Sprint, *, actor: Actor, expected_version: int | None = None, **fields: Any
) -> Sprint:
    """Change a sprint's name, goal or dates (planners; not once reviewed). Records `update`."""
    _require(P.can_plan(actor), "change improvement sprints")
    unknown = set(fields) - {"name", "goal", "start", "end"}
    if unknown:
        raise ValidationError(dict.fromkeys(sorted(unknown), "This field cannot be changed here."))
    sprint = _locked(sprint)
    _check_version(sprint, expected_version)
    _check_open(sprint, "change it")
    before = audit.snapshot(sprint, SPRINT_FIELDS)
    for name, value in fields.items():
        setattr(sprint, name, value.strip() if isinstance(value, str) else value)
    if not sprint.goal:
        raise ValidationError({"goal": "Say what the sprint is for: its goal."})
    check_long_text(goal=sprint.goal)
    _check_dates(sprint.start, sprint.end)
    sprint.version += 1
    sprint.save()
    audit.record(
        sprint,
        action="update",
        actor=actor,
        changes=audit.diff(before, audit.snapshot(sprint, SPRINT_FIELDS)),
    )
    return sprint


@transaction.atomic
def start_sprint(sprint: Sprint, *, actor: Actor, expected_version: int | None = None) -> Sprint:
    """Planned -> active (planners). Needs at least one item in scope. Records the status change."""
    _require(P.can_plan(actor), "start improvement sprints")
    sprint = _locked(sprint)
    _check_version(sprint, expected_version)
    if sprint.status != SprintStatus.PLANNED:
        raise ValidationError(
            {"status": f"'{sprint}' is {sprint.get_status_display().lower()}, not planned."}
        )
    if not sprint.cards.exists():
        raise ValidationError({"items": "Add at least one register item before starting the sprint."})
    sprint.status = SprintStatus.ACTIVE
    sprint.version += 1
    sprint.save(update_fields=["status", "version", "updated_at"])
    audit.record_status(sprint, old=SprintStatus.PLANNED, new=SprintStatus.ACTIVE, actor=actor)
    audit.record(
        sprint,
        action="update",
        actor=actor,
        changes={"status": [SprintStatus.PLANNED, SprintStatus.ACTIVE]},
        message="Sprint started",
    )
    return sprint


# --- Scope --------------------------------------------------------------------------------------


def scope_warning(sprint: Sprint, adding: int = 1) -> str:
    """The warning planning shows when adding `adding` items takes the scope past the configured
    size ("" when within it)."""
    limit = max_items()
    size = sprint.cards.count() + adding
    if size <= limit:
        return ""
    return (
        f"A sprint works best with a small scope: this would make {size} items, past the "
        f"configured {limit} (TIKTING_SPRINT_MAX_ITEMS). Give a reason to go past it."
    )


@transaction.atomic
def add_sprint_item(
    sprint: Sprint,
    *,
    actor: Actor,
    item: Item,
    planned_hours: Any = 0,
    over_scope_reason: str = "",
) -> SprintItem:
    """Put a register item in a sprint's scope (planners). The item must be open and in no other
    open sprint. Past the configured size (TIKTING_SPRINT_MAX_ITEMS) it needs
    `over_scope_reason`, kept on the sprint and in its history. Records `add_item`."""
    _require(P.can_plan(actor), "plan improvement sprints")
    sprint = _locked(sprint)
    _check_open(sprint, "change its scope")
    hours = _hours(planned_hours, "planned_hours")
    if not item.is_open:
        raise ValidationError(
            {"item": f"{item.ref} is {item.get_status_display().lower()}: only open items go into a sprint."}
        )
    other = (
        SprintItem.objects.filter(item=item)
        .exclude(sprint__status=SprintStatus.CLOSED)
        .select_related("sprint")
        .first()
    )
    if other is not None:
        where = "this sprint" if other.sprint_id == sprint.pk else f"'{other.sprint}'"
        raise ValidationError({"item": f"{item.ref} is already in {where}."})
    warning = scope_warning(sprint)
    reason = (over_scope_reason or "").strip()
    if warning and not reason:
        raise ValidationError({"over_scope_reason": warning})
    check_long_text(over_scope_reason=reason)
    position = (sprint.cards.filter(column=Column.TODO).aggregate(m=Max("position"))["m"] or 0) + 1
    card = SprintItem.objects.create(sprint=sprint, item=item, planned_hours=hours, position=position)
    changes: dict[str, Any] = {"item": item.ref, "planned_hours": str(hours)}
    if warning:
        sprint.over_scope_reason = "\n".join(
            filter(None, [sprint.over_scope_reason, f"{item.ref}: {reason}"])
        )
        sprint.version += 1
        sprint.save(update_fields=["over_scope_reason", "version", "updated_at"])
        changes["over_scope_reason"] = reason
    audit.record(
        card, action="create", actor=actor, root=sprint, changes=changes, message="Added to the sprint"
    )
    return card


@transaction.atomic
def remove_sprint_item(card: SprintItem, *, actor: Actor) -> None:
    """Take an item out of a sprint's scope (planners), when no hours are logged on it."""
    _require(P.can_plan(actor), "plan improvement sprints")
    sprint = _locked(card.sprint)
    _check_open(sprint, "change its scope")
    if card.time_logs.exists():
        raise ValidationError(
            {"item": f"Hours are logged on {card.item.ref}: it stays in the sprint's record."}
        )
    audit.record(
        card,
        action="delete",
        actor=actor,
        root=sprint,
        changes={"item": card.item.ref},
        message="Taken out of the sprint",
    )
    card.delete()


@transaction.atomic
def move_card(
    card: SprintItem,
    *,
    actor: Actor,
    column: str,
    position: int | None = None,
    expected_version: int | None = None,
) -> SprintItem:
    """Move a card to `column` (to do / doing / done), at `position` (1 first; default: last).
    Planners and the sprint team's members. Records `move` when the column changes."""
    sprint = card.sprint
    _require(P.can_work(actor, sprint), "move cards on this sprint's board")
    if column not in Column.values:
        raise ValidationError({"column": f"'{column}' is not a board column ({', '.join(Column.values)})."})
    _locked(sprint)
    _check_open(sprint, "move its cards")
    card = SprintItem.objects.select_for_update().select_related("item").get(pk=card.pk)
    _check_version(card, expected_version)
    old = card.column
    siblings = list(sprint.cards.filter(column=column).exclude(pk=card.pk).order_by("position", "id"))
    index = len(siblings) if position is None else max(0, min(int(position) - 1, len(siblings)))
    siblings.insert(index, card)
    for number, sibling in enumerate(siblings, start=1):
        if sibling.pk != card.pk and sibling.position != number:
            SprintItem.objects.filter(pk=sibling.pk).update(position=number)
    card.column = column
    card.position = index + 1
    card.version += 1
    card.save(update_fields=["column", "position", "version"])
    if old != column:
        audit.record(
            card,
            action="update",
            actor=actor,
            root=sprint,
            changes={"column": [old, column], "item": card.item.ref},
            message=f"Moved to {card.get_column_display()}",
        )
    return card


# --- Time ---------------------------------------------------------------------------------------


@transaction.atomic
def log_time(
    card: SprintItem,
    *,
    actor: Actor,
    hours: Any,
    day: dt.date | None = None,
    note: str = "",
    user: User | None = None,
) -> TimeLog:
    """Log hours spent on a sprint item. The logger is the person who did the work: the sprint
    team's members, the item's owner and managers log for themselves; only managers log for
    someone else (`user`). The day lies within the sprint and not in the future; at most 24 hours
    a day per person. Records `log_time`."""
    me = _user(actor)
    worker = user or me
    if worker is None:
        raise ValidationError({"user": "Say whose hours these are."})
    if worker != me:
        _require(P.can_log_for_others(actor), "log hours for someone else")
    else:
        _require(P.can_log(actor, card), "log hours on this sprint")
    sprint = _locked(card.sprint)
    _check_open(sprint, "log hours on it")
    amount = _hours(hours, "hours", allow_zero=False)
    day = day or timezone.localdate()
    if not sprint.contains(day):
        raise ValidationError(
            {
                "day": f"{display.when(day)} is outside the sprint "
                f"({display.when(sprint.start)} to {display.when(sprint.end)})."
            }
        )
    if day > timezone.localdate():
        raise ValidationError({"day": "Hours are logged once spent: the day is in the future."})
    total = TimeLog.objects.filter(user=worker, day=day).aggregate(total=Sum("hours"))["total"] or Decimal(0)
    if total + amount > MAX_HOURS_A_DAY:
        raise ValidationError(
            {
                "hours": f"{worker} already has {display.number(total)} h logged on {display.when(day)}: "
                "a day has 24."
            }
        )
    note = (note or "").strip()[:300]
    entry = TimeLog.objects.create(card=card, user=worker, logged_by=me, day=day, hours=amount, note=note)
    audit.record(
        entry,
        action="create",
        actor=actor,
        root=sprint,
        changes={
            "item": card.item.ref,
            "user": worker.username,
            "day": day.isoformat(),
            "hours": str(amount),
        },
        message="Hours logged",
    )
    return entry


# --- The review ---------------------------------------------------------------------------------


@transaction.atomic
def review_sprint(
    sprint: Sprint,
    *,
    actor: Actor,
    what_changed: str,
    decisions: dict[int, dict[str, str]],
    next_sprint: Sprint | None = None,
    expected_version: int | None = None,
) -> Sprint:
    """Hold the sprint review (planners) and close the sprint.

    `decisions` maps each card's id to {"decision": continue|adjust|close, "note": ...,
    "disposition": register|next_sprint}. Every card needs a decision; every card not closed needs
    to say where it goes: back to the register or into `next_sprint` (an open sprint of the same
    team), where it is added. The measured result of each item (measured_result: its primary
    indicator's latest measurement against baseline and target) is kept on the card as it stood.
    Records `review` on the sprint and `decide` per card."""
    _require(P.can_plan(actor), "hold sprint reviews")
    sprint = _locked(sprint)
    _check_version(sprint, expected_version)
    _check_open(sprint, "review it again")
    errors: dict[str, str] = {}
    what_changed = (what_changed or "").strip()
    if not what_changed:
        errors["what_changed"] = "Record what changed during the sprint."
    cards = list(sprint.cards.select_related("item").prefetch_related("item__indicators__measurements"))
    for card in cards:
        given = decisions.get(card.pk, {})
        decision = given.get("decision", "")
        disposition = given.get("disposition", "")
        if decision not in Decision.values:
            errors[f"decision_{card.pk}"] = f"Decide continue, adjust or close for {card.item.ref}."
        elif decision != Decision.CLOSE and disposition not in (
            Disposition.REGISTER,
            Disposition.NEXT_SPRINT,
        ):
            errors[f"disposition_{card.pk}"] = (
                f"Say where {card.item.ref} goes: back to the register or into the next sprint."
            )
        elif decision != Decision.CLOSE and disposition == Disposition.NEXT_SPRINT and next_sprint is None:
            errors["next_sprint"] = f"Choose the next sprint {card.item.ref} goes into."
    if next_sprint is not None and (
        next_sprint.team_id != sprint.team_id or next_sprint.is_closed or next_sprint.pk == sprint.pk
    ):
        errors["next_sprint"] = "The next sprint is an open sprint of the same team."
    if errors:
        raise ValidationError(errors)
    check_long_text(what_changed=what_changed)
    now = timezone.now()
    for card in cards:
        given = decisions[card.pk]
        card.decision = given["decision"]
        card.decision_note = (given.get("note") or "").strip()
        card.disposition = Disposition.CLOSED if card.decision == Decision.CLOSE else given["disposition"]
        card.result = measured_result(card.item)
        card.version += 1
        card.save(update_fields=["decision", "decision_note", "disposition", "result", "version"])
        audit.record(
            card,
            action="update",
            actor=actor,
            root=sprint,
            changes={
                "item": card.item.ref,
                "decision": card.decision,
                "disposition": card.disposition,
                "column": card.column,
            },
            message=f"Review: {card.get_decision_display()}. {card.decision_note}"[:300],
        )
    sprint.status = SprintStatus.CLOSED
    sprint.what_changed = what_changed
    sprint.reviewed_at = now
    sprint.reviewed_by = _user(actor)
    sprint.version += 1
    sprint.save()
    audit.record_status(
        sprint, old=SprintStatus.ACTIVE, new=SprintStatus.CLOSED, actor=actor, reason=what_changed[:300]
    )
    audit.record(
        sprint,
        action="update",
        actor=actor,
        changes={"what_changed": what_changed},
        message="Sprint reviewed and closed",
    )
    for card in cards:
        if card.disposition == Disposition.NEXT_SPRINT and next_sprint is not None:
            # Explicitly carried over: the item's place in the next sprint, past any scope warning
            # (the review is the reason, and says so).
            carried = SprintItem.objects.create(
                sprint=next_sprint,
                item=card.item,
                planned_hours=card.planned_hours,
                position=(next_sprint.cards.aggregate(m=Max("position"))["m"] or 0) + 1,
            )
            audit.record(
                carried,
                action="create",
                actor=actor,
                root=next_sprint,
                changes={"item": card.item.ref, "carried_from": sprint.name},
                message="Carried over from the sprint review",
            )
    return sprint
