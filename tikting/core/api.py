"""Schemas and helpers every API router shares: error shapes, brief references, strict bodies."""

import datetime as dt
import json
from decimal import Decimal
from typing import Annotated, Any

from django.contrib.auth.models import AbstractUser
from django.http import HttpResponse
from ninja import Field, Schema
from ninja.responses import NinjaJSONEncoder
from pydantic import BeforeValidator, ConfigDict, Strict

from tikting.lib.display import ISO_DATE

# --- Request bodies: JSON types as they are ---------------------------------------------------


def _iso_text(kind: str, example: str) -> Any:
    def check(value: Any) -> Any:
        # pydantic would read 0 (or "0") as 1970-01-01, Unix time: a number is refused here.
        if isinstance(value, dt.date) or (isinstance(value, str) and ISO_DATE.match(value)):
            return value
        raise ValueError(f"Give the {kind} as ISO 8601 text, e.g. {example}; a number is not a {kind}.")

    return BeforeValidator(check)


# Dates and times: ISO 8601 text only, in bodies and query parameters alike.
Date = Annotated[dt.date, Strict(False), _iso_text("date", "2025-03-31")]
DateTime = Annotated[dt.datetime, Strict(False), _iso_text("date and time", "2025-03-31T09:15:00Z")]
# Decimals: a JSON number or a numeric string (docs/api.md), never true/false.
DecimalIn = Annotated[Decimal, Strict(False)]


class StrictBody(Schema):
    """A request body: unknown keys are refused (a misspelt field is an error, not a silent no-op),
    and each value must have its JSON type (strict): 0 is not false, "4" is not 4, true is not 1.
    Date, time and decimal fields are typed Date, DateTime and DecimalIn (text or number)."""

    model_config = ConfigDict(extra="forbid", strict=True)


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


# --- Answers on the hot paths ------------------------------------------------------------------


def json_answer(data: Any, status: int = 200) -> HttpResponse:
    """`data` as the JSON answer django-ninja would send for it (its encoder, its content type),
    without the response schema's validation and dump on the way: for the records API's list, read
    and edit, whose rows are already plain JSON values, where pydantic walking every row and field
    cost 15–20 % of a page of 50. The operation still declares its `response=` schema, so the
    OpenAPI document is unchanged, and the schemathesis suite (tests/api) checks every answer
    against it."""
    body = json.dumps(data, cls=NinjaJSONEncoder)
    return HttpResponse(body, status=status, content_type="application/json; charset=utf-8")
