"""Asset data accuracy: the snapshot figures, the metrics engine's snapshot family, the CLI and a
register indicator bound to the accuracy metric."""

from __future__ import annotations

import datetime as dt
import json
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test.utils import override_settings
from django.utils import timezone

from tikting.cmdb.models import ConfigurationItem as CI
from tikting.discovery import snapshot
from tikting.discovery.models import AccuracySnapshot, Decision, DriftItem, DuplicateCandidate
from tikting.improvement import services as S
from tikting.metrics.engine import compute
from tikting.test import ready_item

from .factories import ci

pytestmark = pytest.mark.django_db

NOW = timezone.now()
RECENT = NOW - dt.timedelta(days=2)
LONG_AGO = NOW - dt.timedelta(days=45)


@pytest.fixture
def cmdb(cast):
    """Servers: two seen lately (one with a drift on its location), one stale, one never seen; a
    retired one and an application (out of scope); a discovered printer; a duplicate pair."""
    seen_ok = ci(
        "srv-ok",
        last_seen_at=RECENT,
        owner=cast.admin,
        service=cast.email,
        location="DC1",
        serial_number="S1",
        manufacturer="Dell",
        model_name="R640",
        os_name="Debian 12",
        ip_address="10.0.0.1",
    )
    drifted = ci("srv-drift", last_seen_at=RECENT, location="DC1")
    stale = ci("srv-stale", last_seen_at=LONG_AGO)
    never = ci("srv-never")
    ci("srv-retired", status=CI.Status.RETIRED, last_seen_at=LONG_AGO)
    ci("payroll", ci_class=CI.CIClass.APPLICATION)
    printer = ci("prn-1", ci_class=CI.CIClass.PRINTER, status=CI.Status.DISCOVERED, last_seen_at=RECENT)
    DriftItem.objects.create(
        ci=drifted, attribute="location", ci_value="DC1", discovered_value="DC2", source="snmp", found_at=NOW
    )
    DriftItem.objects.create(  # not a key attribute: no effect on accuracy
        ci=seen_ok,
        attribute="os_version",
        ci_value="12",
        discovered_value="12.4",
        source="nmap",
        found_at=NOW,
    )
    DuplicateCandidate.objects.create(ci=stale, other=never, reason="serial_number", value="X", found_at=NOW)
    return {"ok": seen_ok, "drifted": drifted, "stale": stale, "never": never, "printer": printer}


def figure(key, **kwargs):
    return compute(key, cache=False, **kwargs)


@override_settings(TIKTING_DISCOVERY_KEY_ATTRIBUTES=["location", "os_name"])
def test_the_snapshot_counts_every_figure_per_class(cmdb):
    rows = snapshot.figures(NOW)
    server = rows["server"]
    assert (server["in_scope"], server["seen"], server["stale"], server["never_seen"]) == (4, 2, 1, 1)
    assert (server["drifted"], server["accurate"], server["duplicates"]) == (1, 1, 1)
    assert rows["printer"]["unregistered"] == 1 and rows["printer"]["in_scope"] == 0
    assert "application" not in rows  # nothing to count there
    # completeness: 8 required attributes per server; srv-ok has all 8, the others only a location
    # (srv-drift) or nothing
    assert (server["required"], server["filled"]) == (32, 9)


@override_settings(TIKTING_DISCOVERY_KEY_ATTRIBUTES=["location", "os_name"])
def test_the_metrics_engine_reads_the_last_snapshot(cmdb):
    assert snapshot.take(NOW) == 2  # a server row and a printer row
    assert snapshot.take(NOW) == 0  # nothing changed: nothing written
    coverage = figure("cmdb_coverage")
    assert coverage.total.value == pytest.approx(50.0) and coverage.total.count == 4
    assert coverage.total.extra == {
        "seen": 2,
        "in_scope": 4,
        "stale": 1,
        "never_seen": 1,
        "as_of": timezone.localdate(NOW).isoformat(),
    }
    assert figure("cmdb_accuracy").total.value == pytest.approx(50.0)
    assert figure("cmdb_unregistered").total.value == 1
    assert figure("cmdb_stale").total.value == 1
    assert figure("cmdb_duplicates").total.value == 1
    assert figure("cmdb_completeness").total.value == pytest.approx(100 * 9 / 32)
    by_class = figure("cmdb_unregistered", by="category")
    assert [(p.key, p.label, p.value) for p in by_class.points] == [
        ("printer", "Printer", 1),
        ("server", "Server", 0),
    ]
    only_servers = figure("cmdb_coverage", filters={"category": "server"})
    assert only_servers.total.value == pytest.approx(50.0)


def test_a_series_takes_each_periods_last_snapshot_not_a_sum():
    for day, seen in ((dt.date(2026, 10, 3), 1), (dt.date(2026, 10, 30), 3), (dt.date(2026, 11, 12), 4)):
        AccuracySnapshot.objects.create(
            day=day,
            ci_class="server",
            taken_at=dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC),
            in_scope=4,
            seen=seen,
        )
    series = figure("cmdb_coverage", by="month", filters={"date_from": "2026-10-01", "date_to": "2026-12-31"})
    assert [(p.label, p.value, p.extra["as_of"]) for p in series.points] == [
        ("2026-10", 75.0, "2026-10-30"),
        ("2026-11", 100.0, "2026-11-12"),
        ("2026-12", None, None),  # no snapshot that month
    ]
    assert series.total.value == 100.0 and series.total.extra["as_of"] == "2026-11-12"
    earlier = figure("cmdb_coverage", filters={"date_to": "2026-10-15"})
    assert earlier.total.value == 25.0  # as of the window's end: the 3 October snapshot


def test_snapshot_metrics_refuse_filters_they_cannot_apply():
    with pytest.raises(ValidationError) as error:
        figure("cmdb_coverage", filters={"service": "E-mail"})
    assert "cannot be sliced or filtered by service" in str(error.value)
    with pytest.raises(ValidationError):
        figure("cmdb_stale", by="priority")
    with pytest.raises(ValidationError) as error:
        figure("cmdb_coverage", date_field="resolved")
    assert "daily snapshot" in str(error.value)


@override_settings(TIKTING_DISCOVERY_KEY_ATTRIBUTES=["location"])
def test_the_cli_shows_them_like_every_other_metric(cmdb):
    snapshot.take(NOW)
    out = StringIO()
    call_command("metrics", "show", "cmdb_accuracy", "--format", "json", stdout=out)
    data = json.loads(out.getvalue())
    assert data["label"] == "CMDB accuracy" and data["total"]["value"] == 50.0
    assert data["total"]["accurate"] == 1 and data["total"]["drifted"] == 1
    listed = StringIO()
    call_command("metrics", "list", stdout=listed)
    assert "cmdb_coverage" in listed.getvalue() and "cmdb_completeness" in listed.getvalue()


@override_settings(TIKTING_DISCOVERY_KEY_ATTRIBUTES=["location"])
def test_the_accuracy_metric_can_be_a_register_indicator(cast, cmdb):
    yesterday = timezone.localdate() - dt.timedelta(days=1)
    snapshot.take(timezone.make_aware(dt.datetime.combine(yesterday, dt.time(12))))
    item = ready_item(cast, practice="asset")
    indicator = S.bind_indicator(
        item.indicators.get(),
        actor=cast.owner,
        metric_key="cmdb_accuracy",
        window_start=yesterday - dt.timedelta(days=30),
        window_end=yesterday,
    )
    assert (indicator.metric_key, indicator.unit, indicator.direction) == ("cmdb_accuracy", "%", "higher")
    assert indicator.baseline_value == 50
    assert "CMDB accuracy" in indicator.baseline_method


def test_drill_down_lists_the_cis_behind_each_figure(cmdb):
    names = {
        name: set(snapshot.cis_behind(name, now=NOW).values_list("name", flat=True))
        for name in snapshot.FIGURES
    }
    assert names["seen"] == {"srv-ok", "srv-drift"}
    assert names["stale"] == {"srv-stale"} and names["never_seen"] == {"srv-never"}
    assert names["unregistered"] == {"prn-1"} and names["duplicates"] == {"srv-stale", "srv-never"}
    assert "srv-ok" not in names["incomplete"] and "srv-drift" in names["incomplete"]
    DriftItem.objects.update(status=Decision.REJECTED)  # the CI is right: no longer inaccurate
    assert not snapshot.cis_behind("drifted", now=NOW).exists()
