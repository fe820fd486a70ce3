"""API tokens over HTTP: list your own, create one (its value is shown once), revoke one.

Mounted at /api/tokens by tikting/api.py. The same operations back the /account/tokens/ page.
"""

import datetime as dt
from typing import Annotated

from django.db import transaction
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Field, Router, Schema, Status
from pydantic import ConfigDict

from tikting.core import audit

from .models import ApiToken, User

router = Router(tags=["tokens"])


# --- Token operations (service-shaped; see the note in the final report: accounts/services.py) --


@transaction.atomic
def issue_token(*, actor: User, name: str) -> tuple[ApiToken, str]:
    """Issue a token for the acting user; returns it and its raw value (known only now). Audited."""
    token, raw = ApiToken.issue(actor, name.strip())
    audit.record(token, action="create", actor=actor, root=actor, changes={"name": [None, token.name]})
    return token, raw


@transaction.atomic
def revoke_token(token: ApiToken, *, actor: User) -> ApiToken:
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


def own_tokens(user: User):
    return ApiToken.objects.filter(user=user).order_by("revoked_at", "-created_at")


# --- Schemas and endpoints ----------------------------------------------------------------------


class TokenOut(Schema):
    id: int
    name: str
    key_hint: str = Field(description="First characters of the token, to recognise it")
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None
    active: bool

    @staticmethod
    def resolve_active(obj: ApiToken) -> bool:
        return obj.revoked_at is None


class TokenCreated(TokenOut):
    token: str = Field(description="The raw token: shown this once, store it now")


class TokenIn(Schema):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"\S", description="What the token is for")


class Message(Schema):
    detail: str


class FieldError(Schema):
    field: str | None
    message: str


class ValidationErrors(Schema):
    detail: list[FieldError]


@router.get("", response={200: list[TokenOut], 401: Message}, summary="List your tokens")
def list_tokens(request: HttpRequest):
    """Your tokens, active first. Raw values are never shown again after creation."""
    return own_tokens(request.auth)  # type: ignore[attr-defined]


@router.post(
    "",
    response={201: TokenCreated, 400: Message, 401: Message, 422: ValidationErrors},
    summary="Create a token",
)
def create_token(request: HttpRequest, payload: TokenIn):
    token, raw = issue_token(actor=request.auth, name=payload.name)  # type: ignore[attr-defined]
    token.token = raw  # type: ignore[attr-defined]
    return Status(201, token)


@router.delete(
    "/{token_id}",
    response={204: None, 401: Message, 404: Message, 422: ValidationErrors},
    summary="Revoke a token",
)
def delete_token(request: HttpRequest, token_id: Annotated[int, Field(ge=1, le=2**63 - 1)]):
    token = get_object_or_404(own_tokens(request.auth), pk=token_id)  # type: ignore[attr-defined]
    revoke_token(token, actor=request.auth)  # type: ignore[attr-defined]
    return Status(204, None)
