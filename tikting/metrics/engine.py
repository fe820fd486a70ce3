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
interpolated linearly the same way. Durations are counted in integer microseconds and turned into
hours last, so the monthly rollup (rollups.py), which answers whole-month questions of most
incident metrics, MTTR and its percentiles included, gives the records' figures exactly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import (
    BigIntegerField,
    Case,
    Count,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from . import cache as results
from . import rollups
from .definitions import (
    ATTRIBUTES,
    DEFINITIONS,
    MINUTES_PER,
    PERIODS,
    MetricDefinition,
    get_definition,
)
from .questions import (
    _CANCELLED,
    _OPEN,
    _UNRESOLVED,
    BASES,
    FILTER_FIELDS,
    FOREIGN_KEYS,
    OPEN_STATUSES,
    SNAPSHOT_FIGURES,
    TIME_FIGURES,
    WINDOW_ALIASES,
    EpochSeconds,
    MicroFraction,
    Question,
    _attribute_q,
    _clean_filters,
    _count,
    _date_field,
    _group_expression,
    _local_midnight,
    _next_period,
    _path,
    _period_day,
    _period_label,
    _period_start,
    _periods,
    _resolve_filters,
    _scope,
    _slice_label,
    _unit,
    _unresolved_aggregate,
    distinct_values,
    epoch_micros,
    hours,
    lerp,
    mean_hours,
    parse_filters,
    percentile_ranks,
    ttr_micros,
    up_to,
)
from .results import MetricResult, Point

if TYPE_CHECKING:
    pass

__all__ = [
    "BASES",
    "FILTER_FIELDS",
    "OPEN_STATUSES",
    "TIME_FIGURES",
    "WINDOW_ALIASES",
    "MetricResult",
    "Point",
    "compute",
    "distinct_values",
    "list_definitions",
    "parse_filters",
    "warm",
]

# One row of aggregates, as QuerySet.aggregate() or .values().annotate() returns it.
Row = dict[str, Any]
# A point's (value, count of records, extra counts).
Figures = tuple[float | None, int, dict[str, Any]]

MICROS_PER_DAY = 86_400_000_000

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


# Duration: the time to resolve (questions.ttr_micros), counted, summed and ranked in integer
# microseconds; the figures are turned into hours last (questions.mean_hours, hours).
_MILLION = Value(1_000_000, output_field=BigIntegerField())


def _duration_aggregates() -> dict[str, Any]:
    """Portable aggregates of the time to resolve (percentiles: percentile_by_offset): the count,
    the sum as whole seconds and microseconds (exact integers; SQLite's 64-bit SUM of microseconds
    would overflow past some 290,000 years in all), the open and the considered incidents."""
    aggregates: dict[str, Any] = {
        "_n": Count("_ttr"),
        "_secs": Sum(F("_ttr") / _MILLION),
        "_frac": Sum(F("_ttr") % _MILLION),
        "unresolved": _count(_UNRESOLVED & ~_CANCELLED),
        "_considered": _count(~_CANCELLED),
        "_records": Count(Value(1)),  # a group of no incidents is no point (a constant slicer's)
    }
    return aggregates


# A percentile query over (nearly) every incident sorts them all; PostgreSQL's default costs keep
# that sort on one core and spill it to disk. For such wide scans only, the planner is told that
# parallel workers are cheap and the sort may use 64 MB (a million incidents: 1.08 s -> 0.77 s
# on 2 cores). Transaction-local, and put back afterwards for a caller's own transaction.
WIDE_SORT = {"parallel_setup_cost": "100", "parallel_tuple_cost": "0.01", "work_mem": "64MB"}
# The backlog's grouping by (a, e) and a slicer's label: PostgreSQL cannot estimate how few groups
# the two CASEs make, so it sorted a million rows (spilling to disk) rather than hash them, and it
# compiled the expressions with JIT: by service 0.46 s (the earlier per-instant filters) -> 3.6 s
# -> 1.3 s with these (loaded machine; backlog by week 11.8 s -> 1.2 s).
BACKLOG_GROUPING = {"enable_sort": "off", "jit": "off"}
SELECTIVE_FILTERS = ("service", "group", "priority", "ci", "category", "status")


def _duration_rows_postgres(
    definition: MetricDefinition, scope: QuerySet, by: str | None, *, date_path: str = "", wide: bool = False
) -> tuple[Row, list[Row]]:
    """PostgreSQL: the total and every group in one scan. The ORM builds the per-incident rows
    (time to resolve computed once per row, the filters, the slicer); the outer query aggregates
    them with GROUPING SETS ((slicer), ()) and one PERCENTILE_CONT(ARRAY[0.5, 0.9]) sort. `wide`:
    no selective filter, so the sort covers (nearly) every incident (WIDE_SORT)."""
    inner = scope.annotate(
        _ttr=ttr_micros(),
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
    figures = (
        "COUNT(s._ttr), SUM(s._ttr / 1000000), SUM(s._ttr %% 1000000), SUM(s._unres), SUM(s._cons), "
        "PERCENTILE_CONT(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY s._ttr)"
    )
    outer = f"SELECT {columns}{grouping}, {figures} FROM ({sql}) s {group_by}"  # noqa: S608
    with (
        transaction.atomic(),
        connection.cursor() as cursor,
        rollups.local_settings(cursor, WIDE_SORT if wide else {}),
    ):
        cursor.execute(outer, params)
        fetched = cursor.fetchall()
    total: Row = {"_n": 0, "_secs": 0, "_frac": 0, "unresolved": 0, "_considered": 0}
    total.update(median=None, p90=None)
    rows: list[Row] = []
    for record in fetched:  # one row per group plus the total: never a row per incident
        row = dict(zip(names, record[: len(names)], strict=True))
        is_total, n, secs, frac, unresolved, considered, pcs = record[len(names) :]
        row.update(
            {
                "_n": n,
                "_secs": secs,
                "_frac": frac,
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
    fraction × (n − 1) with ORDER BY … OFFSET and interpolate linearly (questions.lerp). `values_qs`
    is a values_list of one non-null column (the time to resolve in µs)."""
    if not n:
        return None
    low, high, weight = percentile_ranks(n, fraction)
    pair = list(values_qs.order_by("_ttr")[low : high + 1])
    return lerp(pair[0], pair[-1], weight)


def _duration_point(
    row: Row, definition: MetricDefinition, percentiles: dict[str, float | None] | None = None
) -> Figures:
    percentiles = percentiles or {}
    n = row["_n"] or 0
    figures = {  # unrounded
        "mean": mean_hours(row.get("_secs"), row.get("_frac"), n),
        "median": hours(percentiles.get("median", row.get("median"))),
        "p90": hours(percentiles.get("p90", row.get("p90"))),
    }
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


def _sla_aggregates(
    definition: MetricDefinition, mode: str, build: Callable[..., dict[str, Any]] = _ratio_aggregates
) -> dict[str, Any]:
    """Ratio aggregates for one basis, or (auto) for both, prefixed d/s, in the same query. `build`:
    the records' aggregates, or the rollup's (rollups.ratio_aggregates)."""
    if mode != "auto":
        return build(definition, mode)
    both = {f"d{k}": v for k, v in build(definition, "definitions").items()}
    both.update({f"s{k}": v for k, v in build(definition, "source").items()})
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
    rollup: bool = True,
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
    an explicit `now`, always computes; `refresh` computes and keeps the new answer. Ratio and mean
    series of incidents over whole months are computed from the monthly rollup (rollups.py; the
    same answer); `rollup=False` reads the records instead.
    """
    definition = get_definition(metric_key)
    date_field = _date_field(definition, date_field)
    unit = _unit(definition, unit)
    clean = _clean_filters(filters, date_field)

    def fresh() -> MetricResult:
        return _compute(
            definition, by=by, clean=clean, basis=basis, date_field=date_field, unit=unit, now=now,
            percentiles=percentiles, rollup=rollup,
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
    rollup: bool = True,
) -> MetricResult:
    if by is not None and by not in PERIODS + ATTRIBUTES:
        raise ValidationError({"by": f"'{by}' is not a slicer; accepted: {', '.join(PERIODS + ATTRIBUTES)}."})
    question = Question(definition, by, clean, _resolve_filters(definition, clean), date_field, unit)
    if definition.family == "backlog":
        return _in_unit(_compute_backlog(question, now=now or timezone.now(), rollup=rollup))
    if definition.family == "snapshot":
        return _compute_snapshot(question, now=now or timezone.now())
    date_path = question.date_path
    # Ratio, mean and duration series of incidents over whole months come from the monthly rollup.
    from_rollup = rollup and rollups.covers(question)
    if from_rollup:
        from .models import IncidentMonth

        rollups.refresh()
        qs = _scope(question, model=IncidentMonth)
    else:
        qs = _scope(question)
    mode = _basis_mode(definition, basis)
    postgres = connection.vendor == "postgresql"
    use_sql_percentiles = (percentiles or ("sql" if postgres else "offset")) == "sql"
    if use_sql_percentiles and not postgres:
        raise ValidationError({"percentiles": "PERCENTILE_CONT needs PostgreSQL."})

    # A duration's median and p90 come in its rows (the rollup's cells, PERCENTILE_CONT), or else
    # are read per point with ORDER BY … OFFSET.
    ranked = definition.family == "duration" and (from_rollup or use_sql_percentiles)
    if definition.family == "duration":
        qs = qs if from_rollup else qs.annotate(_ttr=ttr_micros())
        aggregates = _duration_aggregates()
    elif definition.family == "ratio":
        build = rollups.ratio_aggregates if from_rollup else _ratio_aggregates
        aggregates = _sla_aggregates(definition, mode, build) if mode else build(definition, None)
    else:
        aggregates = (
            rollups.mean_aggregates(definition) if from_rollup else _mean_aggregates(definition, None)
        )

    rows: list[Row] = []
    if definition.family == "duration" and from_rollup:
        key_expr = None
        total_row, rows = rollups.duration_rows(question, qs)
    elif definition.family == "duration" and use_sql_percentiles:
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
        if definition.family == "duration":
            rows = [row for row in rows if row["_records"]]
    if ranked:
        pass  # total and groups came together (the rollup, or one GROUPING SETS query)
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
            if not ranked:
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

        if definition.family == "duration" and not ranked and by not in PERIODS:
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


def backlog_point(definition: MetricDefinition, n: int, age_micros: int) -> tuple[float | None, int]:
    """(value, count) of a backlog point: the open count, or their mean age in days (the exact
    sum of ages divided once, so the records and the rollup give the same float)."""
    if definition.value == "count":
        return n, n
    return (float(Fraction(age_micros, n * MICROS_PER_DAY)) if n else None), n


def _backlog_rows(
    question: Question,
    instants: list[dt.datetime],
    since: dt.datetime | None = None,
    *,
    opened_from: dt.datetime | None = None,
    closed_only: bool = True,
) -> list[Row]:
    """From the incidents, in one scan: per group of an attribute slicer (else one row), the open
    count and the sum of ages in µs at each instant, as rollups.backlog_rows gives them. `since`:
    only the incidents whose open count may differ between instants from `since` on: opened or
    resolved since, or closed since without a resolution (`closed_only`: there may be such), and
    none opened before `opened_from` (rollups.ended_since). The others ended before it, or (no
    end) are open at every such instant or at none."""
    definition, by = question.definition, question.by
    qs = _scope(question, window=False)
    if since is not None:
        recent = Q(opened_at__gte=since) | Q(resolved_at__gte=since)
        if closed_only:
            recent |= Q(resolved_at__isnull=True, closed_at__gte=since)
        qs = qs.filter(recent)
        if opened_from is not None:
            qs = qs.filter(opened_at__gte=opened_from)
    # Open at instant t ⇔ a ≤ k < e, t the k-th of the sorted instants, a the number of instants
    # at or before the opening (t > opened_at), e the number at or before the end (t ≤ end; every
    # instant with no end in an open status, none with no end otherwise). One scan groups the
    # incidents by (a, e) with their count and the sums of their opening instants; each group then
    # counts at instants a … e − 1 (a difference array): a few groups, whatever the instants.
    times = sorted(set(instants))
    width = len(times)
    qs = qs.annotate(_end=Coalesce("resolved_at", "closed_at")).annotate(
        _a=up_to("opened_at", times, Value, IntegerField()),
        _e=Case(
            When(Q(_end__isnull=True) & _OPEN, then=Value(width)),
            When(_end__isnull=True, then=Value(0)),
            default=up_to("_end", times, Value, IntegerField()),
            output_field=IntegerField(),
        ),
    )
    sums = {
        "_n": Count(Value(1)),
        "_s": Sum(EpochSeconds("opened_at")),
        "_f": Sum(MicroFraction("opened_at")),
    }
    names = ["_a", "_e"]
    if by is not None and by not in PERIODS:
        key_expr, label_expr = _group_expression(definition, by, question.date_path)
        qs = qs.annotate(_key=key_expr)
        names.append("_key")
        if label_expr is not None:
            qs = qs.annotate(_label=label_expr)
            names.append("_label")

    def new_group(key: Any, label: Any) -> dict[str, Any]:
        return {"_key": key, "_label": label, "n": [0] * (width + 1), "o": [0] * (width + 1)}

    groups: dict[Any, dict[str, Any]] = {}
    if by is None or by in PERIODS:
        groups[None] = new_group(None, None)
    with (
        transaction.atomic(),
        connection.cursor() as cursor,
        rollups.local_settings(cursor, BACKLOG_GROUPING),
    ):
        found = list(qs.values(*names).annotate(**sums).order_by())
    for row in found:
        if row["_a"] >= row["_e"]:
            continue  # open at no instant (ended before the first, opened after the last …)
        group = groups.setdefault(row.get("_key"), new_group(row.get("_key"), row.get("_label")))
        opened = int(row["_s"] or 0) * 1_000_000 + int(row["_f"] or 0)
        for name, amount in (("n", row["_n"]), ("o", opened)):
            group[name][row["_a"]] += amount
            group[name][row["_e"]] -= amount
    index = {time: k for k, time in enumerate(times)}
    result = []
    for group in groups.values():
        n = o = 0
        at: list[tuple[int, int]] = []
        for k, time in enumerate(times):
            n, o = n + group["n"][k], o + group["o"][k]
            at.append((n, n * epoch_micros(time) - o))
        figures = [at[index[instant]] for instant in instants]
        result.append({"_key": group["_key"], "_label": group["_label"], "figures": figures})
    return result


def _backlog_rows_from_rollup(question: Question, instants: list[dt.datetime]) -> list[Row]:
    """_backlog_rows from the rollup: at each instant's local month start from the rollup; for an
    instant mid-month, plus what changed since that month started, from the incidents that may be
    open in it (rows the rollup cannot split). Open at t = open at the month start m + open_S(t) −
    open_S(m), S the incidents opened, resolved or closed since m: the others ended before m (open
    at neither) or have no end (open at both, or at neither)."""
    starts = [rollups.segment_start(instant) for instant in instants]
    rows = rollups.backlog_rows(question, starts)
    partial = [i for i, instant in enumerate(instants) if starts[i] != instant]
    if not partial:
        return rows
    since = min(starts[i] for i in partial)
    opened_from, closed_only = rollups.ended_since(question, since)
    at = [instants[i] for i in partial] + [starts[i] for i in partial]
    recent = _backlog_rows(question, at, since, opened_from=opened_from, closed_only=closed_only)
    by_key = {row["_key"]: row for row in recent}
    width = len(partial)
    for row in rows:
        # (no row: no incident of the group opened, resolved or closed since `since`)
        found = by_key.get(row["_key"], {"figures": [(0, 0)] * (2 * width)})
        figures = list(row["figures"])
        for j, i in enumerate(partial):
            (n, age), (n_t, age_t), (n_m, age_m) = (
                figures[i],
                found["figures"][j],
                found["figures"][width + j],
            )
            start, end = epoch_micros(starts[i]), epoch_micros(instants[i])
            # the sums of opening instants: n·instant − ages
            opened = (n * start - age) + (n_t * end - age_t) - (n_m * start - age_m)
            count = n + n_t - n_m
            figures[i] = (count, count * end - opened)
        row["figures"] = figures
    return rows


def _compute_backlog(question: Question, *, now: dt.datetime, rollup: bool = True) -> MetricResult:
    """The open incidents at each period's end (or at the date_to day's end, or now). An end still
    to come is taken as `now` (the point is then incomplete): counting at a future instant would
    age every open incident by the time left in the period. From the rollup (rollups.covers_backlog),
    else from the incidents in one scan."""
    definition, by, filters = question.definition, question.by, question.filters
    from_rollup = rollup and rollups.covers_backlog(question)
    if from_rollup:
        rollups.refresh()
    periods, instants = rollups.backlog_instants(question, now, from_rollup=from_rollup)
    as_of = instants[-1]
    read = _backlog_rows_from_rollup if from_rollup else _backlog_rows
    rows = read(question, instants)
    points: list[Point] = []
    if by in PERIODS:
        figures = rows[0]["figures"]
        for i, day in enumerate(periods):
            value, count = backlog_point(definition, *figures[i])
            points.append(
                Point(
                    day.isoformat(), _period_label(day, by), value, count, {"as_of": instants[i].isoformat()}
                )
            )
        total_figures = figures[-1]
    elif by:
        for row in rows:
            value, count = backlog_point(definition, *row["figures"][0])
            if not count:
                continue
            label = _slice_label(by, row["_key"], row.get("_label"))
            points.append(Point(row["_key"], label, value, count, {"as_of": as_of.isoformat()}))
        points.sort(key=lambda p: (p.key is None, p.key if by == "priority" else p.label.lower()))
        total_figures = (sum(r["figures"][0][0] for r in rows), sum(r["figures"][0][1] for r in rows))
    else:
        total_figures = rows[0]["figures"][0]
    value, count = backlog_point(definition, *total_figures)
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
