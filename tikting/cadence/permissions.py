"""Who may do what with sprints. Used by services (UI, API and commands agree) and templates.

Managers and improvement owners plan (create, scope, start, review); the sprint team's members
move cards and log their own hours, as do the owners of the items in scope; only managers log
hours for someone else. Everyone with a role reads. `actor=None` is the system.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tikting.accounts.models import Role

if TYPE_CHECKING:
    from .models import Sprint, SprintItem


def _has(user: Any, role: str) -> bool:
    return user is not None and user.is_authenticated and user.has_role(role)


def can_view(user: Any) -> bool:
    return user is None or _has(user, Role.VIEWER)


def can_plan(user: Any) -> bool:
    return user is None or _has(user, Role.OWNER)


def can_lead(user: Any) -> bool:
    """Read the leadership view: improvement managers and administrators (IT leaders hold one of
    these roles; the page puts decisions to them)."""
    return _has(user, Role.MANAGER)


def can_log_for_others(user: Any) -> bool:
    return user is None or _has(user, Role.MANAGER)


def is_member(user: Any, sprint: Sprint) -> bool:
    return _has(user, Role.CONTRIBUTOR) and user.team_id is not None and user.team_id == sprint.team_id


def can_work(user: Any, sprint: Sprint) -> bool:
    """Move cards on the board: planners and the team's members."""
    return can_plan(user) or is_member(user, sprint)


def can_log(user: Any, card: SprintItem) -> bool:
    """Log one's own hours on a card: the team's members, the item's owner and managers."""
    if user is None or can_log_for_others(user) or is_member(user, card.sprint):
        return True
    return _has(user, Role.CONTRIBUTOR) and card.item.owner_id == user.pk
