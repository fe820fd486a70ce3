"""Who may do what in the register. Used by services (so UI, API and CLI agree) and by templates.

`actor=None` is the system itself (CLI set-up, scheduled tasks) and may do everything.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from tikting.accounts.models import Role
from tikting.core.exceptions import PermissionDeniedError

from . import choices as C

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

    from tikting.accounts.models import User

    from .models import Action, Indicator

    AnyUser = User | AnonymousUser | None


def _has(user, role: str) -> bool:
    return user is not None and user.is_authenticated and user.has_role(role)


def can_view(user) -> bool:
    return _has(user, Role.VIEWER)


def can_submit(user) -> bool:
    return _has(user, Role.CONTRIBUTOR)


def can_comment(user) -> bool:
    return _has(user, Role.CONTRIBUTOR)


def can_manage(user) -> bool:
    """Assess, assign owners, rank, escalate, record minutes, edit every item."""
    return _has(user, Role.MANAGER)


def can_edit(user, item) -> bool:
    """Managers edit every item; owners the items they own; submitters their own item until assessed."""
    if can_manage(user):
        return True
    if _has(user, Role.OWNER) and item.owner_id == user.pk:
        return True
    return bool(
        _has(user, Role.CONTRIBUTOR) and item.status == C.Status.NEW and item.submitted_by_id == user.pk
    )


def can_drive(user, item) -> bool:
    """Move an item through the steps, record measurements and actions: its owner or a manager."""
    if can_manage(user):
        return True
    return _has(user, Role.OWNER) and item.owner_id == user.pk


def can_update_action(user: AnyUser, action: Action, fields: Iterable[str] = ()) -> bool:
    """Update an action and mark it done: whoever drives its item, and the action's own owner
    (a contributor or above, whatever the item), who may change its title, due date and
    progress but not hand it to someone else (`fields` names what changes). Adding and removing
    actions is planning, left to the item's driver."""
    if can_drive(user, action.item):
        return True
    if user is None or not _has(user, Role.CONTRIBUTOR):
        return False
    return action.owner_id == user.pk and "owner" not in set(fields)


def can_measure(user: AnyUser, indicator: Indicator) -> bool:
    """Record a measurement of an indicator: whoever drives its item, and the indicator's owner
    (a contributor or above: the person who takes the measure)."""
    if can_drive(user, indicator.item):
        return True
    if user is None or not _has(user, Role.CONTRIBUTOR):
        return False
    return indicator.owner_id is not None and indicator.owner_id == user.pk


def can_own_work(user: AnyUser) -> bool:
    """Who may be given an action or an indicator to look after: active contributors and above."""
    return _has(user, Role.CONTRIBUTOR)


def require(allowed: bool, what: str) -> None:
    if not allowed:
        raise PermissionDeniedError(f"You may not {what}.")


def check(actor, predicate, *args, what: str) -> None:
    """Raise PermissionDeniedError unless the system acts or predicate(actor, *args) holds."""
    if actor is None:
        return
    require(predicate(actor, *args), what)
