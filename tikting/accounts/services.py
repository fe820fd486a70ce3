"""Operations on accounts: API tokens are issued and revoked here, by the UI, the API and the CLI."""

from __future__ import annotations

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from tikting.core import audit

from .models import ApiToken, User


@transaction.atomic
def issue_token(user: User | None = None, *, actor: User | None, name: str) -> tuple[ApiToken, str]:
    """Issue a token for `user` (default: the actor); returns it and its raw value, known only now.

    Writes an audit row on the user. `actor=None` is the system (the `tikting token` command).
    """
    owner = user or actor
    if owner is None:
        raise ValueError("issue_token needs a user or an actor")
    token, raw = ApiToken.issue(owner, (name or "").strip() or "token")
    audit.record(token, action="create", actor=actor, root=owner, changes={"name": [None, token.name]})
    return token, raw


@transaction.atomic
def revoke_token(token: ApiToken, *, actor: User | None) -> ApiToken:
    """Revoke a token now (idempotent): requests with it answer 401 from then on. Audited."""
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit.record(
            token,
            action="update",
            actor=actor,
            root=token.user,
            changes={"revoked_at": [None, token.revoked_at.isoformat()]},
            message="Token revoked",
        )
    return token


def own_tokens(user: User) -> QuerySet[ApiToken]:
    """A user's tokens, active first."""
    return ApiToken.objects.filter(user=user).order_by("revoked_at", "-created_at")
