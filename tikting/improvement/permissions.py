"""Who may do what in the register. Used by services (so UI, API and CLI agree) and by templates.

`actor=None` is the system itself (CLI set-up, scheduled tasks) and may do everything.
"""

from __future__ import annotations

from tikting.accounts.models import Role
from tikting.core.exceptions import PermissionDeniedError

from . import choices as C


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


def require(allowed: bool, what: str) -> None:
    if not allowed:
        raise PermissionDeniedError(f"You may not {what}.")


def check(actor, predicate, *args, what: str) -> None:
    """Raise PermissionDeniedError unless the system acts or predicate(actor, *args) holds."""
    if actor is None:
        return
    require(predicate(actor, *args), what)
