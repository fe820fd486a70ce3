"""Agent tokens: created and revoked by administrators (with history), checked on every agent
request. The secret travels as the HTTP basic-auth password (the user name is free: AGENT_USER by
convention), so it stays out of URLs and therefore out of web server and proxy access logs."""

from __future__ import annotations

import base64
import binascii
import hmac

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from tikting.accounts.models import Actor
from tikting.core import audit
from tikting.core.exceptions import PermissionDeniedError

from ..agent_models import AgentToken

__all__ = ["AGENT_USER", "authenticate", "create_agent_token", "revoke_agent_token"]

AGENT_USER = "agent"


def _check_admin(actor: Actor) -> None:
    """Agent tokens are an administrator's (None: the system, i.e. the command line's set-up)."""
    if actor is None:
        return
    if not getattr(actor, "is_authenticated", False) or not actor.has_role("admin"):  # type: ignore[union-attr]
        raise PermissionDeniedError("Only an administrator may create or revoke agent tokens.")


def create_agent_token(*, name: str, actor: Actor) -> tuple[AgentToken, str]:
    """Create an agent token named `name`; returns it and its secret (the only time it is known).
    Records the creation in the token's history. Raises PermissionDeniedError for a non-admin,
    ValidationError({"name": …}) for an empty or too long name."""
    _check_admin(actor)
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Give the token a name saying which agents use it."})
    if len(name) > 100 or "\x00" in name:
        raise ValidationError({"name": "The name must be at most 100 characters, without NUL."})
    secret = AgentToken.new_secret()
    with transaction.atomic():
        token = AgentToken.objects.create(
            name=name,
            key_hash=AgentToken.hash(secret),
            key_hint=secret[:10],
            created_by=actor if getattr(actor, "pk", None) else None,  # type: ignore[misc]
        )
        audit.record(
            token, action="create", actor=actor, changes={"name": [None, name]}, message="Agent token created"
        )
    return token, secret


def revoke_agent_token(token: AgentToken, *, actor: Actor) -> AgentToken:
    """Revoke a token: agents sending it are refused from now on. Recorded in its history;
    revoking a revoked token changes nothing. Raises PermissionDeniedError for a non-admin."""
    _check_admin(actor)
    with transaction.atomic():
        token = AgentToken.objects.select_for_update().get(pk=token.pk)
        if token.revoked_at is None:
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
            audit.record(
                token,
                action="update",
                actor=actor,
                changes={"revoked_at": [None, audit.plain(token.revoked_at)]},
                message="Agent token revoked",
            )
    return token


def basic_password(request: HttpRequest) -> str | None:
    """The password of the request's HTTP basic auth, or None."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    _user, sep, password = decoded.partition(":")
    return password if sep else None


def authenticate(request: HttpRequest) -> AgentToken | None:
    """The active agent token the request's basic-auth password is, or None. Marks it used."""
    password = basic_password(request)
    if not password or not password.startswith(AgentToken.PREFIX):
        return None
    digest = AgentToken.hash(password)
    token = AgentToken.objects.filter(key_hash=digest, revoked_at__isnull=True).first()
    if token is None or not hmac.compare_digest(token.key_hash, digest):
        return None
    AgentToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token
