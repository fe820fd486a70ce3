"""Services of an item's actions (step 5): plan, update or mark done, cancel with a reason (or
reinstate), remove while still planning."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from tikting.accounts.models import Actor, User
from tikting.core import audit
from tikting.core.bounds import check_long_text

from .. import choices as C
from .. import permissions as P
from ..models import Action, Item
from .common import (
    ACTION_FIELDS,
    _announce_owner,
    _check_fields,
    _check_worker,
    _check_writable,
    _lock,
    _pk,
    _touch,
)

# Once the item acts on its plan, the plan is on record: an action that will not be done is
# cancelled with a reason, not removed.
PLANNING_STATUSES = frozenset({C.Status.NEW, C.Status.DEFERRED, *C.STEPS[: C.STEPS.index(C.Status.ACTION)]})


@transaction.atomic
def add_action(
    item: Item, *, actor: Actor, title: str, owner: User | None = None, due_date: dt.date | None = None
) -> Action:
    """Plan an action of the item, optionally with an owner and a due date."""
    P.check(actor, P.can_drive, item, what=f"plan actions for {item.ref}")
    _check_writable(item, "plan actions for it")
    _check_worker(owner)
    action = Action(item=item, title=(title or "").strip(), owner=owner, due_date=due_date)
    action.full_clean()
    action.save()
    audit.record(
        action, action="create", actor=actor, root=item, changes=audit.diff({}, audit.snapshot(action))
    )
    _touch(item)
    _announce_owner(item, action.owner_id, actor=actor, what=f"the action “{action.title}”")
    return action


@transaction.atomic
def update_action(
    action: Action, *, actor: Actor, expected_version: int | None = None, **changes: Any
) -> Action:
    """Change the fields given (ACTION_FIELDS); marking it done stamps done_at. ConflictError when
    the action changed since `expected_version`. The item's driver changes anything; the action's
    own owner all but its owner (permissions.can_update_action)."""
    ref = action.item.ref
    handover = "owner" in changes and _pk(changes["owner"]) != action.owner_id
    what = f"change actions of {ref}"
    if handover and actor is not None and P.can_update_action(actor, action):
        what = f"hand the action over to someone else (the owner of {ref} or a manager does)"
    P.check(actor, P.can_update_action, action, {"owner"} if handover else (), what=what)
    _check_fields(changes, ACTION_FIELDS)
    if handover:
        _check_worker(changes["owner"])
    locked = _lock(Action, action, expected_version)
    _check_writable(locked.item, "change its actions")
    if locked.cancelled and changes.get("done"):
        message = (
            f"“{locked.title}” was cancelled ({locked.cancel_reason}): reinstate it before marking it done."
        )
        raise ValidationError({"done": message})
    before = audit.snapshot(locked)
    for name, value in changes.items():
        setattr(locked, name, value)
    if "done" in changes:
        locked.done_at = timezone.now() if locked.done else None
    saved = _save_action(locked, before, actor=actor)
    if handover:
        _announce_owner(saved.item, saved.owner_id, actor=actor, what=f"the action “{saved.title}”")
    return saved


def _save_action(locked: Action, before: dict[str, Any], *, actor: Actor, message: str = "") -> Action:
    locked.version += 1
    locked.full_clean()
    locked.save()
    audit.record(
        locked,
        action="update",
        actor=actor,
        root=locked.item,
        changes=audit.diff(before, audit.snapshot(locked)),
        message=message,
    )
    _touch(locked.item)
    return locked


@transaction.atomic
def cancel_action(
    action: Action, *, actor: Actor, reason: str, expected_version: int | None = None
) -> Action:
    """Cancel an open action, saying why: it stays in the plan, marked cancelled with the reason,
    and no longer holds the item back from evaluation or closure. Whoever drives the item."""
    item = action.item
    P.check(actor, P.can_drive, item, what=f"cancel actions of {item.ref}")
    locked = _lock(Action, action, expected_version)
    _check_writable(locked.item, "cancel its actions")
    reason = (reason or "").strip()
    if not locked.is_open:
        state = "done" if locked.done else "already cancelled"
        raise ValidationError({"cancelled": f"“{locked.title}” is {state}: only open actions are cancelled."})
    if not reason:
        raise ValidationError({"cancel_reason": f"Say why “{locked.title}” will not be done."})
    check_long_text(cancel_reason=reason)
    before = audit.snapshot(locked)
    locked.cancelled = True
    locked.cancel_reason = reason
    locked.cancelled_at = timezone.now()
    return _save_action(locked, before, actor=actor, message=f"Action “{locked.title}” cancelled: {reason}")


@transaction.atomic
def reinstate_action(action: Action, *, actor: Actor, expected_version: int | None = None) -> Action:
    """Take a cancellation back: the action is open again (its reason stays in the history)."""
    item = action.item
    P.check(actor, P.can_drive, item, what=f"reinstate actions of {item.ref}")
    locked = _lock(Action, action, expected_version)
    _check_writable(locked.item, "reinstate its actions")
    if not locked.cancelled:
        raise ValidationError({"cancelled": f"“{locked.title}” is not cancelled."})
    before = audit.snapshot(locked)
    locked.cancelled = False
    locked.cancel_reason = ""
    locked.cancelled_at = None
    return _save_action(locked, before, actor=actor, message=f"Action “{locked.title}” reinstated")


@transaction.atomic
def remove_action(action: Action, *, actor: Actor) -> None:
    """Delete the action while the item is still planning (up to step 4); the audit row keeps what
    it was. From step 5 on the plan is on record: cancel the action with a reason instead."""
    item = action.item
    P.check(actor, P.can_drive, item, what=f"change actions of {item.ref}")
    _check_writable(item, "remove its actions")
    if item.status not in PLANNING_STATUSES:
        raise ValidationError(
            {
                "status": f"{item.ref} is at '{item.get_status_display()}': its plan is on record, so "
                f"“{action.title}” is not removed. Cancel it with a reason instead."
            }
        )
    audit.record(
        action, action="delete", actor=actor, root=item, changes=audit.diff(audit.snapshot(action), {})
    )
    action.delete()
    _touch(item)
