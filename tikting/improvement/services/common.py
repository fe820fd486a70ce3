"""What the service modules share: the fields each may set, locking, saving an item, status rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.utils import timezone

from tikting.accounts.models import Actor, Role, User
from tikting.core import audit, events
from tikting.core.exceptions import ConflictError

from .. import choices as C
from .. import permissions as P
from ..models import Action, Indicator, Item

# The records edited with optimistic concurrency (a `version` column).
Versioned = TypeVar("Versioned", Item, Indicator, Action)

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
        "min_value",
        "max_value",
        "metric_key",
        "metric_scope",
        "owner",
    }
)
ACTION_FIELDS = frozenset({"title", "owner", "due_date", "done"})


def read_only_message(item: Item, what: str) -> str:
    """Why a closed or rejected item refuses a change (`what`: "edit it"), and what can be done."""
    if item.status == C.Status.CLOSED:
        allowed = "comments, follow-ups and, while it is watched for sustainment, measurements"
    else:
        allowed = "comments"
    return (
        f"{item.ref} is {item.get_status_display().lower()}: it is read-only, so you cannot {what}. "
        f"Only {allowed} are added; an improvement manager reopens it (with a reason) to change "
        "anything else."
    )


def _check_writable(item: Item, what: str) -> None:
    """Refuse a change to a closed or rejected item (Item.read_only): it is a record now."""
    if item.read_only:
        raise ValidationError({"status": read_only_message(item, what)})


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


def _lock(model: type[Versioned], obj: Versioned, expected_version: int | None) -> Versioned:
    """The row locked for update; ConflictError when it is no longer at `expected_version`."""
    locked = model._default_manager.select_for_update().get(pk=obj.pk)
    if expected_version is not None and locked.version != int(expected_version):
        raise ConflictError(locked, expected_version)
    return locked


def _touch(item: Item, now: dt.datetime | None = None) -> None:
    """A child of the item changed: the item is not stale."""
    Item.objects.filter(pk=item.pk).update(last_activity_at=now or timezone.now())


def _save_item(item: Item, before: dict[str, Any], *, actor: Actor, message: str = "") -> Item:
    item.version += 1
    item.last_activity_at = timezone.now()
    item.full_clean()
    item.save()
    changes = audit.diff(before, audit.snapshot(item))
    changes.pop("last_activity_at", None)
    changes.pop("updated_at", None)
    audit.record(item, action="update", actor=actor, changes=changes, message=message)
    return item


def _set_status(item: Item, new: str, *, actor: Actor, reason: str = "") -> None:
    old = item.status
    item.status = new
    item.status_changed_at = timezone.now()
    audit.record_status(item, old=old, new=new, actor=actor, reason=reason, at=item.status_changed_at)
    if old != new:
        events.emit(
            events.Kind.STATUS_CHANGED,
            item,
            actor=actor,
            summary=f"{item.ref} {item.title}: {C.Status(old).label if old else 'new'} → "
            f"{C.Status(new).label}" + (f": {reason}" if reason else ""),
            data={"old": old, "new": new},
        )


def _announce_owner(item: Item, owner_id: int | None, *, actor: Actor, what: str = "") -> None:
    """Tell a new owner (of the item, or of `what` in it: an action) that it is theirs now."""
    if owner_id is None:
        return
    events.emit(
        events.Kind.ASSIGNED,
        item,
        actor=actor,
        summary=f"{item.ref} {item.title}: {what or 'the item'} assigned to you"[:300],
        recipients=[owner_id],
        data={"what": what or "item"},
    )


def _pk(value: Any) -> Any:
    return getattr(value, "pk", value)


def _check_owner(owner: User | int | None) -> None:
    """An item's owner (a user or a user id) must be an active user with the owner role or above."""
    if owner is None:
        return
    user = owner if isinstance(owner, User) else User.objects.filter(pk=owner).first()
    if user is None or not user.has_role(Role.OWNER):
        raise ValidationError({"owner": "The owner must be an active user with the owner role or above."})


def _check_worker(owner: User | int | None) -> None:
    """An action's or an indicator's owner (a user or a user id) must be able to act on it: an
    active user with the contributor role or above (permissions.can_own_work)."""
    if owner is None:
        return
    user = owner if isinstance(owner, User) else User.objects.filter(pk=owner).first()
    if not P.can_own_work(user):
        message = "The owner must be an active user with the contributor role or above (viewers only read)."
        raise ValidationError({"owner": message})


def _user(actor: Actor) -> User | None:
    """The acting user as stored on a row (author, recorded by): None for the system."""
    return actor if isinstance(actor, User) and actor.pk else None
