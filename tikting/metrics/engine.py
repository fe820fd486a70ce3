"""The ITSM metrics engine: every metric of definitions.py computed by the database.

`compute(metric_key, by=None|"month"|"week"|"priority"|"service"|"group"|"category"|"ci"|"practice",
filters={...}, date_field="opened"|"resolved"|"closed", unit="minutes"|"hours"|"days")` returns a
MetricResult: a total and (with `by`) one point per period or slice, each with its value (unrounded:
rounding is for display), the count of records behind it, the extra counts of its definition, how
many of its records are still open (`unresolved`), whether it is `incomplete` (records still open,
or its period has not ended), and the definition (and, for SLA metrics, the basis) used.

Filters are checked: an unknown field, or a value that matches nothing known (a choice, a name, a
value present in the records), is a ValidationError listing what is accepted, never an empty answer.

Every figure is an aggregate query (COUNT/AVG with FILTER, CASE/WHEN, TruncMonth/TruncWeek),
never a Python loop over records, and gives the same answer on SQLite and PostgreSQL:
percentiles use PERCENTILE_CONT on PostgreSQL (total and groups in one GROUPING SETS scan) and, on
SQLite (which lacks it), ORDER BY … OFFSET reads of the one or two values around the rank,
interpolated linearly the same way.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import zoneinfo
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import (
    Avg,
    Case,
    CharField,
    Count,
    DateTimeField,
    Exists,
    F,
    FloatField,
    Func,
    Max,
    Min,
    Model,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models import Field as DjangoField
from django.db.models.functions import Coalesce, TruncMonth, TruncWeek
from django.utils import timezone

from tikting.core.itsm import Practice, Priority

from . import cache as results
from .definitions import (
    ATTRIBUTES,
    DATE_FIELDS,
    DEFINITIONS,
    MINUTES_PER,
    MODEL_DATES,
    PERIODS,
    UNITS,
    MetricDefinition,
    get_definition,
)

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.backends.utils import CursorWrapper
    from django.db.models.expressions import Combinable
    from django.db.models.sql.compiler import SQLCompiler

__all__ = ["FILTER_FIELDS", "MetricResult", "Point", "compute", "distinct_values", "parse_filters"]

# One row of aggregates, as QuerySet.aggregate() or .values().annotate() returns it.
Row = dict[str, Any]
# A point's (value, count of records, extra counts).
Figures = tuple[float | None, int, dict[str, Any]]

OPEN_STATUSES = ("new", "in_progress", "on_hold")
FILTER_FIELDS = (
    "source",
    "date_from",
    "date_to",
    "opened_from",
    "opened_to",
    "status",
    "category",
    "priority",
    "service",
    "group",
    "ci",
)
BASES = ("auto", "definitions", "source")
NONE_LABEL = "(none)"
# The window on the date field (inclusive local dates); opened_from/opened_to are its older names,
# valid with the opening date only.
WINDOW = ("date_from", "date_to")
WINDOW_ALIASES = {"opened_from": "date_from", "opened_to": "date_to"}
# Change statuses after which a change is no longer open.
CHANGE_DONE = ("closed", "cancelled")
# How many accepted values an error lists before "… and N more".
LISTED = 20
# The time figures of a duration point (value or extras), converted with the unit.
TIME_FIGURES = ("mean", "median", "p90")

# Where each slicer/filter lives on each record model (None: the model cannot be sliced that way).
PATHS: dict[str, dict[str, str | None]] = {
    "incidents.Incident": {
        "service": "service",
        "group": "assignment_group",
        "ci": "ci",
        "priority": "priority",
        "category": "category",
        "status": "status",
        "source": "source",
    },
    "incidents.Interaction": {
        "service": "service",
        "group": "incident__assignment_group",
        "ci": "ci",
        "priority": "priority",
        "category": "category",
        "status": "incident__status",
        "source": "source",
    },
    "changes.Change": {
        "service": "service",
        "group": "assignment_group",
        "ci": "ci",
        "priority": None,
        "category": "change_type",
        "status": "status",
        "source": "source",
    },
    "surveys.SurveyResponse": {
        "service": "service",
        "group": "incident__assignment_group",
        "ci": "incident__ci",
        "priority": "incident__priority",
        "category": "incident__category",
        "status": "incident__status",
        "source": "source",
    },
    # Asset data accuracy: daily snapshots per CI class ("category" is the class).
    "discovery.AccuracySnapshot": {
        "service": None,
        "group": None,
        "ci": None,
        "priority": None,
        "category": "ci_class",
        "status": None,
        "source": None,
    },
}
# Snapshot metrics: (numerator, denominator or None for a count) among the snapshot's columns.
SNAPSHOT_FIGURES: dict[str, tuple[str, str | None]] = {
    "cmdb_coverage": ("seen", "in_scope"),
    "cmdb_accuracy": ("accurate", "seen"),
    "cmdb_unregistered": ("unregistered", None),
    "cmdb_stale": ("stale", None),
    "cmdb_duplicates": ("duplicates", None),
    "cmdb_completeness": ("filled", "required"),
}
FOREIGN_KEYS = ("service", "group", "ci")


# --- Database expressions ------------------------------------------------------------------------


class HoursBetween(Func):
    """(end − start) in hours, as a float, computed by the database."""

    output_field = FloatField()
    arity = 2

    def as_sql(
        self,
        compiler: SQLCompiler,
        connection: BaseDatabaseWrapper,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
        **extra_context: Any,
    ) -> tuple[str, tuple[Any, ...]]:
        end_sql, end_params = compiler.compile(self.source_expressions[0])
        start_sql, start_params = compiler.compile(self.source_expressions[1])
        if connection.vendor == "postgresql":
            # date_part() is double precision; EXTRACT() is numeric since PostgreSQL 14, and its
            # arithmetic made a million-row series 0.3 s slower.
            sql = f"(date_part('epoch', {end_sql} - {start_sql}) / 3600.0)"
        else:
            # SQLite stores UTC text that julianday() reads. A julianday is a double of about
            # 2.46 million days, good to some 50 µs: the difference is rounded to the millisecond
            # (so 3.5 hours is 3.5, not 3.4999999981, now that values are given unrounded).
            sql = f"(ROUND((julianday({end_sql}) - julianday({start_sql})) * 86400.0, 3) / 3600.0)"
        return sql, (*end_params, *start_params)


def _count(condition: Q) -> Count:
    """COUNT(1) FILTER (WHERE condition). Not COUNT(id): the primary key is in no covering index,
    and counting it made PostgreSQL visit the table instead of answering from the index alone."""
    return Count(Value(1), filter=condition)


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


# --- Filters -------------------------------------------------------------------------------------


def _zone() -> dt.tzinfo:
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def _local_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=_zone())


def _date(name: str, value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError as exc:
        raise ValidationError({name: f"'{value}' is not a date (YYYY-MM-DD)."}) from exc


def parse_filters(pairs: list[str] | None) -> dict[str, str]:
    """`["priority=2", "service=E-mail"]` → {"priority": "2", "service": "E-mail"}."""
    filters: dict[str, str] = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep:
            raise ValidationError({"filter": f"'{pair}' is not FIELD=VALUE."})
        filters[name.strip()] = value.strip()
    return filters


def _clean_filters(filters: dict[str, Any] | None, date_field: str = "opened") -> dict[str, Any]:
    """Filters by their names, empty ones dropped, window dates parsed; opened_from/opened_to
    become date_from/date_to (with the opening date only). Raises ValidationError naming an
    unknown filter (and listing the accepted ones) or a bad date. Values are checked later,
    against the records (_resolve_filters)."""
    given = {k: v for k, v in (filters or {}).items() if v not in (None, "")}
    clean: dict[str, Any] = {}
    for name in filters or {}:
        if name not in FILTER_FIELDS:
            raise ValidationError(
                {name: f"Unknown filter '{name}'; the filters are {', '.join(FILTER_FIELDS)}."}
            )
    for name, value in given.items():
        if name in WINDOW_ALIASES:
            target = WINDOW_ALIASES[name]
            if date_field != "opened":
                raise ValidationError(
                    {
                        name: f"{name} is a window on the opening date; with date field '{date_field}' "
                        f"use {target}."
                    }
                )
            if target in given:
                raise ValidationError({name: f"Give {target} or {name}, not both."})
            name = target
        clean[name] = _date(name, value) if name in WINDOW else value
    if "date_from" in clean and "date_to" in clean and clean["date_from"] > clean["date_to"]:
        raise ValidationError({"date_from": "The window starts after it ends (date_from > date_to)."})
    return clean


def _date_field(definition: MetricDefinition, date_field: str | None) -> str:
    """The date field asked for (default: opened), if the metric's records have it."""
    date_field = date_field or "opened"
    if date_field not in DATE_FIELDS:
        raise ValidationError(
            {"date_field": f"'{date_field}' is not a date field; accepted: {', '.join(DATE_FIELDS)}."}
        )
    if date_field not in definition.date_fields:
        what = (
            "the backlog is counted at each period's end, by opening date"
            if definition.family == "backlog"
            else "it is read from each period's last daily snapshot"
            if definition.family == "snapshot"
            else f"its records ({definition.model._meta.verbose_name_plural}) have no {date_field} date"
        )
        raise ValidationError(
            {
                "date_field": f"{definition.label} cannot be placed by '{date_field}': {what}. Accepted: "
                f"{', '.join(definition.date_fields)}."
            }
        )
    return date_field


def _unit(definition: MetricDefinition, unit: str | None) -> str:
    """The unit asked for (default: the definition's): minutes, hours or days for a duration."""
    if not unit or unit == definition.unit:
        return definition.unit
    if not definition.is_duration:
        raise ValidationError(
            {
                "unit": f"{definition.label} is in {definition.unit}: the units {', '.join(UNITS)} "
                "apply to durations only."
            }
        )
    if unit not in UNITS:
        raise ValidationError({"unit": f"'{unit}' is not a unit; accepted: {', '.join(UNITS)}."})
    return unit


def _listed(values: list[str]) -> str:
    shown = ", ".join(values[:LISTED]) or "none"
    return shown + (f" … and {len(values) - LISTED} more" if len(values) > LISTED else "")


def _field_at(model: type[Model], path: str) -> DjangoField:
    """The model field a filter path (e.g. incident__status) ends at."""
    *hops, last = path.split("__")
    for hop in hops:
        model = model._meta.get_field(hop).related_model  # type: ignore[assignment]
    return model._meta.get_field(last)  # type: ignore[return-value]


def distinct_values(model: type[Model], column: str) -> list[str]:
    """The distinct non-null values of a text column, sorted. An indexed column is read with a
    loose index scan, one index probe per value (SELECT DISTINCT would read the whole index:
    130 ms at a million incidents); another with SELECT DISTINCT."""
    model_field = model._meta.get_field(column)
    if not getattr(model_field, "db_index", False):
        rows = model._default_manager.order_by(column).values_list(column, flat=True).distinct()
        return [v for v in rows if v is not None]
    table, col = model._meta.db_table, model_field.column  # type: ignore[union-attr]
    sql = (
        f"WITH RECURSIVE s(v) AS (SELECT MIN({col}) FROM {table} "  # noqa: S608 (our own names)
        f"UNION ALL SELECT (SELECT MIN({col}) FROM {table} WHERE {col} > s.v) FROM s "
        "WHERE s.v IS NOT NULL) SELECT v FROM s WHERE v IS NOT NULL"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return [row[0] for row in cursor.fetchall()]


def _priority_values(text: str) -> list[int]:
    """1-5, P1-P5, "2 - High" or "high" (any case) → [2]; anything else is an error."""
    head = text.upper().removeprefix("P").split(" ", 1)[0].split("-", 1)[0]
    if head.isdigit() and int(head) in Priority.values:
        return [int(head)]
    for value, label in Priority.choices:
        if text.lower() in (label.lower(), label.split(" - ", 1)[-1].lower()):
            return [value]
    labels = ", ".join(label for _v, label in Priority.choices)
    raise ValidationError({"priority": f"No priority '{text}'. Accepted: 1-5, P1-P5 or {labels}."})


def _accepted(definition: MetricDefinition, name: str, path: str, text: str) -> list[Any]:
    """The stored values (ids for a service, group or CI) one filter value stands for; raises
    ValidationError listing the accepted values when it matches none. Choices and free text match
    case-insensitively; free text (source, an incident category) is checked against the values
    present in the records."""
    if name == "priority":
        return _priority_values(text)
    model_field = _field_at(definition.model, path)
    if name in FOREIGN_KEYS:
        target = model_field.related_model
        assert target is not None
        manager = target._default_manager  # type: ignore[union-attr]
        noun = target._meta.verbose_name  # type: ignore[union-attr]
        if text.isdigit():
            if manager.filter(pk=int(text)).exists():
                return [int(text)]
            raise ValidationError({name: f"No {noun} with id {text}."})
        ids = list(manager.filter(name=text).values_list("pk", flat=True))
        ids = ids or list(manager.filter(name__iexact=text).values_list("pk", flat=True))
        if ids:
            return ids
        names = list(manager.order_by("name").values_list("name", flat=True))
        raise ValidationError({name: f"No {noun} '{text}'. Accepted (names or ids): {_listed(names)}."})
    if model_field.choices:
        for value, label in model_field.flatchoices:
            if text.lower() in (str(value).lower(), str(label).lower()):
                return [value]
        accepted = [str(value) for value, _label in model_field.flatchoices]
        raise ValidationError({name: f"No {name} '{text}'. Accepted: {_listed(accepted)} (any case)."})
    present = _present(name)
    if text in present:
        return [text]
    matches = [v for v in present if v.lower() == text.lower()]
    if matches:
        return matches
    raise ValidationError(
        {
            name: f"No record has {name} '{text}' (checked against the values present in the "
            f"records, any case). Present: {_listed([v for v in present if v])}."
        }
    )


def _present(name: str) -> list[str]:
    """The values of a free-text filter (source, category) present in any kind of record metrics
    read: a data set with incidents but no changes is still a known source (its change figures
    are empty, not an error)."""
    columns = set()
    for label, paths in PATHS.items():
        path = paths.get(name)
        if path is not None:
            column = _field_at(apps.get_model(label), path)
            if not column.choices and not column.is_relation:
                columns.add((column.model, column.name))
    return sorted({v for model, column in columns for v in distinct_values(model, column)})


def _resolve_filters(definition: MetricDefinition, clean: dict[str, Any]) -> dict[str, list[Any]]:
    """{filter: the stored values it selects}, None standing for "empty" ("none" or "(none)");
    comma-separated values mean any of them. Every value is checked (_accepted)."""
    resolved: dict[str, list[Any]] = {}
    for name, value in clean.items():
        if name in WINDOW:
            continue
        path = _path(definition, name)
        texts = [v.strip() for v in str(value).split(",") if v.strip()]
        values: list[Any] = []
        for text in texts:
            if text.lower() in ("none", NONE_LABEL):
                values.append(None)
            else:
                values.extend(_accepted(definition, name, path, text))
        resolved[name] = values
    return resolved


def _attribute_q(name: str, path: str, values: list[Any]) -> Q:
    """One filter: any of its stored values; None means empty."""
    q = Q(pk__in=[]) if not values else Q()
    for v in values:
        if v is None:
            q |= Q(**{f"{path}__isnull": True}) if name != "category" else Q(**{path: ""})
        else:
            q |= Q(**{path: v})
    return q


def _path(definition: MetricDefinition, name: str) -> str:
    path = PATHS[definition.model_label].get(name)
    if path is None:
        raise ValidationError({name: f"{definition.label} cannot be sliced or filtered by {name}."})
    return path


@dataclass(frozen=True)
class Question:
    """One checked question: the metric, its slicer, the cleaned filters, their values resolved
    to what is stored, which date places a record, and the unit of the answer."""

    definition: MetricDefinition
    by: str | None
    filters: dict[str, Any]  # cleaned (date_from / date_to as dates)
    values: dict[str, list[Any]]  # attribute filters → stored values (None = empty)
    date_field: str = "opened"
    unit: str = ""

    @property
    def date_path(self) -> str:
        """The column of the date field: opened_at (responded_at for surveys), resolved_at …"""
        return MODEL_DATES[self.definition.model_label][self.date_field]


def _still_open(definition: MetricDefinition) -> Q | None:
    """The records of the metric's kind that are still open, whose figures may still change
    (None: the kind has no open state, as a survey response)."""
    return {
        "incidents.Incident": _UNRESOLVED,
        "incidents.Interaction": Q(closed_at__isnull=True),
        "changes.Change": ~Q(status__in=CHANGE_DONE),
    }.get(definition.model_label)


def _unresolved_aggregate(definition: MetricDefinition) -> dict[str, Any]:
    """The count of records still open, in the same query as the figures."""
    still_open = _still_open(definition)
    return {} if still_open is None else {"unresolved": _count(still_open)}


def _scope(question: Question, *, window: bool = True) -> QuerySet:
    """The records of a question: its filters; by resolution or closure date, only the records
    resolved (closed) and not open again; and its from/to window on the date field."""
    definition = question.definition
    qs = definition.model._default_manager.all().order_by()
    for name, values in question.values.items():
        qs = qs.filter(_attribute_q(name, _path(definition, name), values))
    date_path, filters = question.date_path, question.filters
    if question.date_field != "opened":
        qs = qs.filter(**{f"{date_path}__isnull": False})
        still_open = _still_open(definition)
        if still_open is not None:
            qs = qs.filter(~still_open)
    if window:
        if "date_from" in filters:
            qs = qs.filter(**{f"{date_path}__gte": _local_midnight(filters["date_from"])})
        if "date_to" in filters:
            qs = qs.filter(**{f"{date_path}__lt": _local_midnight(filters["date_to"] + dt.timedelta(days=1))})
    return qs


# --- Periods and slices --------------------------------------------------------------------------


def _period_start(day: dt.date, by: str) -> dt.date:
    return day.replace(day=1) if by == "month" else day - dt.timedelta(days=day.weekday())


def _next_period(day: dt.date, by: str) -> dt.date:
    if by == "week":
        return day + dt.timedelta(days=7)
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def _periods(by: str, first: dt.date, last: dt.date, limit: int = 1000) -> list[dt.date]:
    periods: list[dt.date] = []
    day = _period_start(first, by)
    while day <= last and len(periods) < limit:
        periods.append(day)
        day = _next_period(day, by)
    return periods


def _period_label(day: dt.date, by: str) -> str:
    return f"{day:%Y-%m}" if by == "month" else day.isoformat()


def _local_date(value: Any) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return timezone.localtime(value, _zone()).date() if timezone.is_aware(value) else value.date()
    return value


def _period_day(value: Any) -> dt.date:
    """The local day of a period key: a truncation of the definition's date field, never null."""
    day = _local_date(value)
    assert day is not None
    return day


def _range(definition: MetricDefinition, filters: dict[str, Any], qs: QuerySet, by: str) -> list[dt.date]:
    """The periods a series covers: date from/to when given, else the data's first and last date."""
    first, last = filters.get("date_from"), filters.get("date_to")
    if first is None or last is None:
        row = qs.aggregate(first=Min(definition.date_field), last=Max(definition.date_field))
        first = first or _local_date(row["first"])
        last = last or _local_date(row["last"])
    if first is None or last is None:
        return []
    return _periods(by, first, last)


def _group_expression(
    definition: MetricDefinition, by: str, date_path: str = ""
) -> tuple[Combinable, F | None]:
    """(key expression, label expression or None) of an attribute or period slicer; periods
    truncate `date_path` (default: the opening date)."""
    tz = _zone()
    date_path = date_path or definition.date_field
    if by == "month":
        return TruncMonth(date_path, tzinfo=tz), None
    if by == "week":
        return TruncWeek(date_path, tzinfo=tz), None
    if by == "practice":
        return Value(definition.practice, output_field=CharField()), None
    path = _path(definition, by)
    if by in FOREIGN_KEYS:
        return F(path), F(f"{path}__name")
    return F(path), None


def _slice_label(by: str, key: Any, label: Any) -> str:
    if by == "priority":
        return Priority(key).label if key in Priority.values else NONE_LABEL
    if by == "practice":
        return dict(Practice.choices).get(key, key)
    if key in (None, ""):
        return NONE_LABEL
    return str(label if label is not None else key)


# --- Families ------------------------------------------------------------------------------------


def _ratio_spec(definition: MetricDefinition, basis: str | None) -> tuple[Q, Q, dict[str, Any]]:
    """(denominator, numerator, extra aggregates) of a ratio metric."""
    key = definition.key
    if key in ("fcr_rate", "incident_fcr_rate"):
        known = Q(first_contact_resolution__isnull=False)
        yes = Q(first_contact_resolution=True)
        return (
            known,
            yes,
            {
                "resolved_first_contact": _count(yes),
                "unknown": _count(Q(first_contact_resolution__isnull=True)),
            },
        )
    if key == "change_success_rate":
        extras = {
            name: _count(Q(outcome=name))
            for name in ("successful", "failed", "backed_out", "caused_incident")
        }
        extras["unplanned"] = _count(Q(unplanned=True))
        extras["no_outcome"] = _count(Q(outcome=""))
        return ~Q(outcome=""), Q(outcome="successful"), extras
    if key == "change_incident_rate":
        from tikting.incidents.models import Incident

        caused = Q(outcome="caused_incident") | Q(
            Exists(Incident.objects.filter(caused_by_change=OuterRef("pk")))
        )
        not_cancelled = ~Q(status="cancelled")
        return (
            not_cancelled,
            caused,
            {
                "caused_incident": _count(not_cancelled & caused),
                "cancelled": _count(Q(status="cancelled")),
            },
        )
    if definition.sla:
        flags: dict[tuple[str, str | None], str] = {
            ("sla_response", "definitions"): "response_met",
            ("sla_resolution", "definitions"): "resolution_met",
            ("sla_resolution", "source"): "source_sla_met",
        }
        flag = flags[(key, basis)]
        return (
            Q(**{f"{flag}__isnull": False}),
            Q(**{flag: True}),
            {
                "met": _count(Q(**{flag: True})),
                "breached": _count(Q(**{flag: False})),
                "not_evaluated": _count(Q(**{f"{flag}__isnull": True})),
            },
        )
    if key == "reopen_rate":
        resolved_once = Q(resolved_at__isnull=False) | Q(closed_at__isnull=False) | Q(reopen_count__gte=1)
        reopened = Q(reopen_count__gte=1)
        return (
            resolved_once,
            reopened,
            {
                "reopened": _count(reopened),
                "reopens": Coalesce(Sum("reopen_count"), 0),
            },
        )
    if key == "reassignment_rate":
        known = Q(reassignment_count__isnull=False)
        reassigned = Q(reassignment_count__gte=1)
        return (
            known,
            reassigned,
            {
                "reassigned": _count(reassigned),
                "unknown": _count(Q(reassignment_count__isnull=True)),
            },
        )
    if key == "csat_satisfied":
        satisfied = Q(score__gte=4)
        return Q(pk__isnull=False), satisfied, {"satisfied": _count(satisfied)}
    raise ValidationError({"metric": f"No ratio formula for {key}."})  # pragma: no cover


def _ratio_aggregates(definition: MetricDefinition, basis: str | None) -> dict[str, Any]:
    den, num, extras = _ratio_spec(definition, basis)
    return {"_den": _count(den), "_num": _count(den & num), **extras, **_unresolved_aggregate(definition)}


def _ratio_point(row: Row, definition: MetricDefinition) -> Figures:
    den, num = row["_den"] or 0, row["_num"] or 0
    value = 100.0 * num / den if den else None
    return value, den, {x: row.get(x) or 0 for x in definition.extras}


def _mean_aggregates(definition: MetricDefinition, basis: str | None) -> dict[str, Any]:
    column = {"reassignment_mean": "reassignment_count", "csat_mean": "score"}[definition.key]
    aggregates: dict[str, Any] = {"_sum": Sum(column), "_n": Count(column)}
    if "unknown" in definition.extras:
        aggregates["unknown"] = _count(Q(**{f"{column}__isnull": True}))
    return {**aggregates, **_unresolved_aggregate(definition)}


def _mean_point(row: Row, definition: MetricDefinition) -> Figures:
    n = row["_n"] or 0
    value = float(row["_sum"] or 0) / n if n else None
    return value, n, {x: row.get(x) or 0 for x in definition.extras}


# Duration: time to resolve.
_OPEN = Q(status__in=OPEN_STATUSES)
_REOPENED_OPEN = _OPEN & Q(reopen_count__gt=0)
_RESOLVED = Q(resolved_at__isnull=False, resolved_at__gte=F("opened_at")) & ~_REOPENED_OPEN
_UNRESOLVED = _OPEN & (Q(resolved_at__isnull=True) | Q(reopen_count__gt=0))
_CANCELLED = Q(status="cancelled")


def _ttr() -> Case:
    return Case(
        When(_RESOLVED & ~_CANCELLED, then=HoursBetween(F("resolved_at"), F("opened_at"))),
        default=None,
        output_field=FloatField(),
    )


def _duration_aggregates() -> dict[str, Any]:
    """Portable aggregates of the time to resolve (percentiles: percentile_by_offset)."""
    aggregates: dict[str, Any] = {
        "_n": Count("_ttr"),
        "mean": Avg("_ttr"),
        "unresolved": _count(_UNRESOLVED & ~_CANCELLED),
        "_considered": _count(~_CANCELLED),
    }
    return aggregates


# A percentile query over (nearly) every incident sorts them all; PostgreSQL's default costs keep
# that sort on one core and spill it to disk. For such wide scans only, the planner is told that
# parallel workers are cheap and the sort may use 64 MB (a million incidents: 1.08 s -> 0.77 s
# on 2 cores). Transaction-local, and put back afterwards for a caller's own transaction.
WIDE_SORT = {"parallel_setup_cost": "100", "parallel_tuple_cost": "0.01", "work_mem": "64MB"}
SELECTIVE_FILTERS = ("service", "group", "priority", "ci", "category", "status")


@contextmanager
def _wide_sort(cursor: CursorWrapper, wide: bool) -> Iterator[None]:
    """WIDE_SORT for the statements run inside, when `wide`. On an error the enclosing atomic
    block rolls the settings back with everything else."""
    if not wide:
        yield
        return
    cursor.execute("SELECT " + ", ".join(f"current_setting('{name}')" for name in WIDE_SORT))
    before = dict(zip(WIDE_SORT, cursor.fetchone(), strict=True))
    for name, value in WIDE_SORT.items():
        cursor.execute("SELECT set_config(%s, %s, true)", [name, value])
    yield
    for name, value in before.items():
        cursor.execute("SELECT set_config(%s, %s, true)", [name, value])


def _duration_rows_postgres(
    definition: MetricDefinition, scope: QuerySet, by: str | None, *, date_path: str = "", wide: bool = False
) -> tuple[Row, list[Row]]:
    """PostgreSQL: the total and every group in one scan. The ORM builds the per-incident rows
    (time to resolve computed once per row, the filters, the slicer); the outer query aggregates
    them with GROUPING SETS ((slicer), ()) and one PERCENTILE_CONT(ARRAY[0.5, 0.9]) sort. `wide`:
    no selective filter, so the sort covers (nearly) every incident (WIDE_SORT)."""
    inner = scope.annotate(
        _ttr=_ttr(),
        _unres=Case(When(_UNRESOLVED & ~_CANCELLED, then=Value(1)), default=Value(0)),
        _cons=Case(When(~_CANCELLED, then=Value(1)), default=Value(0)),
    )
    names: list[str] = []
    if by:
        key_expr, label_expr = _group_expression(definition, by, date_path)
        inner = inner.annotate(_key=key_expr)
        names.append("_key")
        if label_expr is not None:
            inner = inner.annotate(_label=label_expr)
            names.append("_label")
    sql, params = inner.values(*names, "_ttr", "_unres", "_cons").query.sql_with_params()
    quoted = [f's."{n}"' for n in names]  # internal aliases, not user input
    columns = "".join(f"{q}, " for q in quoted)
    grouping = f"GROUPING({quoted[0]})" if names else "0"
    group_by = f"GROUP BY GROUPING SETS (({', '.join(quoted)}), ())" if names else ""
    # The inner SQL is the ORM's (user values stay in `params`); the aliases are ours.
    figures = "COUNT(s._ttr), AVG(s._ttr), SUM(s._unres), SUM(s._cons), " + (
        "PERCENTILE_CONT(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY s._ttr)"
    )
    outer = f"SELECT {columns}{grouping}, {figures} FROM ({sql}) s {group_by}"  # noqa: S608
    with transaction.atomic(), connection.cursor() as cursor, _wide_sort(cursor, wide):
        cursor.execute(outer, params)
        fetched = cursor.fetchall()
    total: Row = {"_n": 0, "mean": None, "unresolved": 0, "_considered": 0, "median": None, "p90": None}
    rows: list[Row] = []
    for record in fetched:  # one row per group plus the total: never a row per incident
        row = dict(zip(names, record[: len(names)], strict=True))
        is_total, n, mean, unresolved, considered, pcs = record[len(names) :]
        row.update(
            {
                "_n": n,
                "mean": mean,
                "unresolved": unresolved or 0,
                "_considered": considered or 0,
                "median": pcs[0] if pcs else None,
                "p90": pcs[1] if pcs else None,
            }
        )
        if is_total or not names:
            total = row
        else:
            rows.append(row)
    return total, rows


def percentile_by_offset(values_qs: QuerySet, n: int, fraction: float) -> float | None:
    """PERCENTILE_CONT without the aggregate: read the one or two ordered values around rank
    fraction × (n − 1) with ORDER BY … OFFSET and interpolate linearly. `values_qs` is a
    values_list of one non-null column."""
    if not n:
        return None
    position = fraction * (n - 1)
    low = math.floor(position)
    high = min(low + 1, n - 1)
    pair = list(values_qs.order_by("_ttr")[low : high + 1])
    below, above = pair[0], pair[-1]
    return below + (position - low) * (above - below)


def _duration_point(
    row: Row, definition: MetricDefinition, percentiles: dict[str, float | None] | None = None
) -> Figures:
    percentiles = percentiles or {}
    n = row["_n"] or 0
    figures = {
        "mean": row.get("mean"),
        "median": percentiles.get("median", row.get("median")),
        "p90": percentiles.get("p90", row.get("p90")),
    }
    figures = {k: None if v is None else float(v) for k, v in figures.items()}  # unrounded
    unresolved = row["unresolved"] or 0
    extra = {
        **{k: v for k, v in figures.items() if k != definition.value},
        "unresolved": unresolved,
        "missing_timestamps": (row["_considered"] or 0) - n - unresolved,
    }
    return figures[definition.value], n, extra


# --- compute -------------------------------------------------------------------------------------


def _basis_mode(definition: MetricDefinition, basis: str | None) -> str | None:
    """The basis asked for (validated): auto, definitions or source; None for non-SLA metrics."""
    if not definition.sla:
        return None
    basis = basis or "auto"
    if basis not in BASES:
        raise ValidationError({"basis": f"Choose from {', '.join(BASES)}."})
    if definition.key == "sla_response":
        if basis == "source":
            raise ValidationError({"basis": "The sources carry no response flag: use basis 'definitions'."})
        return "definitions"
    return basis


def _sla_aggregates(definition: MetricDefinition, mode: str) -> dict[str, Any]:
    """Ratio aggregates for one basis, or (auto) for both, prefixed d/s, in the same query."""
    if mode != "auto":
        return _ratio_aggregates(definition, mode)
    both = {f"d{k}": v for k, v in _ratio_aggregates(definition, "definitions").items()}
    both.update({f"s{k}": v for k, v in _ratio_aggregates(definition, "source").items()})
    return both


def _resolve_auto(total_row: Row, rows: list[Row]) -> tuple[str, list[Row]]:
    """Auto basis: definitions when any incident in scope has a computed flag, else the source's."""
    basis = "source" if not total_row["d_den"] and total_row["s_den"] else "definitions"
    prefix = basis[0]

    def strip(row: Row) -> Row:
        out = {k: v for k, v in row.items() if k in ("_key", "_label")}
        out.update({k[1:]: v for k, v in row.items() if k.startswith(prefix) and k not in ("_key", "_label")})
        return out

    return basis, [strip(total_row), *(strip(r) for r in rows)]


def _sum_rows(rows: list[Row], names: Iterable[str]) -> Row:
    """The total of count/sum aggregates from the group rows (every record is in one group)."""
    return {name: sum(row[name] or 0 for row in rows) for name in names}


def compute(
    metric_key: str,
    *,
    by: str | None = None,
    filters: dict[str, Any] | None = None,
    basis: str | None = None,
    date_field: str | None = None,
    unit: str | None = None,
    now: dt.datetime | None = None,
    percentiles: str | None = None,
    cache: bool = True,
    refresh: bool = False,
) -> MetricResult:
    """Compute one metric as a total and, with `by`, a series by period or slice.

    `filters`: source, date_from, date_to (inclusive local dates on the date field; opened_from /
    opened_to are their names with the opening date), status, category, priority, service, group,
    ci (names or ids; comma-separated values mean any of them; "none" is empty). Every value is
    checked: one that matches nothing known is a ValidationError listing the accepted values.
    `date_field`: opened (default), resolved or closed — which date places a record in a period
    and in the window. `unit`: minutes, hours or days for a duration (default: its own).
    `basis` (SLA metrics): auto, definitions or source. `percentiles` forces "sql" (PERCENTILE_CONT,
    PostgreSQL only) or "offset" (ORDER BY … OFFSET, portable); default: the database's best.

    Values are unrounded. Every point says how many of its records are still open (`unresolved`)
    and whether it is `incomplete` (records still open, or its period not ended at `now`).

    The answer is reused while no record a metric reads has changed (cache.py); `cache=False`, or
    an explicit `now`, always computes; `refresh` computes and keeps the new answer.
    """
    definition = get_definition(metric_key)
    date_field = _date_field(definition, date_field)
    unit = _unit(definition, unit)
    clean = _clean_filters(filters, date_field)

    def fresh() -> MetricResult:
        return _compute(
            definition, by=by, clean=clean, basis=basis, date_field=date_field, unit=unit, now=now,
            percentiles=percentiles,
        )  # fmt: skip

    if not cache or now is not None:
        result = fresh()
    else:
        key = results.question_key(
            metric_key, by, clean, basis=basis, percentiles=percentiles, date_field=date_field, unit=unit
        )
        result = results.cached(
            fresh,
            key,
            MetricResult.to_payload,
            MetricResult.from_payload,
            time_dependent=definition.family in ("backlog", "snapshot")
            and _window_open(clean, timezone.now()),
            refresh=refresh,
        )
    result.mark_incomplete(now or timezone.now())
    return result


def _window_open(clean: dict[str, Any], now: dt.datetime) -> bool:
    """Does the question's window reach past `now` (no date_to, or a date_to not over yet)?"""
    return "date_to" not in clean or _local_midnight(clean["date_to"] + dt.timedelta(days=1)) > now


def _in_unit(result: MetricResult) -> MetricResult:
    """Values (and a duration's mean, median and p90) converted from the definition's unit to the
    result's unit, unrounded."""
    definition = result.definition
    if result.unit == definition.unit:
        return result
    times, per = MINUTES_PER[definition.unit], MINUTES_PER[result.unit]
    timed = TIME_FIGURES if definition.family == "duration" else ()
    for point in (result.total, *result.points):
        if point.value is not None:
            point.value = point.value * times / per
        for name in timed:
            if point.extra.get(name) is not None:
                point.extra[name] = point.extra[name] * times / per
    return result


def _compute(
    definition: MetricDefinition,
    *,
    by: str | None,
    clean: dict[str, Any],
    basis: str | None,
    date_field: str,
    unit: str,
    now: dt.datetime | None,
    percentiles: str | None,
) -> MetricResult:
    if by is not None and by not in PERIODS + ATTRIBUTES:
        raise ValidationError({"by": f"'{by}' is not a slicer; accepted: {', '.join(PERIODS + ATTRIBUTES)}."})
    question = Question(definition, by, clean, _resolve_filters(definition, clean), date_field, unit)
    if definition.family == "backlog":
        return _in_unit(_compute_backlog(question, now=now or timezone.now()))
    if definition.family == "snapshot":
        return _compute_snapshot(question, now=now or timezone.now())
    date_path = question.date_path
    qs = _scope(question)
    mode = _basis_mode(definition, basis)
    postgres = connection.vendor == "postgresql"
    use_sql_percentiles = (percentiles or ("sql" if postgres else "offset")) == "sql"
    if use_sql_percentiles and not postgres:
        raise ValidationError({"percentiles": "PERCENTILE_CONT needs PostgreSQL."})

    if definition.family == "duration":
        qs = qs.annotate(_ttr=_ttr())
        aggregates = _duration_aggregates()
    elif definition.family == "ratio":
        aggregates = _sla_aggregates(definition, mode) if mode else _ratio_aggregates(definition, None)
    else:
        aggregates = _mean_aggregates(definition, None)

    rows: list[Row] = []
    if definition.family == "duration" and use_sql_percentiles:
        key_expr = None
        # (not when sliced by service, group or CI: the label join made the parallel plan slower)
        wide = by not in FOREIGN_KEYS and not any(name in clean for name in SELECTIVE_FILTERS)
        total_row, rows = _duration_rows_postgres(
            definition, _scope(question), by, date_path=date_path, wide=wide
        )
    elif by:
        key_expr, label_expr = _group_expression(definition, by, date_path)
        grouped = qs.annotate(_key=key_expr)
        names = ["_key"]
        if label_expr is not None:
            grouped = grouped.annotate(_label=label_expr)
            names.append("_label")
        rows = list(grouped.values(*names).annotate(**aggregates).order_by())
    if definition.family == "duration" and use_sql_percentiles:
        pass  # total and groups came from one GROUPING SETS query
    elif by and definition.family != "duration":
        total_row = _sum_rows(rows, aggregates)  # counts and sums add up: no second scan
    else:
        total_row = qs.aggregate(**aggregates)
    chosen_basis = mode
    if mode == "auto":
        chosen_basis, (total_row, *rows) = _resolve_auto(total_row, rows)

    def point(row: Row, group_q: Q | None) -> Figures:
        if definition.family == "duration":
            extra = None
            if not use_sql_percentiles:
                values = qs.filter(_ttr__isnull=False)
                if group_q is not None:
                    values = values.filter(group_q)
                values = values.values_list("_ttr", flat=True)
                n = row["_n"] or 0
                extra = {
                    "median": percentile_by_offset(values, n, 0.5),
                    "p90": percentile_by_offset(values, n, 0.9),
                }
            return _duration_point(row, definition, extra)
        if definition.family == "ratio":
            return _ratio_point(row, definition)
        return _mean_point(row, definition)

    value, count, extra = point(total_row, None)
    total = Point(None, "Total", value, count, extra)
    points: list[Point] = []
    if by:

        def group_q(row: Row) -> Q:
            if by in PERIODS:  # the period's local bounds (SQLite compares truncations as UTC text)
                day = _period_day(row["_key"])
                return Q(
                    **{
                        f"{date_path}__gte": _local_midnight(day),
                        f"{date_path}__lt": _local_midnight(_next_period(day, by)),
                    }
                )
            return Q(_key__isnull=True) if row["_key"] is None else Q(_key=row["_key"])

        if definition.family == "duration" and not use_sql_percentiles and by not in PERIODS:
            qs = qs.annotate(_key=key_expr)
        if by in PERIODS:
            by_day = {_period_day(row["_key"]): row for row in rows}
            first = clean.get("date_from") or (min(by_day) if by_day else None)
            last = clean.get("date_to") or (max(by_day) if by_day else None)
            for day in _periods(by, first, last) if first and last else []:
                row = by_day.get(day)
                if row is None:
                    points.append(
                        Point(day.isoformat(), _period_label(day, by), None, 0, _empty_extra(definition))
                    )
                else:
                    value, count, extra = point(row, group_q(row))
                    points.append(Point(day.isoformat(), _period_label(day, by), value, count, extra))
        else:
            for row in rows:
                value, count, extra = point(row, group_q(row))
                label = _slice_label(by, row["_key"], row.get("_label"))
                points.append(Point(row["_key"], label, value, count, extra))
            points.sort(key=lambda p: (p.key is None, p.key if by == "priority" else p.label.lower()))
    return _in_unit(MetricResult(definition, by, clean, total, points, chosen_basis, date_field, unit))


def _empty_extra(definition: MetricDefinition) -> dict[str, Any]:
    none_figures = {"mean", "median", "p90"}
    return {x: (None if x in none_figures else 0) for x in definition.extras}


# --- Backlog -------------------------------------------------------------------------------------


def _open_at(end: dt.datetime) -> Q:
    """Open at instant `end`: opened before it, and resolved (else closed) at or after it, or not
    at all while still in an open status."""
    return Q(opened_at__lt=end) & ((Q(_end__isnull=True) & _OPEN) | Q(_end__gte=end))


def _backlog_aggregates(ends: list[dt.datetime]) -> dict[str, Any]:
    """Per instant: the open count and the sum of their ages in hours (sums add up across groups)."""
    aggregates: dict[str, Any] = {}
    for i, end in enumerate(ends):
        is_open = _open_at(end)
        aggregates[f"n{i}"] = _count(is_open)
        aggregates[f"a{i}"] = Sum(
            HoursBetween(Value(end, output_field=DateTimeField()), F("opened_at")), filter=is_open
        )
    return aggregates


def _backlog_point(definition: MetricDefinition, row: Row, i: int) -> tuple[float | None, int]:
    n = row[f"n{i}"] or 0
    if definition.value == "count":
        return n, n
    hours = row[f"a{i}"]
    return (None if hours is None or not n else float(hours) / n / 24.0), n


def _compute_backlog(question: Question, *, now: dt.datetime) -> MetricResult:
    """The open incidents at each period's end (or at the date_to day's end, or now), in one scan.
    An end still to come is taken as `now` (the point is then incomplete): counting at a future
    instant would age every open incident by the time left in the period."""
    definition, by, filters = question.definition, question.by, question.filters
    qs = _scope(question, window=False).annotate(_end=Coalesce("resolved_at", "closed_at"))
    as_of = now
    if "date_to" in filters:
        as_of = min(_local_midnight(filters["date_to"] + dt.timedelta(days=1)), now)
    points: list[Point] = []
    if by in PERIODS:
        periods = [day for day in _range(definition, filters, qs, by) if _local_midnight(day) < now]
        ends = [min(_local_midnight(_next_period(day, by)), now) for day in periods]
        # one scan: a pair of filtered aggregates per period end, and one for the total's instant
        row = qs.aggregate(**_backlog_aggregates([*ends, as_of]))
        for i, day in enumerate(periods):
            value, count = _backlog_point(definition, row, i)
            points.append(
                Point(day.isoformat(), _period_label(day, by), value, count, {"as_of": ends[i].isoformat()})
            )
        total_row = {"n0": row[f"n{len(ends)}"], "a0": row[f"a{len(ends)}"]}
    elif by:
        key_expr, label_expr = _group_expression(definition, by, question.date_path)
        grouped = qs.annotate(_key=key_expr)
        names = ["_key"]
        if label_expr is not None:
            grouped = grouped.annotate(_label=label_expr)
            names.append("_label")
        rows = list(grouped.values(*names).annotate(**_backlog_aggregates([as_of])).order_by())
        for row in rows:
            value, count = _backlog_point(definition, row, 0)
            if not count:
                continue
            label = _slice_label(by, row["_key"], row.get("_label"))
            points.append(Point(row["_key"], label, value, count, {"as_of": as_of.isoformat()}))
        points.sort(key=lambda p: (p.key is None, p.key if by == "priority" else p.label.lower()))
        total_row = {"n0": sum(r["n0"] or 0 for r in rows), "a0": sum(r["a0"] or 0 for r in rows)}
    else:
        total_row = qs.aggregate(**_backlog_aggregates([as_of]))
    value, count = _backlog_point(definition, total_row, 0)
    total = Point(None, "Total", value, count, {"as_of": as_of.isoformat()})
    return MetricResult(definition, by, filters, total, points, None, question.date_field, question.unit)


# --- Snapshots (asset data accuracy) ---------------------------------------------------------------


def _snapshot_point(definition: MetricDefinition, row: Row | None, day: dt.date | None) -> Figures:
    """(value, count, extras) of one snapshot day's rows summed: a ratio in % over its denominator
    (the count), or a count (itself the count)."""
    numerator, denominator = SNAPSHOT_FIGURES[definition.key]
    if row is None:
        return None, 0, {**_empty_extra(definition), "as_of": None}
    figures = {name: int(value or 0) for name, value in row.items() if not name.startswith("_")}
    extra: dict[str, Any] = {x: figures.get(x, 0) for x in definition.extras if x != "as_of"}
    extra["as_of"] = day.isoformat() if day else None
    if denominator is None:
        return figures[numerator], figures[numerator], extra
    den = figures[denominator]
    return (100.0 * figures[numerator] / den if den else None), den, extra


def _compute_snapshot(question: Question, *, now: dt.datetime) -> MetricResult:
    """A snapshot metric: the total at the window's last snapshot day (date_to, else today), and
    per period the period's last snapshot day, per CI class the as-of day's rows. Two queries: the
    days there are, then the sums of the days used."""
    definition, by, filters = question.definition, question.by, question.filters
    qs = definition.model._default_manager.all().order_by()
    for name, values in question.values.items():
        qs = qs.filter(_attribute_q(name, _path(definition, name), values))
    last = min(filters.get("date_to") or timezone.localdate(now), timezone.localdate(now))
    window = qs.filter(day__lte=last)
    if "date_from" in filters:
        window = window.filter(day__gte=filters["date_from"])
    days = sorted(window.values_list("day", flat=True).distinct())
    as_of = days[-1] if days else None
    if by is not None and by not in PERIODS and by != "category":
        _path(definition, by)  # raises: the metric cannot be sliced so
    chosen: dict[dt.date, dt.date] = {}  # period start → its last snapshot day
    if by in PERIODS:
        for day in days:
            chosen[_period_start(day, by)] = day  # days are sorted: the last one stays
    wanted = {as_of, *chosen.values()} - {None}
    columns = [c for c in {*SNAPSHOT_FIGURES[definition.key], *definition.extras} if c and c != "as_of"]
    sums = {name: Sum(name) for name in columns}
    by_day: dict[dt.date, Row] = {
        row["day"]: row for row in qs.filter(day__in=wanted).values("day").annotate(**sums).order_by()
    }
    value, count, extra = _snapshot_point(definition, _sums(by_day.get(as_of)) if as_of else None, as_of)
    total = Point(None, "Total", value, count, extra)
    points: list[Point] = []
    if by in PERIODS:
        first = filters.get("date_from") or (days[0] if days else None)
        for start in _periods(by, first, last) if first else []:
            day = chosen.get(start)
            value, count, extra = _snapshot_point(definition, _sums(by_day.get(day)) if day else None, day)
            points.append(Point(start.isoformat(), _period_label(start, by), value, count, extra))
    elif by == "category" and as_of is not None:
        class_field = definition.model._meta.get_field("ci_class")
        classes = dict(getattr(class_field, "flatchoices", ()))
        for row in qs.filter(day=as_of).values("ci_class").annotate(**sums).order_by("ci_class"):
            value, count, extra = _snapshot_point(definition, _sums(row), as_of)
            points.append(
                Point(
                    row["ci_class"], str(classes.get(row["ci_class"], row["ci_class"])), value, count, extra
                )
            )
    return MetricResult(definition, by, filters, total, points, None, question.date_field, question.unit)


def _sums(row: Row | None) -> Row | None:
    """A grouped row without its key columns (day, class)."""
    if row is None:
        return None
    return {k: v for k, v in row.items() if k not in ("day", "ci_class")}


def list_definitions() -> list[MetricDefinition]:
    return list(DEFINITIONS.values())


def warm(metric_keys: list[str] | None = None) -> int:
    """Compute anew the metrics page's default view (by month, no filter) of every metric, or of
    those given, so that they are ready for the next visitor. Returns how many were computed."""
    done = 0
    for key in metric_keys or list(DEFINITIONS):
        compute(key, by="month", refresh=True)
        done += 1
    return done
