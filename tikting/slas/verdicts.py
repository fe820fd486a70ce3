"""SLA due times and met flags from the user's SLA definitions (24×7 or business hours).

Due times depend on a calendar, which SQL cannot walk portably, so they are computed here, per
incident, when records are imported or saved (`apply_slas`), and stored on the incident
(response_due_at, resolution_due_at, response_met, resolution_met). The metrics engine then lets the
database count the met flags. All arithmetic is done in UTC; business-hours windows are laid out in
the site's time zone (TIKTING_TIME_ZONE), so a DST change moves them with the wall clock.
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from django.conf import settings
from django.db.models import Field, QuerySet
from django.utils import timezone

from tikting.core.prepared import Prepared

if TYPE_CHECKING:
    from django.db.models import Q
    from django.db.models.expressions import Combinable

    from tikting.incidents.models import Incident
    from tikting.slas.models import SLADefinition

__all__ = [
    "BusinessCalendar",
    "add_working_minutes",
    "apply_slas",
    "definition_for",
    "evaluate",
    "select_definition",
    "set_slas",
    "working_minutes_between",
]

UTC = dt.UTC
OPEN_STATUSES = ("new", "in_progress", "on_hold")

# (response_due_at, resolution_due_at, response_met, resolution_met)
Verdicts = tuple[dt.datetime | None, dt.datetime | None, bool | None, bool | None]
# The active definitions by (service_id, priority); a general definition has no service.
DefinitionsByKey = dict[tuple[int | None, int], "SLADefinition"]
Progress = Callable[[int], object]


class IncidentFacts(Protocol):
    """What `evaluate` reads of an incident: an Incident, or an importer's row before it is one."""

    @property
    def status(self) -> str: ...
    @property
    def opened_at(self) -> dt.datetime | None: ...
    @property
    def responded_at(self) -> dt.datetime | None: ...
    @property
    def resolved_at(self) -> dt.datetime | None: ...
    @property
    def reopen_count(self) -> int | None: ...


@dataclass(frozen=True)
class BusinessCalendar:
    """Working time: every minute (`always`), or day_start..day_end on `weekdays` (0 = Monday)."""

    always: bool = True
    day_start: int = 8
    day_end: int = 18
    weekdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})
    tz: dt.tzinfo | None = None

    @classmethod
    def of(cls, definition: SLADefinition) -> BusinessCalendar:
        if definition.calendar == "24x7":
            return cls(always=True)
        days = frozenset(int(x) for x in str(definition.weekdays).replace(" ", "").split(",") if x != "")
        return cls(
            always=False,
            day_start=int(definition.day_start),
            day_end=int(definition.day_end),
            weekdays=days,
        )

    @property
    def zone(self) -> dt.tzinfo:
        return self.tz or zoneinfo.ZoneInfo(settings.TIME_ZONE)

    def window(self, day: dt.date) -> tuple[dt.datetime, dt.datetime] | None:
        """The working window of a local day, in UTC, or None on a day off."""
        if day.weekday() not in self.weekdays:
            return None
        return _window(self, day, self.zone)

    def _window(self, day: dt.date, zone: dt.tzinfo) -> tuple[dt.datetime, dt.datetime]:
        start = dt.datetime.combine(day, dt.time(self.day_start), tzinfo=zone)
        if self.day_end >= 24:
            end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
        else:
            end = dt.datetime.combine(day, dt.time(self.day_end), tzinfo=zone)
        return start.astimezone(UTC), end.astimezone(UTC)

    def valid(self) -> bool:
        return self.always or (bool(self.weekdays) and self.day_start < self.day_end)


@functools.lru_cache(maxsize=65536)
def _window(calendar: BusinessCalendar, day: dt.date, zone: dt.tzinfo) -> tuple[dt.datetime, dt.datetime]:
    """BusinessCalendar.window, memoised: apply_slas asks for the same few hundred days again and
    again (the zone is part of the key, so a changed TIME_ZONE setting is honoured)."""
    return calendar._window(day, zone)


def add_working_minutes(start: dt.datetime, minutes: float, calendar: BusinessCalendar) -> dt.datetime:
    """The instant `minutes` of working time after `start` (aware). Starting outside working hours
    counts from the next window's start."""
    start = start.astimezone(UTC)
    if calendar.always or not calendar.valid():
        return start + dt.timedelta(minutes=minutes)
    remaining = dt.timedelta(minutes=minutes)
    day = start.astimezone(calendar.zone).date()
    current = start
    while True:
        window = calendar.window(day)
        if window is not None:
            begin, end = window
            current = max(current, begin)
            if current < end:
                available = end - current
                if remaining <= available:
                    return current + remaining
                remaining -= available
                current = end
        day += dt.timedelta(days=1)


def working_minutes_between(start: dt.datetime, end: dt.datetime, calendar: BusinessCalendar) -> float:
    """Working minutes elapsed from `start` to `end` (0 when end ≤ start)."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        return 0.0
    if calendar.always or not calendar.valid():
        return (end - start).total_seconds() / 60
    total = dt.timedelta()
    day = start.astimezone(calendar.zone).date()
    last = end.astimezone(calendar.zone).date()
    while day <= last:
        window = calendar.window(day)
        if window is not None:
            lo, hi = max(window[0], start), min(window[1], end)
            if hi > lo:
                total += hi - lo
        day += dt.timedelta(days=1)
    return total.total_seconds() / 60


def select_definition(
    definitions: DefinitionsByKey, service_id: int | None, priority: int | None
) -> SLADefinition | None:
    """The service's own definition for the priority, else the general one (service empty)."""
    if priority is None:
        return None
    return definitions.get((service_id, priority)) or definitions.get((None, priority))


def _verdict(
    done_at: dt.datetime | None, due_at: dt.datetime | None, still_open: bool, now: dt.datetime
) -> bool | None:
    if due_at is None:
        return None
    if done_at is not None:
        return done_at <= due_at
    if still_open and now > due_at:
        return False  # still open past its due time: breached already
    return None  # pending, or no timestamp to judge by


def evaluate(
    incident: IncidentFacts,
    definition: SLADefinition | None,
    *,
    now: dt.datetime | None = None,
    calendar: BusinessCalendar | None = None,
) -> Verdicts:
    """(response_due_at, resolution_due_at, response_met, resolution_met) of one incident.
    `calendar`: the definition's, when the caller has it already (BusinessCalendar.of)."""
    if definition is None or incident.opened_at is None or incident.status == "cancelled":
        return None, None, None, None
    now = now or timezone.now()
    calendar = calendar or BusinessCalendar.of(definition)
    still_open = incident.status in OPEN_STATUSES
    response_due = None
    if definition.response_minutes is not None:
        response_due = add_working_minutes(incident.opened_at, definition.response_minutes, calendar)
    resolution_due = add_working_minutes(incident.opened_at, definition.resolution_minutes, calendar)
    resolved_at = None if (still_open and (incident.reopen_count or 0) > 0) else incident.resolved_at
    return (
        response_due,
        resolution_due,
        _verdict(incident.responded_at, response_due, still_open and incident.resolved_at is None, now),
        _verdict(resolved_at, resolution_due, still_open, now),
    )


SLA_FIELDS = ("response_due_at", "resolution_due_at", "response_met", "resolution_met")


def definitions_by_key() -> DefinitionsByKey:
    """The active SLA definitions, {(service_id, priority): definition}."""
    from tikting.slas.models import SLADefinition

    return {(d.service_id, d.priority): d for d in SLADefinition.objects.filter(active=True)}


def _covering(priority: int, service_id: int | None) -> QuerySet[SLADefinition]:
    from django.db.models import Q

    from tikting.slas.models import SLADefinition

    return SLADefinition.objects.filter(
        Q(service__isnull=True) | Q(service_id=service_id), active=True, priority=priority
    )


# Every incident written asks this (tikting/records/registry.py): compiled once per connection.
_covering_prepared = Prepared(_covering)


def definition_for(incident: Incident) -> SLADefinition | None:
    """The active definition that covers one incident (one query), or None."""
    if incident.priority is None:
        return None
    found = {d.service_id: d for d in _covering_prepared(incident.priority, incident.service_id)}
    own = found.get(incident.service_id) if incident.service_id is not None else None
    return own or found.get(None)


def set_slas(incident: Incident, *, now: dt.datetime | None = None) -> None:
    """Set the four SLA fields of one (unsaved or about to be saved) incident; the caller saves."""
    values = evaluate(incident, definition_for(incident), now=now)
    for name, value in zip(SLA_FIELDS, values, strict=True):
        setattr(incident, name, value)


# -- in bulk -----------------------------------------------------------------------------------


def _coverage(definitions: DefinitionsByKey) -> dict[SLADefinition, Q]:
    """{definition: Q of the incidents it covers}: a service's own definition for its priority,
    else the general one (service empty) for the priority."""
    from django.db.models import Q

    own_services: dict[int, list[int]] = {}
    for service_id, priority in definitions:
        if service_id is not None:
            own_services.setdefault(priority, []).append(service_id)
    cover: dict[SLADefinition, Q] = {}
    for (service_id, priority), definition in definitions.items():
        if service_id is not None:
            cover[definition] = Q(priority=priority, service_id=service_id)
        elif own_services.get(priority):
            cover[definition] = Q(priority=priority) & ~Q(service_id__in=own_services[priority])
        else:
            cover[definition] = Q(priority=priority)
    return cover


def _sql_values_24x7(definition: SLADefinition, now: dt.datetime) -> dict[str, Combinable]:
    """The four SLA fields of a 24×7 definition as SQL expressions: the same rules as `evaluate`.

    Comparisons are made on durations (`responded_at - opened_at <= target`), which both backends
    compare as numbers / intervals, and "past due" as `opened_at < now - target`."""
    from django.db.models import (
        BooleanField,
        Case,
        DateTimeField,
        DurationField,
        ExpressionWrapper,
        F,
        Q,
        Value,
        When,
    )
    from django.db.models.lookups import LessThanOrEqual

    def met(done: str, target: dt.timedelta, open_q: Q, pending_q: Q | None = None) -> Case:
        elapsed = ExpressionWrapper(F(done) - F("opened_at"), output_field=DurationField())
        done_q = Q(**{f"{done}__isnull": False})
        if pending_q is not None:
            done_q &= ~pending_q  # a reopened open incident: its old resolution does not count
        return Case(
            When(done_q, then=LessThanOrEqual(elapsed, Value(target, output_field=DurationField()))),
            When(open_q & Q(opened_at__lt=now - target), then=Value(False)),
            default=Value(None),
            output_field=BooleanField(),
        )

    still_open = Q(status__in=OPEN_STATUSES)
    resolution = dt.timedelta(minutes=definition.resolution_minutes)
    values: dict[str, Combinable] = {
        "resolution_due_at": ExpressionWrapper(F("opened_at") + resolution, output_field=DateTimeField()),
        "resolution_met": met(
            "resolved_at", resolution, still_open, pending_q=still_open & Q(reopen_count__gt=0)
        ),
        "response_due_at": Value(None, output_field=DateTimeField()),
        "response_met": Value(None, output_field=BooleanField()),
    }
    if definition.response_minutes is not None:
        response = dt.timedelta(minutes=definition.response_minutes)
        values["response_due_at"] = ExpressionWrapper(F("opened_at") + response, output_field=DateTimeField())
        values["response_met"] = met("responded_at", response, still_open & Q(resolved_at__isnull=True))
    return values


def _write_rows(rows: list[tuple[Any, ...]]) -> None:
    """UPDATE the four SLA fields of (response_due, resolution_due, response_met, resolution_met, id)
    rows: on PostgreSQL one `UPDATE … FROM (VALUES …)` per batch (executemany would be a round
    trip per row), elsewhere one executemany (SQLite runs it in-process). Values are prepared by
    the model fields, as the ORM would."""
    from django.db import connection

    from tikting.incidents.models import Incident

    meta = Incident._meta
    qn = connection.ops.quote_name
    fields: list[Field[Any, Any]] = []
    columns: list[str] = []
    for name in SLA_FIELDS:
        field = meta.get_field(name)
        assert isinstance(field, Field) and field.column is not None  # the four are plain columns
        fields.append(field)
        columns.append(qn(field.column))
    assert meta.pk.column is not None
    params = [
        [f.get_db_prep_value(v, connection) for f, v in zip(fields, row[:4], strict=True)] + [row[4]]
        for row in rows
    ]
    # identifiers only (quoted model metadata); every value is a parameter
    table, pk = qn(meta.db_table), qn(meta.pk.column)
    if connection.vendor == "postgresql":
        types = [f.db_type(connection) for f in fields] + ["bigint"]
        marks = "(" + ", ".join(f"%s::{t}" for t in types) + ")"
        names = [f"v{i}" for i in range(len(fields))]
        assignments = ", ".join(f"{column} = v.{n}" for column, n in zip(columns, names, strict=True))
        sql = (
            f"UPDATE {table} AS t SET {assignments} FROM (VALUES {', '.join([marks] * len(params))}) "  # noqa: S608
            f"AS v({', '.join(names)}, id) WHERE t.{pk} = v.id"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [value for row in params for value in row])
        return
    assignments = ", ".join(f"{column} = %s" for column in columns)
    sql = f"UPDATE {table} SET {assignments} WHERE {pk} = %s"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


def apply_slas(
    queryset: QuerySet[Incident] | None = None,
    *,
    now: dt.datetime | None = None,
    batch_size: int = 2000,
    progress: Progress | None = None,
) -> int:
    """Fill response_due_at, resolution_due_at, response_met, resolution_met of the incidents in
    `queryset` (default: all) from the active SLA definitions, in bulk. Incidents no definition
    covers (no priority, no definition for it, cancelled) get nulls. source_sla_met is never
    touched. No audit rows are written: the fields are derived. Returns the number of incidents
    in the queryset.

    Cost: one UPDATE for the uncovered incidents that hold a value (all of them when there is no
    definition), one UPDATE per 24×7 definition (the due times and flags are SQL expressions),
    and a Python pass only over the incidents of business-hours definitions (keyset batches, one
    statement per batch writing only the rows whose values changed).
    `progress(n)` is called with the number of incidents done after each step."""
    from django.db.models import Q

    from tikting.incidents.models import Incident

    qs = Incident.objects.all() if queryset is None else queryset
    qs = qs.order_by()
    definitions = definitions_by_key()
    now = now or timezone.now()
    progress = progress or (lambda n: None)
    cover = _coverage(definitions)
    covered = Q(pk__in=[])
    for q in cover.values():
        covered |= q
    usable = ~Q(status="cancelled")
    uncovered = qs.exclude(covered & usable)
    written = uncovered.count()
    # rewrite only the rows that hold a value: a row update costs an entry in every index
    uncovered.filter(
        Q(response_due_at__isnull=False)
        | Q(resolution_due_at__isnull=False)
        | Q(response_met__isnull=False)
        | Q(resolution_met__isnull=False)
    ).update(response_due_at=None, resolution_due_at=None, response_met=None, resolution_met=None)
    progress(written)
    for definition, q in cover.items():
        rows = qs.filter(q & usable)
        if definition.calendar == "24x7":
            n = rows.update(**_sql_values_24x7(definition, now))
            written += n
            progress(n)
            continue
        calendar = BusinessCalendar.of(definition)
        only = rows.only(
            "id", "status", "opened_at", "responded_at", "resolved_at", "reopen_count", *SLA_FIELDS
        )
        last_pk = 0
        while True:  # keyset batches: never write to the table while a cursor reads it
            batch = list(only.filter(pk__gt=last_pk).order_by("pk")[:batch_size])
            if not batch:
                break
            changed = []
            for inc in batch:
                values = evaluate(inc, definition, now=now, calendar=calendar)
                if values != tuple(getattr(inc, name) for name in SLA_FIELDS):
                    changed.append((*values, inc.pk))
            if changed:  # rows already right are not rewritten (re-runs, the nightly pass)
                _write_rows(changed)
            written += len(batch)
            progress(len(batch))
            last_pk = batch[-1].pk
    return written
