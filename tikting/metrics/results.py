"""A metric's answer: its points (value, records behind it, what is still open), as JSON, CSV and rows."""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .definitions import (
    PERIODS,
    MetricDefinition,
    get_definition,
)
from .questions import TIME_FIGURES, _clean_filters, _local_midnight, _next_period

if TYPE_CHECKING:
    pass


# One row of aggregates, as QuerySet.aggregate() or .values().annotate() returns it.
Row = dict[str, Any]
# A point's (value, count of records, extra counts).
Figures = tuple[float | None, int, dict[str, Any]]
# How a result or a report is written out (CLI --format, report.render).
FORMATS = ("table", "json", "csv")

# --- Results -------------------------------------------------------------------------------------


@dataclass
class Point:
    key: Any  # period start (ISO date) or the slice's id/value; None for the total
    label: str
    value: float | None
    count: int
    extra: dict[str, Any] = field(default_factory=dict)
    # records still open (extra["unresolved"] > 0) or a period / window not ended yet (`ended`
    # False): the value will still change. Set by MetricResult.mark_incomplete(), never cached.
    incomplete: bool = False
    ended: bool = True

    def why_incomplete(self) -> str:
        """Why the value will still change ("" when it will not): records still open, the period
        not ended, or both."""
        if not self.incomplete:
            return ""
        still_open = self.extra.get("unresolved") or 0
        reasons = [f"{still_open:,} record{'s' if still_open != 1 else ''} still open"] if still_open else []
        if not self.ended:
            reasons.append("period not ended")
        return ", ".join(reasons)

    def as_dict(self, definition: MetricDefinition, basis: str | None) -> dict[str, Any]:
        row = {
            "key": self.key,
            "label": self.label,
            "value": self.value,
            "count": self.count,
            **self.extra,
            "incomplete": self.incomplete,
            "definition": definition.formula,
        }
        if basis:
            row["basis"] = basis
        return row


@dataclass
class MetricResult:
    definition: MetricDefinition
    by: str | None
    filters: dict[str, Any]
    total: Point
    points: list[Point]
    basis: str | None = None
    date_field: str = "opened"  # which date placed the records in periods and in the window
    unit: str = ""  # the unit of the values (a duration's chosen unit); "" = the definition's

    def __post_init__(self) -> None:
        self.unit = self.unit or self.definition.unit

    @property
    def key(self) -> str:
        return self.definition.key

    @property
    def decimals(self) -> int:
        """Decimals to show the values with (display only: data outputs are unrounded)."""
        return self.definition.decimals_in(self.unit)

    def mark_incomplete(self, now: dt.datetime) -> None:
        """Flag every point whose value will still change: some of its records are still open
        (`unresolved`), or its period (for a total or a slice: the date_to day) has not ended by
        `now`. Derived at read time, so a reused answer is judged against the current time."""
        window_end = None
        if "date_to" in self.filters:
            window_end = _local_midnight(self.filters["date_to"] + dt.timedelta(days=1))

        def judge(point: Point, end: dt.datetime | None) -> None:
            point.ended = end is None or end <= now
            point.incomplete = bool(point.extra.get("unresolved")) or not point.ended

        for point in self.points:
            end = window_end
            if self.by in PERIODS:
                period_end = _local_midnight(_next_period(dt.date.fromisoformat(point.key), self.by))
                end = min(period_end, window_end) if window_end else period_end
            judge(point, end)
        judge(self.total, window_end)

    def as_dict(self) -> dict[str, Any]:
        d, basis = self.definition, self.basis
        return {
            "metric": d.key,
            "label": d.label,
            "unit": self.unit,
            "direction": d.direction,
            "definition": d.as_dict(),
            "basis": basis,
            "by": self.by,
            "date_field": self.date_field,
            "decimals": self.decimals,
            "filters": {k: str(v) for k, v in self.filters.items()},
            "total": self.total.as_dict(d, basis),
            "points": [p.as_dict(d, basis) for p in self.points],
        }

    def to_payload(self) -> dict[str, Any]:
        """What the result cache keeps (filters as given are part of the cache key)."""

        def point(p: Point) -> list[Any]:
            return [p.key, p.label, p.value, p.count, p.extra]

        return {
            "metric": self.definition.key,
            "by": self.by,
            "filters": {k: str(v) for k, v in self.filters.items()},
            "basis": self.basis,
            "date_field": self.date_field,
            "unit": self.unit,
            "total": point(self.total),
            "points": [point(p) for p in self.points],
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> MetricResult:
        return cls(
            get_definition(payload["metric"]),
            payload["by"],
            _clean_filters(payload["filters"], payload["date_field"]),
            Point(*payload["total"]),
            [Point(*p) for p in payload["points"]],
            payload["basis"],
            payload["date_field"],
            payload["unit"],
        )

    def columns(self) -> list[str]:
        """Column names; the value and every time figure name their unit (value_hours, p90_hours)."""
        unit = "percent" if self.unit == "%" else self.unit
        timed = TIME_FIGURES if self.definition.family == "duration" else ()
        extras = [f"{x}_{unit}" if x in timed else x for x in self.definition.extras]
        return ["key", "label", f"value_{unit}", "count", *extras, "incomplete"]

    def rows(self) -> list[list[Any]]:
        """The points (or the total alone, without `by`) as table rows, in columns() order."""
        points = self.points if self.by else [self.total]
        return [
            [
                p.key,
                p.label,
                p.value,
                p.count,
                *(p.extra.get(x) for x in self.definition.extras),
                p.incomplete,
            ]
            for p in points
        ]

    def to_csv(self) -> str:
        """The rows as CSV, values unrounded; `incomplete` as true/false."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.columns())
        for row in self.rows():
            writer.writerow([_csv_cell(v) for v in row])
        return out.getvalue()


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return _csv_safe(value)


def _csv_safe(value: Any) -> Any:
    """Neutralise spreadsheet formulas in text cells (labels come from user data)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
