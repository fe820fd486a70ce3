"""The ITSM metrics engine: every metric of definitions.py computed by the database.

`compute(metric_key, by=None|"month"|"week"|"priority"|"service"|"group"|"category"|"ci"|"practice",
filters={...})` returns a MetricResult: a total and (with `by`) one point per period or slice, each
with its value, the count of records behind it, the extra counts of its definition, and the
definition (and, for SLA metrics, the basis) used.

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
    OuterRef,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, TruncMonth, TruncWeek
from django.utils import timezone

from tikting.core.itsm import Practice, Priority

from . import cache as results
from .definitions import ATTRIBUTES, DEFINITIONS, PERIODS, MetricDefinition, get_definition

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.backends.utils import CursorWrapper
    from django.db.models.expressions import Combinable
    from django.db.models.sql.compiler import SQLCompiler

__all__ = ["FILTER_FIELDS", "MetricResult", "Point", "compute", "parse_filters"]

# One row of aggregates, as QuerySet.aggregate() or .values().annotate() returns it.
Row = dict[str, Any]
# A point's (value, count of records, extra counts).
Figures = tuple[float | None, int, dict[str, Any]]

OPEN_STATUSES = ("new", "in_progress", "on_hold")
FILTER_FIELDS = (
    "source",
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
        else:  # SQLite stores UTC text that julianday() reads
            sql = f"((julianday({end_sql}) - julianday({start_sql})) * 24.0)"
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

    def as_dict(self, definition: MetricDefinition, basis: str | None) -> dict[str, Any]:
        row = {
            "key": self.key,
            "label": self.label,
            "value": self.value,
            "count": self.count,
            **self.extra,
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

    @property
    def key(self) -> str:
        return self.definition.key

    def as_dict(self) -> dict[str, Any]:
        d, basis = self.definition, self.basis
        return {
            "metric": d.key,
            "label": d.label,
            "unit": d.unit,
            "direction": d.direction,
            "definition": d.as_dict(),
            "basis": basis,
            "by": self.by,
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
            "total": point(self.total),
            "points": [point(p) for p in self.points],
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> MetricResult:
        return cls(
            get_definition(payload["metric"]),
            payload["by"],
            _clean_filters(payload["filters"]),
            Point(*payload["total"]),
            [Point(*p) for p in payload["points"]],
            payload["basis"],
        )

    def columns(self) -> list[str]:
        return ["key", "label", "value", "count", *self.definition.extras]

    def rows(self) -> list[list[Any]]:
        """The points (or the total alone, without `by`) as table rows, in columns() order."""
        points = self.points if self.by else [self.total]
        return [
            [p.key, p.label, p.value, p.count, *(p.extra.get(x) for x in self.definition.extras)]
            for p in points
        ]

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.columns())
        for row in self.rows():
            writer.writerow(["" if v is None else _csv_safe(v) for v in row])
        return out.getvalue()


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


def _clean_filters(filters: dict[str, Any] | None) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for name, value in (filters or {}).items():
        if name not in FILTER_FIELDS:
            raise ValidationError({name: f"Unknown filter; choose from {', '.join(FILTER_FIELDS)}."})
        if value in (None, ""):
            continue
        clean[name] = _date(name, value) if name in ("opened_from", "opened_to") else value
    return clean


def _priority_value(value: Any) -> int:
    text = str(value).strip().upper().removeprefix("P")
    try:
        return int(text.split(" ", 1)[0].split("-", 1)[0])
    except ValueError as exc:
        raise ValidationError({"priority": f"'{value}' is not a priority (1-5)."}) from exc


def _attribute_q(name: str, path: str, value: Any) -> Q:
    """One filter: comma-separated values mean any of them; "none" or "(none)" means empty."""
    values = [v.strip() for v in str(value).split(",")] if isinstance(value, str) else [value]
    q = Q()
    for v in values:
        if str(v).lower() in ("none", NONE_LABEL):
            q |= Q(**{f"{path}__isnull": True}) if name != "category" else Q(**{path: ""})
        elif name == "priority":
            q |= Q(**{path: _priority_value(v)})
        elif name in FOREIGN_KEYS:
            q |= Q(**{path: int(v)}) if str(v).isdigit() else Q(**{f"{path}__name": v})
        else:
            q |= Q(**{path: v})
    return q


def _path(definition: MetricDefinition, name: str) -> str:
    path = PATHS[definition.model_label].get(name)
    if path is None:
        raise ValidationError({name: f"{definition.label} cannot be sliced or filtered by {name}."})
    return path


def _scope(definition: MetricDefinition, filters: dict[str, Any], *, window: bool = True) -> QuerySet:
    qs = definition.model._default_manager.all().order_by()
    for name, value in filters.items():
        if name in ("opened_from", "opened_to"):
            continue
        qs = qs.filter(_attribute_q(name, _path(definition, name), value))
    if window:
        date_field = definition.date_field
        if "opened_from" in filters:
            qs = qs.filter(**{f"{date_field}__gte": _local_midnight(filters["opened_from"])})
        if "opened_to" in filters:
            qs = qs.filter(
                **{f"{date_field}__lt": _local_midnight(filters["opened_to"] + dt.timedelta(days=1))}
            )
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
    """The periods a series covers: opened from/to when given, else the data's first and last date."""
    first, last = filters.get("opened_from"), filters.get("opened_to")
    if first is None or last is None:
        row = qs.aggregate(first=Min(definition.date_field), last=Max(definition.date_field))
        first = first or _local_date(row["first"])
        last = last or _local_date(row["last"])
    if first is None or last is None:
        return []
    return _periods(by, first, last)


def _group_expression(definition: MetricDefinition, by: str) -> tuple[Combinable, F | None]:
    """(key expression, label expression or None) of an attribute or period slicer."""
    tz = _zone()
    if by == "month":
        return TruncMonth(definition.date_field, tzinfo=tz), None
    if by == "week":
        return TruncWeek(definition.date_field, tzinfo=tz), None
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
    return {"_den": _count(den), "_num": _count(den & num), **extras}


def _ratio_point(row: Row, definition: MetricDefinition) -> Figures:
    den, num = row["_den"] or 0, row["_num"] or 0
    value = round(100.0 * num / den, definition.decimals) if den else None
    return value, den, {x: row.get(x) or 0 for x in definition.extras}


def _mean_aggregates(definition: MetricDefinition, basis: str | None) -> dict[str, Any]:
    column = {"reassignment_mean": "reassignment_count", "csat_mean": "score"}[definition.key]
    aggregates: dict[str, Any] = {"_sum": Sum(column), "_n": Count(column)}
    if "unknown" in definition.extras:
        aggregates["unknown"] = _count(Q(**{f"{column}__isnull": True}))
    return aggregates


def _mean_point(row: Row, definition: MetricDefinition) -> Figures:
    n = row["_n"] or 0
    value = round(float(row["_sum"] or 0) / n, definition.decimals) if n else None
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
    definition: MetricDefinition, scope: QuerySet, by: str | None, *, wide: bool = False
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
        key_expr, label_expr = _group_expression(definition, by)
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
    figures = {k: None if v is None else round(float(v), definition.decimals) for k, v in figures.items()}
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
    now: dt.datetime | None = None,
    percentiles: str | None = None,
    cache: bool = True,
    refresh: bool = False,
) -> MetricResult:
    """Compute one metric as a total and, with `by`, a series by period or slice.

    `filters`: source, opened_from, opened_to (inclusive local dates), status, category, priority,
    service, group, ci (names or ids; comma-separated values mean any of them; "none" is empty).
    `basis` (SLA metrics): auto, definitions or source. `percentiles` forces "sql" (PERCENTILE_CONT,
    PostgreSQL only) or "offset" (ORDER BY … OFFSET, portable); default: the database's best.

    The answer is reused while no record a metric reads has changed (cache.py); `cache=False`, or
    an explicit `now`, always computes; `refresh` computes and keeps the new answer.
    """

    def fresh() -> MetricResult:
        return _compute(metric_key, by=by, filters=filters, basis=basis, now=now, percentiles=percentiles)

    if not cache or now is not None:
        return fresh()

    definition = get_definition(metric_key)
    clean = _clean_filters(filters)
    key = results.question_key(metric_key, by, clean, basis=basis, percentiles=percentiles)
    as_of_now = definition.family == "backlog" and "opened_to" not in clean
    return results.cached(
        fresh,
        key,
        MetricResult.to_payload,
        MetricResult.from_payload,
        time_dependent=as_of_now,
        refresh=refresh,
    )


def _compute(
    metric_key: str,
    *,
    by: str | None,
    filters: dict[str, Any] | None,
    basis: str | None,
    now: dt.datetime | None,
    percentiles: str | None,
) -> MetricResult:
    definition = get_definition(metric_key)
    if by is not None and by not in PERIODS + ATTRIBUTES:
        raise ValidationError({"by": f"Choose from {', '.join(PERIODS + ATTRIBUTES)}."})
    clean = _clean_filters(filters)
    if definition.family == "backlog":
        return _compute_backlog(definition, by, clean, now=now)
    qs = _scope(definition, clean)
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
        total_row, rows = _duration_rows_postgres(definition, _scope(definition, clean), by, wide=wide)
    elif by:
        key_expr, label_expr = _group_expression(definition, by)
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
                        f"{definition.date_field}__gte": _local_midnight(day),
                        f"{definition.date_field}__lt": _local_midnight(_next_period(day, by)),
                    }
                )
            return Q(_key__isnull=True) if row["_key"] is None else Q(_key=row["_key"])

        if definition.family == "duration" and not use_sql_percentiles and by not in PERIODS:
            qs = qs.annotate(_key=key_expr)
        if by in PERIODS:
            by_day = {_period_day(row["_key"]): row for row in rows}
            first = clean.get("opened_from") or (min(by_day) if by_day else None)
            last = clean.get("opened_to") or (max(by_day) if by_day else None)
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
    return MetricResult(definition, by, clean, total, points, chosen_basis)


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
    return (None if hours is None or not n else round(float(hours) / n / 24.0, definition.decimals)), n


def _compute_backlog(
    definition: MetricDefinition, by: str | None, filters: dict[str, Any], *, now: dt.datetime | None = None
) -> MetricResult:
    qs = _scope(definition, filters, window=False).annotate(_end=Coalesce("resolved_at", "closed_at"))
    now = now or timezone.now()
    as_of = now
    if "opened_to" in filters:
        as_of = _local_midnight(filters["opened_to"] + dt.timedelta(days=1))
    points: list[Point] = []
    if by in PERIODS:
        periods = _range(definition, filters, qs, by)
        ends = [_local_midnight(_next_period(day, by)) for day in periods]
        # one scan: a pair of filtered aggregates per period end, and one for the total's instant
        row = qs.aggregate(**_backlog_aggregates([*ends, as_of]))
        for i, day in enumerate(periods):
            value, count = _backlog_point(definition, row, i)
            points.append(
                Point(day.isoformat(), _period_label(day, by), value, count, {"as_of": ends[i].isoformat()})
            )
        total_row = {"n0": row[f"n{len(ends)}"], "a0": row[f"a{len(ends)}"]}
    elif by:
        key_expr, label_expr = _group_expression(definition, by)
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
    return MetricResult(definition, by, filters, total, points, None)


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
