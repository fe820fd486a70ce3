"""Reading an import file: raw rows, the parsers of cell values, and the result of a run."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import IO, Any

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from tikting.lib.tabular import FORMATS, read_csv, read_json

from .. import choices as C
from .columns import CSV_FIELDS, REF_RE


def read_rows(stream: IO[str], fmt: str) -> Iterator[tuple[int, Any]]:
    """(line number, raw row) pairs, streamed. A row is a dict, or an Exception for a bad line."""
    if fmt == "csv":
        yield from read_csv(stream, CSV_FIELDS)
    elif fmt in {"json", "jsonl"}:
        yield from read_json(stream)
    else:
        raise ValidationError({"format": f"Choose one of: {', '.join(FORMATS)}."})


@dataclass
class RowError:
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}, {self.field}: {self.message}"


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    errors: list[RowError] = field(default_factory=list)
    dry_run: bool = False
    # The file could not be read to its end (also in `errors`): nothing of it was imported.
    file_error: RowError | None = None

    @property
    def rows(self) -> int:
        return self.created + self.updated + self.unchanged + self.failed

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "dry_run": self.dry_run,
            "errors": [{"line": e.line, "field": e.field, "message": e.message} for e in self.errors],
        }


class RowInvalid(Exception):
    def __init__(self, errors: dict[str, str]):
        super().__init__(errors)
        self.errors = errors


TEXT_LIMITS = {
    "title": 200,
    "review_milestone": 120,
    "source_reference": 300,
    "external_id": 100,
}
TEXT_FIELDS = (
    "title",
    "description",
    "justification",
    "vision",
    "expected_outcome",
    "review_milestone",
    "blocker",
    "source_reference",
    "assessment_reason",
    "lessons",
)
# Choice fields that may be blank, and those that fall back to the model's default when blank.
BLANK_CHOICES = {
    "practice": C.Practice.values,
    "outcome": C.Outcome.values,
    "benefit_category": C.BenefitCategory.values,
}
DEFAULT_CHOICES = {
    "justification_type": C.JustificationType.values,
    "source_channel": C.SourceChannel.values,
    "status": C.Status.values,
}
TRUE = {"1", "true", "yes", "y", "on", "x"}
FALSE = {"0", "false", "no", "n", "off", ""}


def _s(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


def _parse_date(value: Any) -> dt.date | None:
    text = _s(value)
    if not text:
        return None
    try:
        parsed = parse_date(text)
    except ValueError:
        parsed = None
    if parsed is None:
        raise ValueError(f"'{text}' is not a date (YYYY-MM-DD).")
    return parsed


def _parse_datetime(value: Any) -> dt.datetime | None:
    text = _s(value)
    if not text:
        return None
    try:
        parsed = parse_datetime(text)
        if parsed is None:
            day = parse_date(text)
            parsed = dt.datetime.combine(day, dt.time()) if day else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise ValueError(f"'{text}' is not a date-time (ISO 8601, e.g. 2025-03-01T09:30:00+00:00).")
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed)
    return parsed


def _parse_decimal(value: Any, digits: int = 16, places: int = 4) -> Decimal | None:
    text = _s(value)
    if not text:
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        raise ValueError(f"'{text}' is not a number.")
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)
    if -exponent > places:
        raise ValueError(f"'{text}' has more than {places} decimal places.")
    if abs(number) >= Decimal(10) ** (digits - places):
        raise ValueError(f"'{text}' is too large.")
    # Stored with `places` decimals: quantized, it compares equal to what the database gives back.
    return number.quantize(Decimal(1).scaleb(-places))


def _parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = _s(value).lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ValueError(f"'{value}' is not true or false.")


def _parse_int(value: Any, low: int, high: int | None) -> int | None:
    text = _s(value)
    if not text:
        return None
    if isinstance(value, float) and value.is_integer():
        text = str(int(value))
    if not re.fullmatch(r"[+-]?\d+", text):
        raise ValueError(f"'{text}' is not a whole number.")
    number = int(text)
    if number < low or (high is not None and number > high):
        raise ValueError(
            f"'{text}' is not between {low} and {high}." if high else f"'{text}' must be {low} or more."
        )
    return number


def _parse_ref(value: Any) -> int | None:
    text = _s(value)
    if not text or text.lower() == "ci-new":
        return None
    match = REF_RE.match(text)
    if not match:
        raise ValueError(f"'{text}' is not a register reference like CI-00012.")
    return int(match.group(1))
