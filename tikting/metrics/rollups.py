"""The monthly incident rollup: ratio and mean metrics over a million incidents without reading them.

A series of a ratio or mean metric (reopen, reassignment, first-contact resolution, SLA
compliance, mean reassignments) adds up counts: per week segment of a local month (segments():
the month's first day and each Monday in it start one, so a week that spans two months is two
segments) and per combination of the attributes metrics filter and slice by (source, status,
priority, category, service, assignment group, CI), `metrics_incidentmonth` (models.IncidentMonth)
keeps those counts (MEASURES). compute() answers from it when the question fits it (covers()):
incidents by opening date, a window whose bounds are segment starts (whole months, whole weeks,
or none), sliced by month, week, an attribute or practice. Anything else reads the incidents.

**MTTR, its median and p90** cannot be added up from monthly figures, so each cell keeps the
times to resolve of its resolved incidents themselves (`ttrs`: integer µs, 16 hex digits each).
duration_rows() reads the cells in scope, counts and sums those values exactly and picks the
median and p90 with numpy's partition (a selection, no sort), interpolating with the same double
arithmetic as PERCENTILE_CONT: the records' figures to the last digit.

**The backlog** (backlog, backlog_age) is a difference of sums: open at instant t = opened before
t, less ended before t. When an instant is a week segment's start (a month's first, a Monday),
the first term is a sum of IncidentMonth rows and the second of `metrics_incidentend` rows
(models.IncidentEnd: the same cells by opening month and by the segment an incident stopped
being open in), both built in the same scan of the opening month. Their ages add up as integers:
Σ (t − opened_at) = n·t − Σ opened_at, the opening instants kept as whole seconds and
microseconds. An instant inside a segment (a period still running is counted now) adds what the
incidents touching the segment give (engine._backlog_rows_from_rollup).

**Kept current.** Database triggers on `incidents_incident` record the UTC month of every
incident inserted, updated or deleted (before and after an update) in `metrics_rollupdirty`, so no
write path can forget it: the ORM, imports (COPY fires them, executemany too), apply_slas,
hand-written SQL; TRUNCATE marks everything ("*"). refresh(), run by compute() before it reads the
rollup, drains the marks and rebuilds the local months they touch from the incidents, in one
transaction, under a lock (PostgreSQL: an advisory lock; SQLite serialises writers). The rollup is
therefore always what a direct computation gives, which the tests check after creates, edits,
deletes, bulk and raw-SQL writes. A bulk path that disables triggers must call mark_all().
After every `migrate` the triggers are re-created and the whole rollup is rebuilt on the next read.

The cost moves to the first read after a write: it rebuilds the written months (one month of
89,000 synthetic incidents, with the backlog's shape: 0.23–0.37 s on PostgreSQL on a loaded 2-core
machine; a million, after a migrate, 2.9–4.6 s there; bench/metrics_1m.py prints both), while a read
with nothing written costs one EXISTS query. Writers pay one small insert per statement
(PostgreSQL) or per row (SQLite).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import (
    BigIntegerField,
    Case,
    Count,
    DateTimeField,
    F,
    IntegerField,
    Max,
    Min,
    Q,
    Sum,
    TextField,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Greatest

from .definitions import PERIODS, get_definition
from .models import ROLLUP_SQLITE_TRIGGERS
from .questions import (
    _OPEN,
    _UNRESOLVED,
    PERCENTILES,
    EpochSeconds,
    HexList,
    JoinText,
    MicroFraction,
    Question,
    _clean_filters,
    _count,
    _date_field,
    _group_expression,
    _local_date,
    _local_midnight,
    _next_period,
    _periods,
    _range,
    _scope,
    epoch_micros,
    lerp,
    percentile_ranks,
    ttr_micros,
    up_to,
)

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from .definitions import MetricDefinition

__all__ = [
    "MEASURES",
    "backlog_instants",
    "backlog_rows",
    "covers",
    "covers_backlog",
    "covers_question",
    "duration_rows",
    "ended_since",
    "local_settings",
    "mark_all",
    "month_start",
    "segment_start",
    "rebuild",
    "refresh",
    "trigger_sql",
]

ALL = "*"
TABLE = "incidents_incident"
# The rollup's attribute columns (values() names: the foreign keys by field name).
DIMENSIONS = ("source", "status", "priority", "category", "service", "assignment_group", "ci")
LOCK_KEY = 7_402_118  # pg_advisory_xact_lock key of refresh()
# Transaction-local settings of the rebuild (refresh), put back afterwards. The grouping by every
# attribute hashes in memory instead of sorting (default work_mem 4 MB: on disk; with the times to
# resolve' text, PostgreSQL's estimate of 60,000 groups for some 400 chose a sort even in memory):
# a month of 89,000 incidents 1.05 s -> 0.35 s (work_mem), 0.30 s -> 0.18 s (enable_sort).
REBUILD_SETTINGS = {"work_mem": "64MB", "enable_sort": "off"}


def _sum(expression: Any) -> Sum:
    return Sum(expression, output_field=IntegerField())


def _flag(name: str) -> tuple[Count, Count]:
    """(known, true) counts of a nullable boolean column."""
    return _count(Q(**{f"{name}__isnull": False})), _count(Q(**{name: True}))


# Each rollup column: the aggregate over a month's incidents of one cell. The same conditions as
# the engine's formulas (engine._ratio_spec), which the tests compare with on both databases.
_resp, _res, _src = _flag("response_met"), _flag("resolution_met"), _flag("source_sla_met")
_fcr = _flag("first_contact_resolution")
MEASURES: dict[str, Any] = {
    "n": Count(Value(1)),
    "unresolved": _count(_UNRESOLVED),
    "resolved_once": _count(
        Q(resolved_at__isnull=False) | Q(closed_at__isnull=False) | Q(reopen_count__gte=1)
    ),
    "reopened": _count(Q(reopen_count__gte=1)),
    "reopens": Coalesce(_sum("reopen_count"), 0),
    "reassign_known": _count(Q(reassignment_count__isnull=False)),
    "reassigned": _count(Q(reassignment_count__gte=1)),
    "reassign_sum": Coalesce(_sum("reassignment_count"), 0),
    "fcr_known": _fcr[0],
    "fcr_yes": _fcr[1],
    "resp_known": _resp[0],
    "resp_met": _resp[1],
    "res_known": _res[0],
    "res_met": _res[1],
    "src_known": _src[0],
    "src_met": _src[1],
    # the backlog's: the opening instants, as whole seconds and microseconds (exact integer sums)
    "opened_secs": Coalesce(Sum(EpochSeconds("opened_at"), output_field=BigIntegerField()), 0),
    "opened_micros": Coalesce(Sum(MicroFraction("opened_at"), output_field=BigIntegerField()), 0),
}
# The times to resolve (of incidents annotated with _ttr = questions.ttr_micros()), in µs, as 16
# hex digits each (HexList): their count, exact sum and percentiles come from them (duration_rows).
TTR_MEASURES: dict[str, Any] = {"ttrs": Coalesce(HexList("_ttr"), Value(""), output_field=TextField())}
# The backlog's second shape (IncidentEnd): the same sums by the month an incident stopped being
# open, (opening month, end month, attributes).
END_MEASURES = ("n", "opened_secs", "opened_micros", "closed_only")
CLOSED_ONLY = _count(Q(resolved_at__isnull=True, closed_at__isnull=False))
END_SUMS = {name: MEASURES[name] for name in END_MEASURES if name in MEASURES} | {"closed_only": CLOSED_ONLY}

# What a ratio metric (and basis) reads: (denominator, numerator, {extra: column or expression}).
_FLAGS = {
    ("sla_response", "definitions"): "resp",
    ("sla_resolution", "definitions"): "res",
    ("sla_resolution", "source"): "src",
}
_METRICS = (
    "mttr",
    "mttr_median",
    "mttr_p90",
    "incident_fcr_rate",
    "reopen_rate",
    "reassignment_rate",
    "reassignment_mean",
    "sla_response",
    "sla_resolution",
)


def _ratio(key: str, basis: str | None) -> tuple[str, str, dict[str, Any]]:
    if key == "incident_fcr_rate":
        return (
            "fcr_known",
            "fcr_yes",
            {"resolved_first_contact": "fcr_yes", "unknown": F("n") - F("fcr_known")},
        )
    if key == "reopen_rate":  # reopened incidents were all resolved once: the numerator is theirs
        return "resolved_once", "reopened", {"reopened": "reopened", "reopens": "reopens"}
    if key == "reassignment_rate":
        return (
            "reassign_known",
            "reassigned",
            {"reassigned": "reassigned", "unknown": F("n") - F("reassign_known")},
        )
    flag = _FLAGS[(key, basis or "")]
    known, met = f"{flag}_known", f"{flag}_met"
    return known, met, {"met": met, "breached": F(known) - F(met), "not_evaluated": F("n") - F(known)}


def ratio_aggregates(definition: MetricDefinition, basis: str | None) -> dict[str, Any]:
    """The engine's ratio aggregates (same names) as sums of rollup columns."""
    den, num, extras = _ratio(definition.key, basis)
    aggregates = {"_den": _sum(den), "_num": _sum(num)}
    aggregates.update({name: _sum(column) for name, column in extras.items()})
    aggregates["unresolved"] = _sum("unresolved")
    return aggregates


def mean_aggregates(definition: MetricDefinition) -> dict[str, Any]:
    """Mean reassignments: the sum and the known counts, as the engine's _mean_aggregates."""
    return {
        "_sum": _sum("reassign_sum"),
        "_n": _sum("reassign_known"),
        "unknown": _sum(F("n") - F("reassign_known")),
        "unresolved": _sum("unresolved"),
    }


def duration_rows(question: Question, qs: QuerySet) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A duration metric's total row and rows per group (`qs`: the rollup in scope), with the names
    of the engine's (_n, _secs, _frac, unresolved, _considered, median, p90 in µs): counts and sums
    added up; the median and p90 picked from the cells' values with numpy's partition (a selection,
    not a sort: a million values in some 10 ms), as PERCENTILE_CONT would (questions.lerp)."""
    aggregates = {
        "unresolved": _sum("unresolved"),
        "_considered": Sum("n", filter=~Q(status="cancelled")),
        "_ttrs": JoinText("ttrs"),
        "_records": Sum("n"),
    }
    by = question.by
    if not by:
        rows = [qs.aggregate(**aggregates)]
    else:
        key_expr, label_expr = _group_expression(question.definition, by, question.date_path)
        grouped = qs.annotate(_key=key_expr)
        names = ["_key"]
        if label_expr is not None:
            grouped = grouped.annotate(_label=label_expr)
            names.append("_label")
        # (a group of no incidents is no point: a constant slicer's over nothing, as the engine's)
        rows = [row for row in grouped.values(*names).annotate(**aggregates).order_by() if row["_records"]]
    sums = ("unresolved", "_considered")
    total: dict[str, Any] = {name: sum(int(row[name] or 0) for row in rows) for name in sums}
    total["_ttrs"] = "".join(row["_ttrs"] or "" for row in rows) if by else rows[0]["_ttrs"]
    for row in [total, *rows] if by else [total]:
        row.update(_figures(row.pop("_ttrs") or ""))
    return total, rows if by else []


def _figures(hex_values: str) -> dict[str, Any]:
    """The count (_n), the sum as whole seconds (_secs) and microseconds (_frac) and the median
    and p90 (µs, interpolated) of values given as 16 hex digits each."""
    import numpy as np  # only here: the rest of tikting does without it

    values = np.frombuffer(bytes.fromhex(hex_values), dtype=">i8").astype(np.int64)
    n = len(values)
    # two sums far from int64's end (one of µs would pass it at some 290,000 years in all)
    figures: dict[str, Any] = {
        "_n": n,
        "_secs": int(np.sum(values // 1_000_000)),
        "_frac": int(np.sum(values % 1_000_000)),
    }
    if not n:
        return {**figures, **dict.fromkeys(PERCENTILES)}
    ranks = {name: percentile_ranks(n, fraction) for name, fraction in PERCENTILES.items()}
    picked = np.partition(values, sorted({rank for low, high, _ in ranks.values() for rank in (low, high)}))
    for name, (low, high, weight) in ranks.items():
        figures[name] = lerp(int(picked[low]), int(picked[high]), weight)
    return figures


def covers(question: Question) -> bool:
    """Can the rollup answer this question exactly? Incident ratio/mean/duration metrics by opening
    date, by month, week, an attribute or practice, over a window whose bounds are segment starts
    (a month's first day or a Monday; the day after date_to too), or no window."""
    if question.definition.key not in _METRICS or question.date_field != "opened":
        return False
    start, end = question.filters.get("date_from"), question.filters.get("date_to")
    return all(
        day is None or day.day == 1 or day.weekday() == 0
        for day in (start, end + dt.timedelta(days=1) if end is not None else None)
    )


def covers_question(metric_key: str, *, by: str | None = None, filters: dict[str, Any] | None = None,
                    date_field: str | None = None, **_options: Any) -> bool:  # fmt: skip
    """covers() (covers_backlog() for the backlog) for compute()'s arguments (tests, the benchmark)."""
    definition = get_definition(metric_key)
    field = _date_field(definition, date_field)
    question = Question(definition, by, _clean_filters(filters, field), {}, field)
    if definition.family == "backlog":
        return covers_backlog(question)
    return covers(question)


# --- The backlog -----------------------------------------------------------------------------------
# Open at instant t = opened before t, less those that stopped being open before t: an incident
# is open from opened_at until its end E (resolved_at, else closed_at; never before opened_at; an
# incident with neither and an open status has no end; one with neither and another status ends
# when it opens, so it never counts). When t is a local month's first instant, both terms are sums
# of whole months: IncidentMonth by opening month, IncidentEnd by the month of E. The ages add up
# too: Σ (t − opened_at) = n·t − Σ opened_at, in integer microseconds.


def backlog_instants(
    question: Question, now: dt.datetime, *, from_rollup: bool = False
) -> tuple[list[dt.date], list[dt.datetime]]:
    """(the periods of a backlog series, the instants it is counted at): each period's end (the
    start of the next period, or now if that is still to come), then the total's instant (the end
    of the date-to day, or now). Without a window the periods span the first and last opening, of
    the records or (`from_rollup`, by month, refreshed) of the rollup's months: the same months,
    and SQLite reads MIN and MAX of the records' opened_at together by a scan of the table."""
    definition, by, filters = question.definition, question.by, question.filters
    as_of = now
    if "date_to" in filters:
        as_of = min(_local_midnight(filters["date_to"] + dt.timedelta(days=1)), now)
    periods: list[dt.date] = []
    if by in PERIODS:
        from .models import IncidentMonth

        rows = _scope(question, window=False, model=IncidentMonth if from_rollup else None)
        periods = [day for day in _range(definition, filters, rows, by) if _local_midnight(day) < now]
    ends = [min(_local_midnight(_next_period(day, by or "month")), now) for day in periods]
    return periods, [*ends, as_of]


def ended_since(question: Question, since: dt.datetime) -> tuple[dt.datetime, bool]:
    """Of the incidents in scope whose open time ends in the local month of `since` or later: (the
    first instant of the earliest month one of them was opened in, or that month's start if none;
    whether any ended by closed_at without resolved_at). An incident whose count may change after
    `since` was opened since then or is one of them, so the engine reads only openings from that
    instant on; and it looks for closures without a resolution only if there are such."""
    from .models import IncidentEnd

    start = month_start(since)
    ends = _scope(question, window=False, model=IncidentEnd).filter(ended_at__gte=start)
    row = ends.aggregate(first=Min("opened_at"), closed_only=Sum("closed_only"))
    first = row["first"]
    return (min(first, start) if first is not None else start), bool(row["closed_only"])


def month_start(instant: dt.datetime) -> dt.datetime:
    """The first instant of the local month an instant falls in (the instant itself if it is one)."""
    day = _local_date(instant)
    assert day is not None
    return _local_midnight(day.replace(day=1))


def covers_backlog(question: Question) -> bool:
    """Can the rollup count this incident backlog? At any instants, by month or week: those inside a
    week segment add what the incidents touching it give (engine._compute_backlog)."""
    return question.definition.model_label == "incidents.Incident"


def backlog_rows(question: Question, instants: list[dt.datetime]) -> list[dict[str, Any]]:
    """Per group of an attribute slicer (else one row): [(open count, sum of ages in µs)] at each
    instant, from the two rollup shapes (the engine's _backlog_rows reads the same from the
    incidents). The instants must be week segment starts (segment_start)."""
    from .models import IncidentEnd, IncidentMonth

    refresh()
    by = question.by
    grouped = by is not None and by not in PERIODS
    width = len(instants)
    groups: dict[Any, dict[str, Any]] = {}
    for sign, model, month_field in ((1, IncidentMonth, "opened_at"), (-1, IncidentEnd, "ended_at")):
        qs = _scope(question, window=False, model=model)
        names = [month_field]
        if grouped:
            assert by is not None
            key_expr, label_expr = _group_expression(question.definition, by)
            qs = qs.annotate(_key=key_expr)
            names.append("_key")
            if label_expr is not None:
                qs = qs.annotate(_label=label_expr)
                names.append("_label")
        sums = qs.values(*names).annotate(_n=_sum("n"), _s=Sum("opened_secs"), _f=Sum("opened_micros"))
        for row in sums.order_by():
            group = groups.setdefault(
                row.get("_key"),
                {"_key": row.get("_key"), "_label": row.get("_label"), "n": [0] * width, "o": [0] * width},
            )
            opened = int(row["_s"] or 0) * 1_000_000 + int(row["_f"] or 0)
            for i, instant in enumerate(instants):
                if row[month_field] < instant:  # a whole segment before the instant
                    group["n"][i] += sign * (row["_n"] or 0)
                    group["o"][i] += sign * opened
    if not grouped and not groups:
        groups[None] = {"_key": None, "_label": None, "n": [0] * width, "o": [0] * width}
    return [
        {
            "_key": group["_key"],
            "_label": group["_label"],
            "figures": [
                (group["n"][i], group["n"][i] * epoch_micros(instant) - group["o"][i])
                for i, instant in enumerate(instants)
            ],
        }
        for group in groups.values()
    ]


# --- Keeping it current ----------------------------------------------------------------------------


def trigger_sql(vendor: str) -> list[str]:
    """Triggers that mark the UTC month of every incident written (re-runnable)."""
    if vendor == "postgresql":
        month = "to_char(opened_at AT TIME ZONE 'UTC', 'YYYY-MM')"
        statements = []
        # (constants only in these statements: no input reaches them)
        function = "CREATE OR REPLACE FUNCTION metrics_rollup_mark_{}() RETURNS trigger LANGUAGE plpgsql AS "
        for name, rows in (("new", "new_rows"), ("old", "old_rows")):
            mark = f"INSERT INTO metrics_rollupdirty (month) SELECT DISTINCT {month} FROM {rows}"  # noqa: S608
            statements.append(function.format(name) + f"$$ BEGIN {mark}; RETURN NULL; END $$")
        mark = f"INSERT INTO metrics_rollupdirty (month) VALUES ('{ALL}')"  # noqa: S608
        statements.append(function.format("all") + f"$$ BEGIN {mark}; RETURN NULL; END $$")
        # A trigger with transition tables serves one event; an update marks old and new months.
        triggers = (
            ("ins", "INSERT", "REFERENCING NEW TABLE AS new_rows", "new"),
            ("upd_new", "UPDATE", "REFERENCING NEW TABLE AS new_rows", "new"),
            ("upd_old", "UPDATE", "REFERENCING OLD TABLE AS old_rows", "old"),
            ("del", "DELETE", "REFERENCING OLD TABLE AS old_rows", "old"),
        )
        for suffix, event, referencing, function in triggers:
            statements.append(f"DROP TRIGGER IF EXISTS metrics_rollup_{suffix} ON {TABLE}")
            statements.append(
                f"CREATE TRIGGER metrics_rollup_{suffix} AFTER {event} ON {TABLE} {referencing} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION metrics_rollup_mark_{function}()"
            )
        statements.append(f"DROP TRIGGER IF EXISTS metrics_rollup_truncate ON {TABLE}")
        statements.append(
            f"CREATE TRIGGER metrics_rollup_truncate AFTER TRUNCATE ON {TABLE} "
            "FOR EACH STATEMENT EXECUTE FUNCTION metrics_rollup_mark_all()"
        )
        return statements
    # SQLite: row triggers; datetimes are UTC text "YYYY-MM-DD HH:MM:SS", one mark per month.
    statements = [
        "CREATE UNIQUE INDEX IF NOT EXISTS metrics_rollupdirty_month_once ON metrics_rollupdirty (month)"
    ]
    for name, (event, refs) in zip(
        SQLITE_TRIGGERS, (("insert", ("NEW",)), ("update", ("OLD", "NEW")), ("delete", ("OLD",))), strict=True
    ):
        marks = " ".join(
            f"INSERT OR IGNORE INTO metrics_rollupdirty (month) VALUES (substr({ref}.opened_at, 1, 7));"  # noqa: S608
            for ref in refs
        )
        statements.append(f"DROP TRIGGER IF EXISTS {name}")
        statements.append(f"CREATE TRIGGER {name} AFTER {event.upper()} ON {TABLE} BEGIN {marks} END")
    return statements


SQLITE_TRIGGERS = ROLLUP_SQLITE_TRIGGERS


def mark_after_load(vendor: str) -> None:
    """After a bulk load of incidents that took the SQLite triggers above off (the table was empty
    when the load started, so every row in it is new): the month of each row marked, in one
    statement. PostgreSQL's triggers are statement-level and stay on during loads."""
    if vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT OR IGNORE INTO metrics_rollupdirty (month) "  # noqa: S608 - constants only
                f"SELECT DISTINCT substr(opened_at, 1, 7) FROM {TABLE}"
            )


def drop_trigger_sql(vendor: str) -> list[str]:
    if vendor == "postgresql":
        suffixes = ("ins", "upd_new", "upd_old", "del", "truncate")
        return [f"DROP TRIGGER IF EXISTS metrics_rollup_{s} ON {TABLE}" for s in suffixes] + [
            f"DROP FUNCTION IF EXISTS metrics_rollup_mark_{n}()" for n in ("new", "old", "all")
        ]
    return [f"DROP TRIGGER IF EXISTS {name}" for name in SQLITE_TRIGGERS]


def mark_all_sql(vendor: str) -> str:
    """The statement that has the whole rollup rebuilt on the next read."""
    verb = "INSERT" if vendor == "postgresql" else "INSERT OR IGNORE"
    return f"{verb} INTO metrics_rollupdirty (month) VALUES ('{ALL}')"


def mark_all() -> None:
    """Rebuild everything on the next read (after a bulk load with triggers disabled, a migration)."""
    with connection.cursor() as cursor:
        cursor.execute(mark_all_sql(connection.vendor))


def _local_months(utc_month: str) -> set[dt.date]:
    """The local months (first days) that the instants of a UTC month fall in: one or two."""
    year, month = (int(part) for part in utc_month.split("-"))
    start = dt.datetime(year, month, 1, tzinfo=dt.UTC)
    end = dt.datetime.combine(_next_period(start.date(), "month"), dt.time.min, tzinfo=dt.UTC)
    return {_local_date(start).replace(day=1), _local_date(end - dt.timedelta(microseconds=1)).replace(day=1)}  # type: ignore[union-attr]


def refresh() -> int:
    """Bring the rollup up to date: drain the marks and rebuild the months they touch. Returns how
    many months were rebuilt (0 when nothing was written since the last call: one cheap query)."""
    from .models import RollupDirty

    _follow_zone()
    if not RollupDirty.objects.exists():
        return 0
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
        # First statement that writes: what a concurrent refresh drained is gone, and marks
        # written after this by other transactions stay for the next refresh.
        cursor.execute("DELETE FROM metrics_rollupdirty RETURNING month")
        marks = {row[0] for row in cursor.fetchall()}
        months: set[dt.date] = set()
        for mark in marks - {ALL}:
            months |= _local_months(mark)
        with local_settings(cursor, REBUILD_SETTINGS):
            return rebuild(None) if ALL in marks else rebuild(sorted(months)) if months else 0


@contextmanager
def local_settings(cursor: Any, values: dict[str, str]) -> Iterator[None]:
    """PostgreSQL planner settings for the statements run inside (nothing elsewhere), transaction-
    local and put back afterwards for a caller's own transaction; an error rolls them back with
    the enclosing atomic block."""
    if not values or connection.vendor != "postgresql":
        yield
        return
    cursor.execute("SELECT " + ", ".join(f"current_setting('{name}')" for name in values))
    before = dict(zip(values, cursor.fetchone(), strict=True))
    for name, value in values.items():
        cursor.execute("SELECT set_config(%s, %s, true)", [name, value])
    yield
    for name, value in before.items():
        cursor.execute("SELECT set_config(%s, %s, true)", [name, value])


_zone_checked: list[str] = []  # the TIME_ZONE this process last found the rollup built in


def _follow_zone() -> None:
    """Has the rollup whole rebuilt when it holds the months of another time zone than the site's
    (checked once per process and zone: a TIME_ZONE changes when the site restarts)."""
    from .models import RollupZone

    zone = settings.TIME_ZONE
    if _zone_checked == [zone]:
        return
    with transaction.atomic():
        built = RollupZone.objects.select_for_update().filter(pk=1).values_list("zone", flat=True).first()
        if built != zone:
            RollupZone.objects.update_or_create(pk=1, defaults={"zone": zone})
            mark_all()
    _zone_checked[:] = [zone]


def rebuild(months: list[dt.date] | None) -> int:
    """Recompute the rollup rows of these local months (first days), or of every month (None),
    from the incidents, one month at a time: a range of the opened_at index each, the month a
    constant (no per-row truncation: SQLite's is a Python function). Call inside a transaction
    (refresh does). Returns the number of months rebuilt."""
    from tikting.incidents.models import Incident

    from .models import IncidentEnd, IncidentMonth

    incidents = Incident.objects.order_by()
    stale = IncidentMonth.objects.all()
    stale_ends = IncidentEnd.objects.all()
    if months is None:
        span = incidents.aggregate(first=Min("opened_at"), last=Max("opened_at"))
        first, last = _local_date(span["first"]), _local_date(span["last"])
        months = _periods("month", first, last) if first and last else []
    else:
        in_months = Q()
        for month in months:  # a month's rows: its week segments
            in_months |= Q(
                opened_at__gte=_local_midnight(month),
                opened_at__lt=_local_midnight(_next_period(month, "month")),
            )
        stale = stale.filter(in_months)
        stale_ends = stale_ends.filter(in_months)
    stale.delete()
    stale_ends.delete()
    fields = {"service": "service_id", "assignment_group": "assignment_group_id", "ci": "ci_id"}
    for month in months:
        start = _local_midnight(month)
        in_month = incidents.filter(
            opened_at__gte=start, opened_at__lt=_local_midnight(_next_period(month, "month"))
        )
        # two groupings of the month's incidents: the cells by opening segment and attributes, and
        # the ends by end segment and attributes (one grouping by both made five times the rows)
        cells, ends = _month_rows(in_month, month)
        _insert(IncidentMonth, ({fields.get(k, k): v for k, v in row.items()} for row in cells))
        _insert(
            IncidentEnd,
            ({fields.get(k, k): v for k, v in row.items()} | {"opened_at": start} for row in ends),
        )
    return len(months)


def _insert(model: Any, rows: Iterable[dict[str, Any]]) -> None:
    """INSERT rows (dicts by attribute name; a missing one takes its field's default): COPY on
    PostgreSQL, an executemany on SQLite. bulk_create's per-field preparation of thousands of model
    instances was half a month's rebuild; on PostgreSQL an executemany is a statement per row and a
    thousand-row VALUES slower still (1,200 cells: 144 and 281 ms). Datetimes go through the
    backend's adaptation, as the ORM's would."""
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    quote = connection.ops.quote_name
    adapt = {
        field.attname: connection.ops.adapt_datetimefield_value
        for field in fields
        if isinstance(field, DateTimeField)
    }
    defaults = {field.attname: field.get_default() for field in fields}
    names = [field.attname for field in fields]
    values = [
        tuple(
            adapt[name](row.get(name, defaults[name])) if name in adapt else row.get(name, defaults[name])
            for name in names
        )
        for row in rows
    ]
    if not values:
        return
    table, columns = quote(model._meta.db_table), ", ".join(quote(field.column) for field in fields)
    with connection.cursor() as cursor:  # (names from the model: no input reaches them)
        if connection.vendor == "postgresql":  # COPY streams the rows: no statement per row
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in values:
                    copy.write_row(row)
        else:  # SQLite runs an executemany in-process
            marks = ", ".join(["%s"] * len(fields))
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", values)  # noqa: S608


def _segment_of(value: Any, starts: list[dt.datetime]) -> Any:
    """The last of the sorted segment `starts` at or before `value` (never before the first: an
    opening or an end in the rebuilt month or later)."""

    def start(k: int) -> Value:
        return Value(starts[k - 1], output_field=DateTimeField())

    return up_to(value, starts, start, DateTimeField(), low=1)


def segment_start(instant: dt.datetime) -> dt.datetime:
    """The start of the week segment an instant falls in (the instant itself if it is one): the
    later of its local month's first day and its week's Monday, at local midnight."""
    day = _local_date(instant)
    assert day is not None
    return _local_midnight(max(day.replace(day=1), day - dt.timedelta(days=day.weekday())))


def segments(month: dt.date) -> list[dt.date]:
    """The week segments of a local month: its first day and every Monday after it in the month
    (a week that spans two months is two segments, so that a month's rows never reach another)."""
    following = _next_period(month, "month")
    monday = month + dt.timedelta(days=-month.weekday() % 7)
    days = [month] + [d for d in (monday + dt.timedelta(weeks=w) for w in range(6)) if month < d < following]
    return days


def _month_rows(in_month: Any, month: dt.date) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rollup rows of the incidents opened in `month`: (the cells: MEASURES and times to
    resolve by opening segment — opened_at — and attributes; the ends: END_MEASURES by the segment
    their open time ends in — ended_at — and attributes). The end is resolved_at, else closed_at,
    or (neither, not in an open status: never open) the opening itself; an end before the opening
    counts where max(opened_at, end) falls. Incidents still open (an open status, no resolution or
    closure time) have no end row. Segments are told apart by their local bounds (a CASE that
    halves them), not by a per-row truncation."""
    with_end = in_month.annotate(_end=Coalesce("resolved_at", "closed_at"), _ttr=ttr_micros())
    last = _local_date(with_end.aggregate(last=Max("_end"))["last"])
    months = _periods("month", month, max(month, last) if last else month)
    segment = _segment_of("opened_at", [_local_midnight(day) for day in segments(month)])
    ends = [_local_midnight(day) for m in months for day in segments(m)]
    ended = Case(
        When(_end__isnull=True, then=segment),
        default=_segment_of(Greatest("opened_at", "_end"), ends),
        output_field=DateTimeField(),
    )
    cells = with_end.annotate(opened_at_=segment).values("opened_at_", *DIMENSIONS)
    cells = cells.annotate(**MEASURES, **TTR_MEASURES).order_by()
    closed = with_end.exclude(Q(_end__isnull=True) & _OPEN).annotate(ended_at=ended)
    closed = closed.values("ended_at", *DIMENSIONS).annotate(**END_SUMS).order_by()
    counts = {*MEASURES, *END_SUMS}  # (PostgreSQL's SUM of a bigint is a numeric: as integers)
    return (
        [_integers({**row, "opened_at": row.pop("opened_at_")}, counts) for row in cells],
        [_integers(row, counts) for row in closed],
    )


def _integers(row: dict[str, Any], names: set[str]) -> dict[str, Any]:
    return {k: int(v or 0) if k in names else v for k, v in row.items()}
