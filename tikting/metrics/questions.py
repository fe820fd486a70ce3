"""What a metric is asked: the filters checked against what is known, the date field, the unit,
the window, the records in scope, and the periods or slices of a series."""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import (
    Aggregate,
    BigIntegerField,
    Case,
    CharField,
    Count,
    DateTimeField,
    F,
    Func,
    Max,
    Min,
    Model,
    Q,
    QuerySet,
    TextField,
    Value,
    When,
)
from django.db.models import Field as DjangoField
from django.db.models.functions import TruncMonth, TruncWeek
from django.db.models.lookups import LessThan
from django.utils import timezone

from tikting.core.itsm import Practice, Priority

from .definitions import (
    DATE_FIELDS,
    MODEL_DATES,
    UNITS,
    MetricDefinition,
)

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models.expressions import Combinable
    from django.db.models.sql.compiler import SQLCompiler


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


class MicrosBetween(Func):
    """(end − start) in whole microseconds, an integer computed by the database: the time to
    resolve, whose sums and percentiles the rollup and the records then give alike, to the last
    digit (engine.duration_figures turns them into hours)."""

    output_field = BigIntegerField()
    arity = 2

    def as_sql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, *args: Any, **kwargs: Any
    ) -> Any:
        end_sql, end_params = compiler.compile(self.source_expressions[0])
        start_sql, start_params = compiler.compile(self.source_expressions[1])
        if connection.vendor == "postgresql":
            # The difference of two timestamptz is days and microseconds; date_part() gives it in
            # seconds as a double (EXTRACT()'s numeric took twice as long), good to 10⁻⁸ s for
            # spans under 30 years, so rounding its microseconds gives them exactly.
            sql = f"ROUND(date_part('epoch', {end_sql} - {start_sql}) * 1000000)::bigint"
            return sql, (*end_params, *start_params)
        # SQLite: UTC text "YYYY-MM-DD HH:MM:SS[.ffffff]": whole seconds and microseconds apart
        # (EpochSeconds, MicroFraction); julianday()'s double is good to some 50 µs only.
        seconds = "CAST(strftime('%%s', substr({}, 1, 19)) AS INTEGER)"
        micros = "CAST(substr({} || '000000', 21, 6) AS INTEGER)"
        sql = (
            f"(({seconds.format(end_sql)} - {seconds.format(start_sql)}) * 1000000 "
            f"+ {micros.format(end_sql)} - {micros.format(start_sql)})"
        )
        return sql, (*end_params, *start_params, *end_params, *start_params)


class HexList(Aggregate):
    """Every non-null integer of a group as 16 hex digits (two's complement), concatenated in no
    particular order: a group's values in one text that both databases build and numpy reads."""

    output_field = TextField()

    def as_sql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, *args: Any, **kwargs: Any
    ) -> Any:
        sql, params = compiler.compile(self.source_expressions[0])
        if connection.vendor == "postgresql":
            return f"STRING_AGG(LPAD(TO_HEX({sql}), 16, '0'), '')", params
        # (SQLite's printf() writes NULL as 0: the NULLs are left out first)
        return f"GROUP_CONCAT(CASE WHEN {sql} IS NOT NULL THEN PRINTF('%%016x', {sql}) END, '')", params * 2


class JoinText(Aggregate):
    """The non-null texts of a group concatenated, in no particular order (HexList's, added up)."""

    output_field = TextField()

    def as_sql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, *args: Any, **kwargs: Any
    ) -> Any:
        sql, params = compiler.compile(self.source_expressions[0])
        function = "STRING_AGG" if connection.vendor == "postgresql" else "GROUP_CONCAT"
        return f"{function}({sql}, '')", params


class EpochSeconds(Func):
    """The whole seconds since 1970-01-01 UTC of a datetime (floor), an integer: with MicroFraction,
    an instant to the microsecond in integers, which add up exactly (the backlog's ages)."""

    output_field = BigIntegerField()
    arity = 1

    def as_sql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, *args: Any, **kwargs: Any
    ) -> Any:
        sql, params = compiler.compile(self.source_expressions[0])
        if connection.vendor == "postgresql":
            # date_part() is double precision (EXTRACT()'s numeric took twice as long): the epoch in
            # µs divided by 10⁶, correctly rounded; µs ≤ 999,999 keep it ≥ 10⁻⁶ below the next
            # second while the value's precision is 2.4 × 10⁻⁷ s (until 2255), so the floor is exact.
            return f"FLOOR(date_part('epoch', {sql}))::bigint", params
        # SQLite: UTC text "YYYY-MM-DD HH:MM:SS[.ffffff]"; strftime rounds a fraction, so it is cut.
        return f"CAST(strftime('%%s', substr({sql}, 1, 19)) AS INTEGER)", params


class MicroFraction(Func):
    """The microseconds past the whole second of a datetime (0–999,999), an integer."""

    output_field = BigIntegerField()
    arity = 1

    def as_sql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, *args: Any, **kwargs: Any
    ) -> Any:
        sql, params = compiler.compile(self.source_expressions[0])
        if connection.vendor == "postgresql":
            # the seconds field × 10⁶ plus its microseconds: an integer, exact in a double
            return f"(date_part('microseconds', {sql})::bigint %% 1000000)", params
        return f"CAST(substr({sql} || '000000', 21, 6) AS INTEGER)", params


def epoch_micros(value: dt.datetime) -> int:
    """An aware datetime as integer microseconds since 1970-01-01 UTC (EpochSeconds × 10⁶ +
    MicroFraction of the same instant)."""
    return (value - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)


def _count(condition: Q) -> Count:
    """COUNT(1) FILTER (WHERE condition). Not COUNT(id): the primary key is in no covering index,
    and counting it made PostgreSQL visit the table instead of answering from the index alone."""
    return Count(Value(1), filter=condition)


_OPEN = Q(status__in=OPEN_STATUSES)
_REOPENED_OPEN = _OPEN & Q(reopen_count__gt=0)
_RESOLVED = Q(resolved_at__isnull=False, resolved_at__gte=F("opened_at")) & ~_REOPENED_OPEN
_UNRESOLVED = _OPEN & (Q(resolved_at__isnull=True) | Q(reopen_count__gt=0))
_CANCELLED = Q(status="cancelled")


MICROS_PER_HOUR = 3_600_000_000
PERCENTILES = {"median": 0.5, "p90": 0.9}


def percentile_ranks(n: int, fraction: float) -> tuple[int, int, float]:
    """PERCENTILE_CONT's two ranks (0-based) of n ordered values and the weight of the higher:
    the same double arithmetic as PostgreSQL's (orderedsetaggs.c), so that every path agrees."""
    position = fraction * (n - 1)
    low = math.floor(position)
    return low, min(low + 1, n - 1), position - low


def lerp(below: float, above: float, weight: float) -> float:
    """PostgreSQL's float8_lerp: below + weight × (above − below), in doubles."""
    return float(below) + weight * (float(above) - float(below))


def hours(micros: float | None) -> float | None:
    """Microseconds (a time to resolve, a percentile of them) in hours, unrounded."""
    return None if micros is None else float(micros) / MICROS_PER_HOUR


def mean_hours(secs: Any, micros: Any, n: int) -> float | None:
    """The mean of n times to resolve whose sum is secs × 10⁶ + micros µs, in hours, from the exact
    sum (correctly rounded once), so the rollup's sums and the records' give the same double."""
    if not n:
        return None
    total = int(secs or 0) * 1_000_000 + int(micros or 0)
    return float(Fraction(total, n * MICROS_PER_HOUR))


def up_to(
    value: Any, points: list[dt.datetime], leaf: Callable[[int], Any], output_field: Any, low: int = 0
) -> Any:
    """A CASE giving leaf(k), k how many of the sorted `points` are at or before `value` (a field
    name, or an expression), known to be at least `low`: it halves the range at each step, so a row
    costs some log₂(len(points)) comparisons (a year of weeks: six), on both databases."""

    def between(low: int, high: int) -> Any:
        if low == high:
            return leaf(low)
        middle = (low + high) // 2  # points[middle] > value: at most `middle` of them
        mark = points[middle]
        below = (
            Q(**{f"{value}__lt": mark})
            if isinstance(value, str)
            else LessThan(value, Value(mark, output_field=DateTimeField()))
        )
        return Case(
            When(below, then=between(low, middle)),
            default=between(middle + 1, high),
            output_field=output_field,
        )

    return between(low, len(points))


def ttr_micros() -> Case:
    """The time to resolve of an incident in whole microseconds: resolved (not before it opened,
    not reopened and open again) and not cancelled; else NULL. The duration metrics' values."""
    return Case(
        When(_RESOLVED & ~_CANCELLED, then=MicrosBetween(F("resolved_at"), F("opened_at"))),
        default=None,
        output_field=BigIntegerField(),
    )


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


def _scope(question: Question, *, window: bool = True, model: type[Model] | None = None) -> QuerySet:
    """The records of a question: its filters; by resolution or closure date, only the records
    resolved (closed) and not open again; and its from/to window on the date field. `model`: a
    rollup with the record's column names (rollups.py) instead of the records."""
    definition = question.definition
    qs = (model or definition.model)._default_manager.all().order_by()
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
