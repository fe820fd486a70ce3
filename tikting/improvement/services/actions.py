"""Services of an item's actions (step 5): plan, update or mark done, remove."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils import timezone

from tikting.accounts.models import Actor, User
from tikting.core import audit

from .. import permissions as P
from ..models import Action, Item
from .common import ACTION_FIELDS, _check_fields, _check_worker, _lock, _pk, _touch


@transaction.atomic
def add_action(
    item: Item, *, actor: Actor, title: str, owner: User | None = None, due_date: dt.date | None = None
) -> Action:
    """Plan an action of the item, optionally with an owner and a due date."""
    P.check(actor, P.can_drive, item, what=f"plan actions for {item.ref}")
    _check_worker(owner)
    action = Action(item=item, title=(title or "").strip(), owner=owner, due_date=due_date)
    action.full_clean()
    action.save()
    audit.record(
        action, action="create", actor=actor, root=item, changes=audit.diff({}, audit.snapshot(action))
    )
    _touch(item)
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
def remove_action(action: Action, *, actor: Actor) -> None:
    """Delete the action; the audit row keeps what it was."""
    item = action.item
    P.check(actor, P.can_drive, item, what=f"change actions of {item.ref}")
    audit.record(
        action, action="delete", actor=actor, root=item, changes=audit.diff(audit.snapshot(action), {})
    )
    action.delete()
    _touch(item)
