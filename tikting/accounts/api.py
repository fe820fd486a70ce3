"""API tokens over HTTP: list your own, create one (its value is shown once), revoke one.

Mounted at /api/tokens by tikting/api.py. The same operations back the /account/tokens/ page.
"""

import datetime as dt
from typing import Annotated

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Field, Router, Schema, Status
from pydantic import ConfigDict

from tikting.core.api import errors

from .models import ApiToken
from .services import issue_token, own_tokens, revoke_token

router = Router(tags=["tokens"])


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


@router.get("", response={200: list[TokenOut], **errors()}, summary="List your tokens")
def list_tokens(request: HttpRequest):
    """Your tokens, active first. Raw values are never shown again after creation."""
    return own_tokens(request.auth)  # type: ignore[attr-defined]


@router.post(
    "",
    response={201: TokenCreated, **errors(400)},
    summary="Create a token",
)
def create_token(request: HttpRequest, payload: TokenIn):
    token, raw = issue_token(actor=request.auth, name=payload.name)  # type: ignore[attr-defined]
    token.token = raw  # type: ignore[attr-defined]
    return Status(201, token)


@router.delete(
    "/{token_id}",
    response={204: None, **errors(404)},
    summary="Revoke a token",
)
def delete_token(request: HttpRequest, token_id: Annotated[int, Field(ge=1, le=2**63 - 1)]):
    token = get_object_or_404(own_tokens(request.auth), pk=token_id)  # type: ignore[attr-defined]
    revoke_token(token, actor=request.auth)  # type: ignore[attr-defined]
    return Status(204, None)
