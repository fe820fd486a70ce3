"""Who may do what in the intake queue. Used by services (so UI, API and CLI agree) and by views.

Every signed-in user reads the queue (the register is open to every role the same way) and may
give staff feedback; contributors and above submit post-incident review and audit findings;
improvement managers and administrators triage candidates and run detectors. An anonymous
reporter's name is shown to improvement managers, administrators and the reporter only.
`actor=None` is the system itself (CLI, scheduled tasks) and may do everything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tikting.accounts.models import Actor, Role
from tikting.core.exceptions import PermissionDeniedError

if TYPE_CHECKING:
    from .models import Candidate


def _has(user: Actor, role: str) -> bool:
    return bool(user is not None and user.is_authenticated and user.has_role(role))


def can_view(user: Actor) -> bool:
    return _has(user, Role.VIEWER)


def can_triage(user: Actor) -> bool:
    """Accept, merge, defer, dismiss candidates; run detectors now."""
    return _has(user, Role.MANAGER)


def can_report(user: Actor, role: str) -> bool:
    """Submit through a manual channel whose lowest role is `role`."""
    return _has(user, role)


def can_see_reporter(user: Actor, candidate: Candidate) -> bool:
    """An anonymous reporter stays anonymous to peers: only managers, administrators and the
    reporter see who it was."""
    if not candidate.anonymous:
        return True
    if _has(user, Role.MANAGER):
        return True
    return bool(user is not None and user.is_authenticated and user.pk == candidate.reporter_id)


def check(actor: Actor, allowed: bool, what: str) -> None:
    """Raise PermissionDeniedError unless the system acts (actor None) or `allowed`."""
    if actor is not None and not allowed:
        raise PermissionDeniedError(f"You may not {what}.")
