"""The monthly incident rollup (rollups.py) answers exactly what the incidents give, on SQLite and
PostgreSQL, and stays so after every kind of write: ORM creates, edits and deletes, bulk and
queryset updates, hand-written SQL, deletes of a service, a migration."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
from django.db import connection

from tikting.accounts.models import Team
from tikting.cmdb.models import ConfigurationItem, Service
from tikting.incidents.models import Incident
from tikting.metrics import rollups
from tikting.metrics.engine import compute
from tikting.metrics.models import IncidentEnd, IncidentMonth, RollupDirty

from .conftest import at, incident

METRICS = (
    "mttr",
    "mttr_median",
    "mttr_p90",
    "reopen_rate",
    "reassignment_rate",
    "incident_fcr_rate",
    "reassignment_mean",
    "sla_resolution",
    "sla_response",
    "backlog",
    "backlog_age",
)
SLICERS = (None, "month", "week", "priority", "service", "group", "category", "ci", "practice")
WINDOW = {"date_from": "2024-01-01", "date_to": "2024-06-30"}


@pytest.fixture
def mixed(db):
    """120 incidents over six months, every attribute and flag varied (nulls included), some
    opened on a month's first and last instants."""
    rng = random.Random(16)
    services = [Service.objects.create(name=f"Service {i}") for i in range(3)]
    groups = [Team.objects.create(name=f"Group {i}") for i in range(3)]
    cis = [ConfigurationItem.objects.create(name=f"ci-{i}") for i in range(2)]
    for i in range(120):
        opened = at(2024, 1 + i % 6, 1 + rng.randrange(28), rng.randrange(24))
        if i % 20 == 0:
            opened = at(2024, 1 + i % 6, 1)  # the first instant of a UTC month
        status = rng.choice(["new", "in_progress", "on_hold", "resolved", "closed", "cancelled"])
        resolved = (
            opened + dt.timedelta(hours=rng.randrange(1, 200)) if status in ("resolved", "closed") else None
        )
        incident(
            opened,
            status=status,
            resolved_at=resolved,
            closed_at=resolved + dt.timedelta(days=1) if resolved and status == "closed" else None,
            priority=rng.choice([None, 1, 2, 3, 4, 5]),
            category=rng.choice(["", "network", "hardware"]),
            service=rng.choice([None, *services]),
            assignment_group=rng.choice([None, *groups]),
            ci=rng.choice([None, *cis]),
            source=rng.choice(["demo", "bpic2014"]),
            reopen_count=rng.choice([0, 0, 1, 2]),
            reassignment_count=rng.choice([None, 0, 1, 3]),
            first_contact_resolution=rng.choice([None, True, False]),
            response_met=rng.choice([None, True, False]),
            resolution_met=rng.choice([None, True, False]),
            source_sla_met=rng.choice([None, True, False]),
        )
    # the backlog's edge cases: closed without a resolution time, resolved before opening, ended
    # years later or in the next month, cancelled with and without an end, reopened and open again,
    # microseconds, a month's last microsecond
    odd = [
        (
            at(2024, 1, 31, 23, 59) + dt.timedelta(seconds=59, microseconds=999_999),
            "closed",
            None,
            at(2024, 2, 1),
        ),
        (at(2024, 2, 10, 5) + dt.timedelta(microseconds=123_457), "resolved", at(2024, 2, 9), None),
        (at(2024, 3, 3, 3, 3), "closed", at(2025, 7, 1, 12), at(2025, 7, 2)),
        (at(2024, 3, 20), "closed", at(2024, 4, 10), at(2024, 4, 11)),  # March's ends: Apr, May, 2025
        (at(2024, 3, 25), "resolved", at(2024, 5, 2), None),
        (at(2024, 3, 28), "closed", None, at(2024, 4, 10)),  # closed without a resolution, mid-April
        (at(2024, 4, 4) + dt.timedelta(microseconds=1), "cancelled", None, None),
        (at(2024, 4, 5), "cancelled", at(2024, 5, 5), None),
        (at(2024, 5, 6, 7), "in_progress", at(2024, 5, 8), None),
        (at(2024, 5, 31, 23), "resolved", at(2024, 6, 1) - dt.timedelta(microseconds=1), None),
        (at(2024, 6, 30, 23), "on_hold", None, None),
    ]
    for i, (opened, status, resolved, closed) in enumerate(odd):
        incident(opened, status=status, resolved_at=resolved, closed_at=closed, reopen_count=i % 2,
                 service=services[i % 3], priority=1 + i % 5)  # fmt: skip
    return services, groups, cis


def both(key: str, **kw: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(from the rollup, from the records) of one question, as the API gives them."""
    kw.setdefault("now", at(2026, 1, 1))  # a month's first instant: the backlog's too
    assert rollups.covers_question(key, **kw), "the question must be one the rollup answers"
    from_rollup = compute(key, cache=False, **kw).as_dict()
    direct = compute(key, cache=False, rollup=False, **kw).as_dict()
    return from_rollup, direct


def assert_same(**kw: Any) -> None:
    for key in METRICS:
        for by in SLICERS:
            from_rollup, direct = both(key, by=by, **kw)
            assert from_rollup == direct, (key, by, kw)


def test_every_ratio_and_mean_series_equals_the_direct_computation(mixed):
    assert_same(filters=WINDOW)
    assert_same(filters={})
    assert IncidentMonth.objects.exists()
    assert not RollupDirty.objects.exists()


def test_windows_of_weeks_and_part_months_equal_the_direct_computation(mixed):
    for filters in (
        {"date_from": "2024-01-08", "date_to": "2024-03-24"},  # Monday to Sunday
        {"date_from": "2024-02-01", "date_to": "2024-02-11"},  # a month's first to a Sunday
        {"date_from": "2024-04-15"},
    ):
        assert_same(filters=filters)


def test_filters_and_bases_equal_the_direct_computation(mixed):
    services, groups, _ = mixed
    for filters in (
        {"service": services[0].name},
        {"priority": "2,3", "status": "closed"},
        {"group": f"{groups[1].name},none", "category": "network"},
        {"source": "bpic2014", "ci": "none", "date_from": "2024-02-01", "date_to": "2024-03-31"},
    ):
        assert_same(filters=filters)
    for basis in ("auto", "definitions", "source"):
        from_rollup, direct = both("sla_resolution", by="month", basis=basis, filters=WINDOW)
        assert from_rollup == direct


def test_only_windows_of_whole_segments_by_opening_date_use_the_rollup(mixed):
    """The rollup's rows are week segments of months: a window must start on a month's first day
    or a Monday, and end the day before one."""
    assert rollups.covers_question("reopen_rate", by="month", filters=WINDOW)
    assert rollups.covers_question("reopen_rate", by="week", filters=WINDOW)
    assert rollups.covers_question("reopen_rate", by="week", filters={"date_from": "2024-01-08"})  # Monday
    assert rollups.covers_question("reopen_rate", filters={"date_to": "2024-01-14"})  # a Sunday
    assert not rollups.covers_question("reopen_rate", filters={"date_from": "2024-01-02"})
    assert not rollups.covers_question("reopen_rate", filters={"date_to": "2024-01-30"})
    assert not rollups.covers_question("reopen_rate", date_field="resolved")
    assert rollups.covers_question("mttr_p90", by="month", filters=WINDOW)
    assert not rollups.covers_question("mttr", by="month", date_field="resolved")
    # the backlog, at any instant, by month or week
    assert rollups.covers_question("backlog", by="month", filters=WINDOW)
    assert rollups.covers_question("backlog_age", by="service", filters={"date_to": "2024-03-30"})
    assert rollups.covers_question("backlog", by="week", filters=WINDOW)


def test_backlog_counted_mid_month_equals_the_direct_computation(mixed):
    """Instants inside a month (a period still running counted now, a date-to day mid-month): the
    rollup at the month's start plus what the incidents not ended by then give."""
    services, _, _ = mixed
    for now in (at(2024, 4, 17, 13, 30), at(2024, 3, 1, 0, 0) + dt.timedelta(microseconds=1), at(2026, 2, 3)):
        for filters in ({}, WINDOW, {"date_to": "2024-03-30"}, {"service": services[1].name}):
            for key in ("backlog", "backlog_age"):
                for by in SLICERS:
                    from_rollup, direct = both(key, by=by, filters=filters, now=now)
                    assert from_rollup == direct, (key, by, filters, now)
    result = compute("backlog", by="month", filters=WINDOW, now=at(2024, 4, 17, 13, 30), cache=False)
    assert result.points[-1].extra["as_of"] == "2024-04-17T13:30:00+00:00"


def _check_after(write) -> None:
    assert_same(filters=WINDOW)  # built
    write()
    assert RollupDirty.objects.exists(), "the write marked its month"
    assert_same(filters=WINDOW)


def test_creates_edits_and_deletes_are_reflected(mixed):
    services, groups, _ = mixed
    first = Incident.objects.order_by("id").first()
    assert first is not None

    def create() -> None:
        incident(at(2024, 2, 29, 23, 59), status="closed", resolved_at=at(2024, 3, 2), reopen_count=1,
                 reassignment_count=2, resolution_met=False, service=services[2])  # fmt: skip

    def edit() -> None:
        first.reopen_count = 3
        first.resolution_met = not first.resolution_met
        first.service = services[1]
        first.save()

    def move_to_another_month() -> None:  # both months change
        first.opened_at = at(2024, 5, 31, 23, 59)
        first.save()

    def delete() -> None:
        Incident.objects.filter(pk__in=Incident.objects.order_by("-id").values("pk")[:7]).delete()

    for write in (create, edit, move_to_another_month, delete):
        _check_after(write)


def test_bulk_queryset_and_raw_sql_writes_are_reflected(mixed):
    services, _, _ = mixed

    def bulk_create() -> None:
        Incident.objects.bulk_create(
            Incident(
                number=f"BULK{i}",
                opened_at=at(2024, 4, 1 + i),
                status="closed",
                resolved_at=at(2024, 4, 20),
                reassignment_count=i,
                first_contact_resolution=i % 2 == 0,
            )  # fmt: skip
            for i in range(10)
        )

    def queryset_update() -> None:
        Incident.objects.filter(priority=2).update(reassignment_count=5, response_met=True)

    def raw_sql() -> None:
        with connection.cursor() as cursor:
            cursor.execute("UPDATE incidents_incident SET reopen_count = 0 WHERE category = %s", ["network"])

    def service_deleted() -> None:  # the incidents' service is set to null by the database
        services[0].delete()

    for write in (bulk_create, queryset_update, raw_sql, service_deleted):
        _check_after(write)


def test_an_edit_rebuilds_only_the_months_it_touched(mixed):
    assert_same(filters=WINDOW)
    other_months = set(IncidentMonth.objects.exclude(opened_at__month=3).values_list("pk", flat=True))
    Incident.objects.filter(opened_at__gte=at(2024, 3, 10), opened_at__lt=at(2024, 3, 20)).update(
        reopen_count=4
    )
    assert rollups.refresh() == 1  # UTC March is local March (site time zone UTC)
    assert set(IncidentMonth.objects.exclude(opened_at__month=3).values_list("pk", flat=True)) == other_months
    assert_same(filters=WINDOW)


def test_local_months_follow_the_site_time_zone(mixed, settings):
    settings.TIME_ZONE = "Pacific/Auckland"  # +13 h in January: UTC Jan 31 12:00 is local Feb 1
    rollups.mark_all()
    incident(at(2024, 1, 31, 12), status="closed", resolved_at=at(2024, 2, 3), reopen_count=1)
    assert_same(filters=WINDOW)
    # a UTC month's instants fall in two local months here: its last 13 hours are the next month's
    assert rollups._local_months("2024-01") == {dt.date(2024, 1, 1), dt.date(2024, 2, 1)}
    settings.TIME_ZONE = "America/New_York"  # its first 5 hours are the previous month's
    assert rollups._local_months("2024-01") == {dt.date(2023, 12, 1), dt.date(2024, 1, 1)}


def test_migrate_and_truncate_rebuild_everything(mixed):
    assert_same(filters=WINDOW)
    from tikting.metrics.cache import after_migrate

    after_migrate()
    assert RollupDirty.objects.filter(month="*").exists()
    assert_same(filters=WINDOW)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the test's deferred foreign-key checks
            cursor.execute("TRUNCATE incidents_incident CASCADE")
        assert RollupDirty.objects.filter(month="*").exists()
        assert_same(filters=WINDOW)
        assert not IncidentMonth.objects.exists() and not IncidentEnd.objects.exists()


def test_the_weekly_backlog_is_what_counting_at_each_week_end_gives(mixed):
    """Weekly series read the incidents (grouped by the instants before their opening and their
    end): each point equals a count, and a mean age, taken incident by incident at its instant."""
    from fractions import Fraction

    from tikting.metrics.questions import OPEN_STATUSES

    now = at(2024, 6, 12, 15, 30)  # the last week is counted now
    incidents = list(Incident.objects.all())
    count = compute("backlog", by="week", filters=WINDOW, now=now, cache=False)
    age = compute("backlog_age", by="week", filters=WINDOW, now=now, cache=False)
    assert len(count.points) > 20
    for counted, aged in zip(count.points, age.points, strict=True):
        instant = dt.datetime.fromisoformat(counted.extra["as_of"])
        open_then = []
        for i in incidents:
            end = i.resolved_at or i.closed_at
            if i.opened_at < instant and (end >= instant if end else i.status in OPEN_STATUSES):
                open_then.append(instant - i.opened_at)
        assert counted.value == len(open_then), instant
        micros = sum(a // dt.timedelta(microseconds=1) for a in open_then)
        assert aged.value == (float(Fraction(micros, len(open_then) * 86_400_000_000)) if open_then else None)


def test_a_new_site_time_zone_rebuilds_the_rollup(mixed, settings):
    """The rollup holds local months: moved to another TIME_ZONE (a restart), it is rebuilt whole
    on the next read, and every metric still equals the records. Incidents at UTC midnight on a
    month's first belong to the month before in New York."""
    assert_same(filters=WINDOW)
    settings.TIME_ZONE = "America/New_York"
    assert_same(filters=WINDOW)
    new_york = {row.opened_at for row in IncidentMonth.objects.all()}
    assert at(2024, 1, 1, 5) in new_york and at(2024, 1, 1) not in new_york
    settings.TIME_ZONE = "UTC"
    assert_same(filters={})
    assert at(2024, 1, 1) in {row.opened_at for row in IncidentMonth.objects.all()}


def test_an_empty_database_answers_null(db):
    assert_same(filters=WINDOW)
    result = compute("reopen_rate", by="month", filters=WINDOW, cache=False)
    assert result.total.value is None and result.total.count == 0


def test_backlog_age_is_exact_to_the_microsecond(db):
    """Ages are summed as integer microseconds (EpochSeconds, MicroFraction) and divided once."""
    incident(at(2024, 1, 1) + dt.timedelta(microseconds=500_001), status="new")
    incident(at(2024, 1, 31, 23, 59) + dt.timedelta(seconds=59, microseconds=999_999), status="on_hold")
    now = at(2024, 2, 1)
    ages = [now - at(2024, 1, 1) - dt.timedelta(microseconds=500_001), dt.timedelta(microseconds=1)]
    expected = sum(ages, dt.timedelta()) / dt.timedelta(days=1) / 2
    for rollup in (True, False):
        result = compute("backlog_age", by="month", now=now, cache=False, rollup=rollup)
        assert (result.total.count, result.total.value) == (2, expected)
        assert [p.value for p in result.points] == [expected]
    assert rollups.covers_question("backlog_age", by="month", now=now)
