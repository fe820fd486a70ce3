"""Metrics over HTTP, mounted at /api/metrics/ by tikting/api.py:

- `GET /api/metrics/` lists the metric definitions;
- `GET /api/metrics/{key}?by=month&priority=2&service=E-mail&opened_from=2024-01-01…` gives the
  total and the series (value, count and definition of each point, and the SLA basis);
  `format=csv` gives the series as CSV.

Any signed-in role (viewer and above) may read; anonymous callers get 401 from the API root.
"""

from __future__ import annotations

from typing import Literal

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema

from tikting.accounts.models import User
from tikting.core.exceptions import PermissionDeniedError
from tikting.core.records import can_view_records

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


def _reader(request: HttpRequest):
    user = getattr(request, "auth", None)
    if not isinstance(user, User):
        user = getattr(request, "user", None)
    if not can_view_records(user):
        raise PermissionDeniedError("You may not read the metrics.")
    return user


@router.get("", summary="List the ITSM metrics and their definitions")
def list_metrics(request: HttpRequest):
    _reader(request)
    return {"metrics": [d.as_dict() for d in DEFINITIONS.values()], "by": list(SLICERS)}


@router.get("{key}", summary="One metric: total and series by period or slice")
def metric(request: HttpRequest, key: str, query: Query[MetricQuery]):
    _reader(request)
    filters = {name: getattr(query, name) for name in engine.FILTER_FIELDS}
    result = engine.compute(key, by=query.by, filters=filters, basis=query.basis)
    if query.format == "csv":
        response = HttpResponse(result.to_csv(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{key}-{query.by or "total"}.csv"'
        return response
    return result.as_dict()
