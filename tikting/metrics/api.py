"""Metrics over HTTP, mounted at /api/metrics/ by tikting/api.py:

- `GET /api/metrics/` lists the metric definitions;
- `GET /api/metrics/{key}?by=month&priority=2&service=E-mail&opened_from=2024-01-01…` gives the
  total and the series (value, count and definition of each point, and the SLA basis);
  `format=csv` gives the series as CSV.

Any signed-in role (viewer and above) may read; anonymous callers get 401 from the API root.
"""

from __future__ import annotations

from typing import Any, Literal

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema
from pydantic import ConfigDict

from tikting.accounts.models import User
from tikting.core.api import errors
from tikting.core.exceptions import PermissionDeniedError
from tikting.records.registry import can_view_records

from . import engine
from .definitions import DEFINITIONS, SLICERS

router = Router(tags=["metrics"])

By = Literal[SLICERS]  # type: ignore[valid-type]


class MetricQuery(Schema):
    by: By | None = None  # type: ignore[valid-type]
    basis: Literal["auto", "definitions", "source"] | None = None
    format: Literal["json", "csv"] = "json"
    source: str | None = None
    opened_from: str | None = None
    opened_to: str | None = None
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


class MetricListOut(Schema):
    metrics: list[DefinitionOut]
    by: list[str]


class PointOut(Schema):
    """One figure; the definition's extra counts (median, unresolved, met …) ride along."""

    model_config = ConfigDict(extra="allow")

    key: int | str | None
    label: str
    value: int | float | None
    count: int
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
    filters = {name: getattr(query, name) for name in engine.FILTER_FIELDS}
    result = engine.compute(key, by=query.by, filters=filters, basis=query.basis)
    if query.format == "csv":
        response = HttpResponse(result.to_csv(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{key}-{query.by or "total"}.csv"'
        return response
    return result.as_dict()
