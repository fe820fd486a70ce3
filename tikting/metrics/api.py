"""Metrics over HTTP, mounted at /api/metrics/ by tikting/api.py:

- `GET /api/metrics/` lists the metric definitions;
- `GET /api/metrics/{key}?by=month&date_field=resolved&unit=days&priority=2&service=E-mail&
  date_from=2024-01-01…` gives the total and the series (the unrounded value, count, records
  still open (`unresolved`), `incomplete` and definition of each point, and the SLA basis);
  `format=csv` gives the series as CSV.

An unknown parameter, or a filter value that matches nothing known, is a 422 listing the accepted
values (never an empty answer).

Any signed-in role (viewer and above) may read; anonymous callers get 401 from the API root.
"""

from __future__ import annotations

from typing import Any, Literal

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from ninja import Field, Query, Router, Schema
from pydantic import ConfigDict

from tikting.accounts.models import User
from tikting.core.api import errors
from tikting.core.exceptions import PermissionDeniedError
from tikting.records.registry import can_view_records

from . import engine
from .definitions import DATE_FIELDS, DEFINITIONS, SLICERS, UNITS

router = Router(tags=["metrics"])

By = Literal[SLICERS]  # type: ignore[valid-type]
DateField = Literal[DATE_FIELDS]  # type: ignore[valid-type]
Unit = Literal[UNITS]  # type: ignore[valid-type]


class MetricQuery(Schema):
    by: By | None = None  # type: ignore[valid-type]
    date_field: DateField | None = Field(  # type: ignore[valid-type]
        None,
        description="Which date places a record in a period and in date_from/date_to: opened "
        "(default; a period stays incomplete while its records are open), resolved or closed "
        "(complete once the period has ended).",
    )
    unit: Unit | None = Field(None, description="Durations only: minutes, hours or days.")  # type: ignore[valid-type]
    basis: Literal["auto", "definitions", "source"] | None = None
    format: Literal["json", "csv"] = "json"
    source: str | None = None
    date_from: str | None = Field(None, description="Window start on the date field (YYYY-MM-DD, inclusive).")
    date_to: str | None = Field(None, description="Window end on the date field (YYYY-MM-DD, inclusive).")
    opened_from: str | None = Field(None, description="date_from with date_field=opened (older name).")
    opened_to: str | None = Field(None, description="date_to with date_field=opened (older name).")
    status: str | None = None
    category: str | None = None
    priority: str | None = None
    service: str | None = None
    group: str | None = None
    ci: str | None = None


class DefinitionOut(Schema):
    key: str
    label: str
    unit: str
    direction: str
    record: str
    practice: str
    formula: str
    edge_cases: list[str]
    date_field: str
    date_fields: list[str]
    units: list[str]
    decimals: int


class MetricListOut(Schema):
    metrics: list[DefinitionOut]
    by: list[str]


class PointOut(Schema):
    """One figure; the definition's extra counts (median, unresolved, met …) ride along."""

    model_config = ConfigDict(extra="allow")

    key: int | str | None
    label: str
    value: int | float | None = Field(description="Unrounded; round for display only")
    count: int
    unresolved: int | None = Field(None, description="Records of the point still open")
    incomplete: bool = Field(
        description="Records still open, or the period (the date_to day) has not ended: the value "
        "will still change"
    )
    definition: str
    basis: str | None = None


class MetricOut(Schema):
    metric: str
    label: str
    unit: str
    direction: str
    definition: DefinitionOut
    basis: str | None
    by: str | None
    date_field: str
    decimals: int = Field(description="Decimals to show values with (display only)")
    filters: dict[str, str]
    total: PointOut
    points: list[PointOut]


CSV_RESPONSE: dict[str, Any] = {
    "responses": {200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
}


def _reader(request: HttpRequest):
    user = getattr(request, "auth", None)
    if not isinstance(user, User):
        user = getattr(request, "user", None)
    if not can_view_records(user):
        raise PermissionDeniedError("You may not read the metrics.")
    return user


@router.get(
    "", response={200: MetricListOut, **errors(403)}, summary="List the ITSM metrics and their definitions"
)
def list_metrics(request: HttpRequest):
    _reader(request)
    return {"metrics": [d.as_dict() for d in DEFINITIONS.values()], "by": list(SLICERS)}


@router.get(
    "{key}",
    response={200: MetricOut, **errors(403, 422)},
    openapi_extra=CSV_RESPONSE,
    summary="One metric: total and series by period or slice (format=csv: the series as CSV)",
)
def metric(request: HttpRequest, key: str, query: Query[MetricQuery]):
    _reader(request)
    accepted = set(MetricQuery.model_fields)
    unknown = sorted(set(request.GET) - accepted)
    if unknown:
        raise ValidationError(
            {name: f"Unknown parameter; accepted: {', '.join(MetricQuery.model_fields)}." for name in unknown}
        )
    filters = {name: getattr(query, name) for name in engine.FILTER_FIELDS}
    result = engine.compute(
        key, by=query.by, filters=filters, basis=query.basis, date_field=query.date_field, unit=query.unit
    )
    if query.format == "csv":
        response = HttpResponse(result.to_csv(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{key}-{query.by or "total"}.csv"'
        return response
    return result.as_dict()
