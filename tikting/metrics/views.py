"""The metrics page (/metrics/): one metric, its slicers and filters, the date that places records
in periods, the unit, a Chart.js chart, a table and a CSV export of the series
(/metrics/export.csv with the same query string). Incomplete points (records still open, or a
period not ended) are marked in the chart, the table and a note; values are rounded for display
only (the CSV export is unrounded)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from tikting.accounts.models import Team
from tikting.cmdb.models import Service
from tikting.core.itsm import Priority
from tikting.incidents.models import Incident
from tikting.records.registry import can_view_records

from . import engine
from .definitions import DATE_FIELDS, DEFINITIONS, SLICERS, UNITS

DEFAULT_METRIC = "mttr"


def _params(request: HttpRequest) -> dict[str, Any]:
    get = request.GET
    metric = get.get("metric") or DEFAULT_METRIC
    by = get.get("by", "month") or None
    definition = DEFINITIONS.get(metric)
    unit = get.get("unit") or None
    if definition is not None and not definition.is_duration:
        unit = None  # the unit select applies to durations; it stays set while another metric is shown
    return {
        "metric": metric,
        "by": by,
        "basis": get.get("basis") or None,
        "date_field": get.get("date_field") or None,
        "unit": unit,
        "filters": {
            name: get.get(name, "").strip() for name in engine.FILTER_FIELDS if get.get(name, "").strip()
        },
    }


def _compute(params: dict[str, Any]) -> engine.MetricResult:
    return engine.compute(
        params["metric"],
        by=params["by"],
        filters=params["filters"],
        basis=params["basis"],
        date_field=params["date_field"],
        unit=params["unit"],
    )


def distinct_sources() -> list[str]:
    """The incidents' sources (one index probe each)."""
    return engine.distinct_values(Incident, "source")


def _shown(value: Any, decimals: int) -> str:
    """A value as the page shows it: rounded for display, thousands separated."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.{decimals}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _display(result: engine.MetricResult) -> dict[str, Any]:
    """What the template shows: rounded values, the incomplete points and why, the chart data."""
    d, decimals = result.definition, result.decimals
    timed = engine.TIME_FIGURES if d.family == "duration" else ()
    points = result.points if result.by else [result.total]
    rows = [
        {
            "label": p.label,
            "cells": [_shown(p.value, decimals), _shown(p.count, decimals)]
            + [_shown(p.extra.get(x), decimals) for x in d.extras],
            "incomplete": p.incomplete,
            "why": p.why_incomplete(),
        }
        for p in points
    ]
    headers = [f"{x} ({result.unit})" if x in timed else x for x in d.extras]
    return {
        "rows": rows,
        "headers": headers,
        "total_value": _shown(result.total.value, decimals),
        "total_extra": [(x, _shown(result.total.extra.get(x), decimals)) for x in d.extras],
        "total_why": result.total.why_incomplete(),
        "incomplete": [(p.label, p.why_incomplete()) for p in points if p.incomplete],
        "chart": {
            "labels": [p.label for p in points],
            "values": [p.value for p in points],
            "counts": [p.count for p in points],
            "incomplete": [p.incomplete for p in points],
            "why": [p.why_incomplete() for p in points],
            "label": d.label,
            "unit": result.unit,
            "decimals": decimals,
            "kind": "line" if result.by in ("month", "week") else "bar",
        },
    }


def _check(request: HttpRequest) -> None:
    if not can_view_records(request.user):
        raise PermissionDenied("You may not read the metrics.")


@login_required
@require_GET
def page(request: HttpRequest) -> HttpResponse:
    _check(request)
    params = _params(request)
    result, error = None, None
    try:
        result = _compute(params)
    except ValidationError as exc:
        error = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
    shown = _display(result) if result is not None else {}
    window = result.filters if result is not None else {}
    context = {
        "result": result,
        "shown": shown,
        "error": error,
        "params": params,
        "window": {
            name: window.get(name) or params["filters"].get(name) or params["filters"].get(alias, "")
            for alias, name in engine.WINDOW_ALIASES.items()
        },
        "definitions": DEFINITIONS.values(),
        "slicers": SLICERS,
        "date_fields": DATE_FIELDS,
        "units": UNITS,
        "services": Service.objects.order_by("name").values_list("name", flat=True),
        "groups": Team.objects.order_by("name").values_list("name", flat=True),
        "priorities": Priority.choices,
        "statuses": Incident.Status.choices,
        "sources": distinct_sources(),
        "chart": shown.get("chart", {}),
        "query": request.GET.urlencode(),
    }
    return render(request, "metrics/page.html", context)


@login_required
@require_GET
def export_csv(request: HttpRequest) -> HttpResponse:
    _check(request)
    params = _params(request)
    try:
        result = _compute(params)
    except ValidationError as exc:
        return HttpResponse("; ".join(exc.messages), status=400, content_type="text/plain; charset=utf-8")
    response = HttpResponse(result.to_csv(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{result.key}-{result.by or "total"}.csv"'
    return response
