"""A record list as CSV: what the list's filters show, in its order, streamed row by row.

Every stored field but the raw source payload, values at full precision (decimals unrounded,
times in UTC as ISO 8601), relations by the related record's key (INC0001, a service's name), and
headers that name their unit: "Handle time (seconds)", "Opened (UTC, ISO 8601)". Text starting
with a spreadsheet formula character is prefixed with an apostrophe (tikting.lib.tabular.csv_cell).
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

from django.db import models
from django.db.models import QuerySet
from django.http import StreamingHttpResponse

from tikting.lib.tabular import csv_cell

from . import forms as F
from .registry import RecordKind, kind_for, related_model

CHUNK = 2000
SKIPPED = {"raw"}
UNITS = {"_seconds": "seconds", "_minutes": "minutes", "_hours": "hours", "_days": "days", "_bytes": "bytes"}


def fields_of(kind: RecordKind) -> list[models.Field]:
    return [f for f in kind.model._meta.concrete_fields if f.name not in SKIPPED]


def header(kind: RecordKind, f: models.Field) -> str:
    label = "ID" if f.primary_key else F.label_of(kind.model, f.name)
    unit = next((u for suffix, u in UNITS.items() if f.name.endswith(suffix)), "")
    if isinstance(f, models.DateTimeField):
        unit = "UTC, ISO 8601"
    elif isinstance(f, models.DateField):
        unit = "ISO 8601 date"
    elif f.is_relation:
        unit = "key"
    if not unit:
        return label
    if label.lower().endswith(" " + unit):  # "Response minutes" → "Response (minutes)"
        label = label[: -len(unit) - 1]
    return f"{label} ({unit})"


Namer = Callable[[models.Model | None], str]


def _namer(f: models.Field) -> Namer:
    """How a relation's value is written: the related record's key, looked up once per column
    (not once per cell), else name_of (a person's full name)."""
    kind = kind_for(related_model(f))
    if kind is None or kind.key_field == "id":
        return F.name_of
    key = kind.key_field
    return lambda related: "" if related is None else str(getattr(related, key, "") or F.name_of(related))


def value(f: models.Field, obj: models.Model, namer: Namer | None = None) -> Any:
    if f.is_relation:
        return csv_cell((namer or _namer(f))(getattr(obj, f.name)))
    raw = getattr(obj, f.attname)
    if raw is None:
        return ""
    if isinstance(raw, dt.datetime):
        return (raw.astimezone(dt.UTC) if raw.tzinfo else raw).isoformat()
    if isinstance(raw, dt.date):
        return raw.isoformat()
    if isinstance(raw, Decimal):
        return format(raw, "f")  # every stored digit, never an exponent
    if isinstance(raw, float):
        return repr(raw)
    if isinstance(raw, dict | list):
        return ""
    return csv_cell(raw)


class _Line:
    """A file-like object csv.writer writes one line into, handed straight back."""

    def write(self, text: str) -> str:
        return text


def rows(kind: RecordKind, qs: QuerySet) -> Iterator[str]:
    fields = fields_of(kind)
    writer = csv.writer(_Line())
    yield "\ufeff" + writer.writerow([header(kind, f) for f in fields])  # BOM: spreadsheets read UTF-8
    related = [f.name for f in fields if f.is_relation]
    namers = {f.name: _namer(f) for f in fields if f.is_relation}
    for obj in qs.select_related(*related).iterator(chunk_size=CHUNK):
        yield writer.writerow([value(f, obj, namers.get(f.name)) for f in fields])


def response(kind: RecordKind, qs: QuerySet, *, suffix: str = "") -> StreamingHttpResponse:
    streamed = StreamingHttpResponse(rows(kind, qs), content_type="text/csv; charset=utf-8")
    streamed["Content-Disposition"] = f'attachment; filename="tikting-{kind.slug}{suffix}.csv"'
    return streamed
