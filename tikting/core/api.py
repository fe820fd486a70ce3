"""Schemas and helpers every API router shares: error shapes, brief references."""

from typing import Any

from django.contrib.auth.models import AbstractUser
from ninja import Field, Schema


class Message(Schema):
    detail: str


class FieldError(Schema):
    field: str | None = Field(
        description="The field (or filter) the message is about; null: the whole request"
    )
    message: str


class ValidationErrors(Schema):
    detail: list[FieldError]


class ConflictOut(Schema):
    detail: str
    current_version: int | None
    expected_version: int | None


def errors(*codes: int) -> dict[int, Any]:
    """Documented error responses: every operation may answer 401, 422 (a NUL character in the
    address or query string, tikting.core.middleware.RejectNulMiddleware) and 429 (too many failed
    sign-ins from the address, tikting.accounts.throttle); add the ones it can raise.

    Writes (the operations that may answer 403) take a JSON body, and one that does not parse is 400.
    """
    shapes = {
        400: Message,
        401: Message,
        403: Message,
        404: Message,
        409: ConflictOut,
        413: Message,
        422: ValidationErrors,
        429: Message,
    }
    extra = {400} if 403 in codes else set()
    return {code: shapes[code] for code in sorted({401, 422, 429, *codes, *extra})}


class UserBrief(Schema):
    id: int
    username: str
    name: str

    @staticmethod
    def resolve_name(obj: AbstractUser) -> str:
        return obj.get_full_name() or obj.username


class ServiceBrief(Schema):
    id: int
    name: str
