"""SLA due times and met flags from the user's SLA definitions (24×7 or business hours).

Due times depend on a calendar, which SQL cannot walk portably, so they are computed here, per
incident, when records are imported or saved (`apply_slas`), and stored on the incident
(response_due_at, resolution_due_at, response_met, resolution_met). The metrics engine then lets the
database count the met flags. All arithmetic is done in UTC; business-hours windows are laid out in
the site's time zone (TIKTING_TIME_ZONE), so a DST change moves them with the wall clock.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

__all__ = [
    "BusinessCalendar",
    "add_working_minutes",
    "apply_slas",
    "evaluate",
    "select_definition",
    "working_minutes_between",
]

UTC = dt.UTC
OPEN_STATUSES = ("new", "in_progress", "on_hold")


@dataclass(frozen=True)
class BusinessCalendar:
    """Working time: every minute (`always`), or day_start..day_end on `weekdays` (0 = Monday)."""

    always: bool = True
    day_start: int = 8
    day_end: int = 18
    weekdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})
    tz: dt.tzinfo | None = None

    @classmethod
    def of(cls, definition) -> BusinessCalendar:
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
        zone = self.zone
        start = dt.datetime.combine(day, dt.time(self.day_start), tzinfo=zone)
        if self.day_end >= 24:
            end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
        else:
            end = dt.datetime.combine(day, dt.time(self.day_end), tzinfo=zone)
        return start.astimezone(UTC), end.astimezone(UTC)

    def valid(self) -> bool:
        return self.always or (bool(self.weekdays) and self.day_start < self.day_end)


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


def select_definition(definitions: dict, service_id, priority):
    """The service's own definition for the priority, else the general one (service empty)."""
    if priority is None:
        return None
    return definitions.get((service_id, priority)) or definitions.get((None, priority))


def _verdict(done_at, due_at, still_open: bool, now: dt.datetime):
    if due_at is None:
        return None
    if done_at is not None:
        return done_at <= due_at
    if still_open and now > due_at:
        return False  # still open past its due time: breached already
    return None  # pending, or no timestamp to judge by


def evaluate(incident, definition, *, now: dt.datetime | None = None) -> tuple:
    """(response_due_at, resolution_due_at, response_met, resolution_met) of one incident."""
    if definition is None or incident.opened_at is None or incident.status == "cancelled":
        return None, None, None, None
    now = now or timezone.now()
    calendar = BusinessCalendar.of(definition)
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


def apply_slas(
    queryset: QuerySet | None = None, *, now: dt.datetime | None = None, batch_size: int = 2000
) -> int:
    """Fill response_due_at, resolution_due_at, response_met, resolution_met of the incidents in
    `queryset` (default: all) from the active SLA definitions, in bulk. Incidents no definition
    covers get nulls. source_sla_met is never touched. Returns the number of incidents written."""
    from tikting.incidents.models import Incident
    from tikting.slas.models import SLADefinition

    qs = Incident.objects.all() if queryset is None else queryset
    definitions = {(d.service_id, d.priority): d for d in SLADefinition.objects.filter(active=True)}
    now = now or timezone.now()
    fields = ["response_due_at", "resolution_due_at", "response_met", "resolution_met"]
    written = 0
    rows = qs.only(
        "id", "status", "opened_at", "responded_at", "resolved_at", "reopen_count", "priority", "service_id"
    ).order_by("pk")
    last_pk = 0
    while True:  # keyset batches: never write to the table while a cursor reads it
        batch = list(rows.filter(pk__gt=last_pk)[:batch_size])
        if not batch:
            return written
        for incident in batch:
            definition = select_definition(definitions, incident.service_id, incident.priority)
            values = evaluate(incident, definition, now=now)
            for name, value in zip(fields, values, strict=True):
                setattr(incident, name, value)
        Incident.objects.bulk_update(batch, fields)
        written += len(batch)
        last_pk = batch[-1].pk
