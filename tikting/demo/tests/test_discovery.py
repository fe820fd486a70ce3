"""The demo's discovery history: real runs over the demo CMDB, so the CMDB health page has figures."""

import datetime as dt
import random

import pytest
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from tikting.accounts.models import Role, Team, User
from tikting.cmdb.models import ConfigurationItem, Service
from tikting.demo import discovery as D
from tikting.demo import history as H
from tikting.demo.management.commands import demo as demo_command
from tikting.discovery import snapshot
from tikting.discovery.models import AccuracySnapshot, DiscoveryRun, DriftItem, DuplicateCandidate
from tikting.signals.detectors import cmdb_hygiene
from tikting.signals.proposals import Window

pytestmark = pytest.mark.django_db

SEED = 5


def _wipe():
    D.wipe_discovery()
    H.wipe_history()
    Service.objects.filter(name__in=demo_command.SERVICES).delete()
    User.objects.filter(username__in=["disc-manager", "disc-owner"]).delete()
    Team.objects.filter(name__in=H.GROUPS).delete()


@pytest.fixture(scope="module")
def built(django_db_setup, django_db_blocker):
    # Built once and committed (the history's CIs, then nine weeks of runs); wiped afterwards.
    with django_db_blocker.unblock():
        _wipe()
        users = {
            "manager": User.objects.create(username="disc-manager", role=Role.MANAGER),
            "owner": User.objects.create(username="disc-owner", role=Role.OWNER),
        }
        services = {
            name: Service.objects.create(name=name, criticality=criticality, owner=users["owner"])
            for name, (criticality, _owner, _d) in demo_command.SERVICES.items()
        }
        H.build_history(random.Random(SEED), users, services, months=1)
        counts = D.build_discovery(random.Random(SEED), users)
        yield users, services, counts
        _wipe()


def _totals():
    rows = snapshot.figures()
    return {name: sum(r[name] for r in rows.values()) for name in snapshot.COUNTS}


def test_runs_of_two_sources_weekly_over_nine_weeks(built):
    _users, _services, counts = built
    runs = DiscoveryRun.objects.filter(source_name__in=D.RUN_SOURCES.values())
    assert counts["discovery runs"] == runs.count() == 2 * D.WEEKS
    assert set(runs.values_list("status", flat=True)) == {DiscoveryRun.Status.FINISHED}
    first, last = runs.order_by("started_at").first(), runs.order_by("started_at").last()
    assert first is not None and last is not None
    assert last.started_at < timezone.now()
    assert (last.started_at - first.started_at) >= dt.timedelta(weeks=D.WEEKS - 1)
    assert all(run.duration and run.duration > dt.timedelta(0) for run in runs)
    # history: a day's snapshot per week at least, the first as old as the first run
    days = sorted(set(AccuracySnapshot.objects.values_list("day", flat=True)))
    assert len(days) >= D.WEEKS and days[0] == timezone.localdate(first.finished_at)


def test_the_health_figures_are_not_zero(built):
    totals = _totals()
    assert totals["in_scope"] >= 50
    coverage = totals["seen"] / totals["in_scope"]
    assert 0.6 < coverage < 0.9  # twelve laptops stale, a few never seen
    assert (
        totals["stale"]
        == len(D.BROKEN_LAPTOPS)
        - ConfigurationItem.objects.filter(
            name__in=[f"LT-{n:04d}" for n in D.BROKEN_LAPTOPS], status=ConfigurationItem.Status.RETIRED
        ).count()
    )
    assert totals["never_seen"] >= 3
    assert totals["drifted"] >= 3 and totals["accurate"] < totals["seen"]
    assert totals["unregistered"] == len(D.NEWCOMERS) - len(D.REGISTERED_PRINTERS)
    assert DuplicateCandidate.objects.filter(status="open").count() >= 2
    assert totals["filled"] > 0


def test_the_health_page_shows_them(built, client):
    users, _services, _counts = built
    client.force_login(users["manager"])
    page = client.get(reverse("discovery:health"))
    assert page.status_code == 200
    html = page.content.decode()
    totals = _totals()
    assert f"{100 * totals['seen'] / totals['in_scope']:.1f}" in html
    # the last devices found unregistered, and the CIs longest unseen, are listed
    assert "cam-f4-05" in html
    stale = snapshot.cis_behind("stale").order_by("last_seen_at", "pk").first()
    assert stale is not None and stale.name in html
    assert page.context["trend"]["labels"]  # the charts have days to draw


def test_the_manager_worked_the_page(built):
    printers = ConfigurationItem.objects.filter(name__in=D.REGISTERED_PRINTERS)
    assert set(printers.values_list("status", "ci_class")) == {("active", "printer")}
    accepted = DriftItem.objects.get(status="accepted", ci__name="SW-ACC-02")
    assert accepted.decided_at is not None and accepted.decided_at < timezone.now() - dt.timedelta(days=7)


def test_the_hygiene_detector_finds_the_decline(built):
    window = Window(timezone.now() - dt.timedelta(days=90), timezone.now())
    proposals = cmdb_hygiene.detect(window, thresholds=cmdb_hygiene.THRESHOLDS)
    kinds = {p.figures["kind"] for p in proposals}
    assert {"coverage", "unregistered", "stale"} <= kinds
    coverage = next(p for p in proposals if p.figures["kind"] == "coverage")
    assert coverage.figures["drop_points"] >= 5 and coverage.evidence


def test_building_again_replaces_it(built):
    users, _services, _counts = built
    before = ConfigurationItem.objects.filter(Q(source="discovery") | Q(source="demo")).count()
    figures = _totals()
    D.build_discovery(random.Random(SEED), users)
    assert ConfigurationItem.objects.filter(Q(source="discovery") | Q(source="demo")).count() == before
    assert DiscoveryRun.objects.filter(source_name__in=D.RUN_SOURCES.values()).count() == 2 * D.WEEKS
    assert _totals() == figures  # deterministic for a seed
