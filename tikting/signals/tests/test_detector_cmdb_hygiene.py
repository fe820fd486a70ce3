"""The CMDB hygiene detector: falling coverage or accuracy, growing unregistered or stale counts,
against the daily accuracy snapshots; accepting a candidate binds its indicator to the metric."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from tikting.cmdb.models import ConfigurationItem as CI
from tikting.discovery.models import AccuracySnapshot
from tikting.signals import registry
from tikting.signals import services as SS
from tikting.signals.detectors import cmdb_hygiene
from tikting.signals.models import Candidate
from tikting.signals.proposals import Window

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()
WINDOW = Window(timezone.now() - dt.timedelta(days=90), timezone.now())


def day(days_ago: int, **counts: int) -> AccuracySnapshot:
    on = TODAY - dt.timedelta(days=days_ago)
    return AccuracySnapshot.objects.create(
        day=on, ci_class="server", taken_at=timezone.now() - dt.timedelta(days=days_ago), **counts
    )


def run(**overrides: float):
    return cmdb_hygiene.detect(WINDOW, thresholds={**cmdb_hygiene.THRESHOLDS, **overrides})


def by_kind(proposals):
    return {p.figures["kind"]: p for p in proposals}


@pytest.fixture
def worse():
    """A month ago the CMDB was in good shape; now coverage and accuracy fell and more devices are
    unregistered or stale. The CIs behind today's figures exist."""
    day(40, in_scope=100, seen=90, accurate=88, unregistered=5, stale=5)
    day(35, in_scope=100, seen=91, accurate=89, unregistered=4, stale=5)  # the one compared with
    day(3, in_scope=100, seen=80, accurate=70, unregistered=20, stale=9)
    day(0, in_scope=100, seen=70, accurate=60, unregistered=30, stale=25)
    long_ago = timezone.now() - dt.timedelta(days=60)
    for i in range(3):
        CI.objects.create(name=f"srv-gone-{i}", ci_class="server", last_seen_at=long_ago)
    CI.objects.create(name="srv-never", ci_class="server")
    CI.objects.create(name="pc-found", ci_class="workstation", status=CI.Status.DISCOVERED)


def test_falling_figures_and_growing_counts_raise_one_proposal_each(worse):
    found = by_kind(run())
    assert set(found) == {"coverage", "accuracy", "unregistered", "stale"}
    coverage = found["coverage"]
    assert coverage.fingerprint == "cmdb_hygiene:coverage"
    assert coverage.figures["then_pct"] == pytest.approx(91.0) and coverage.figures[
        "now_pct"
    ] == pytest.approx(70.0)
    assert coverage.figures["compared_with"] == (TODAY - dt.timedelta(days=35)).isoformat()
    assert (
        coverage.figures["baseline"] == pytest.approx(70.0) and coverage.figures["lower_is_better"] is False
    )
    assert coverage.figures["metric_binding"] == {"metric": "cmdb_coverage", "scope": {}}
    assert coverage.magnitude == pytest.approx(21.0)  # 21 points of 100 CIs
    assert {e.key for e in coverage.evidence} == {"srv-gone-0", "srv-gone-1", "srv-gone-2", "srv-never"}
    assert {e.kind for e in coverage.evidence} == {"ci"}
    accuracy = found["accuracy"]
    assert accuracy.figures["now_pct"] == pytest.approx(60 / 70 * 100)
    unregistered = found["unregistered"]
    assert (unregistered.figures["then"], unregistered.figures["now"], unregistered.magnitude) == (
        4,
        30,
        26.0,
    )
    assert [e.key for e in unregistered.evidence] == ["pc-found"]
    assert unregistered.figures["lower_is_better"] is True
    assert all(p.practice == "asset" for p in found.values())


def test_small_changes_raise_nothing():
    day(35, in_scope=100, seen=90, accurate=88, unregistered=5, stale=5)
    day(0, in_scope=100, seen=87, accurate=84, unregistered=9, stale=12)
    # coverage −3 points, accuracy −1.2 points: under 5; unregistered +4: under 10; stale +7: under 10
    assert run() == []
    assert {p.figures["kind"] for p in run(min_drop_points=1, min_growth=5)} == {
        "coverage",
        "accuracy",
        "stale",
    }


def test_growth_from_a_large_base_must_also_be_a_share_of_it():
    day(35, in_scope=1000, seen=900, accurate=900, unregistered=200, stale=100)
    day(0, in_scope=1000, seen=900, accurate=900, unregistered=220, stale=100)
    assert run() == []  # 20 more of 200: 10 %, under 25 %


def test_without_history_to_compare_with_there_is_nothing_to_say():
    assert run() == []
    day(10, in_scope=100, seen=10, unregistered=500)
    day(0, in_scope=100, seen=5, unregistered=900)
    assert run() == []  # no snapshot 30 days older than the last


def test_small_cmdbs_are_left_alone():
    day(35, in_scope=10, seen=10, accurate=10)
    day(0, in_scope=10, seen=2, accurate=2)
    assert run() == []  # under min_in_scope CIs


def test_it_is_configured_and_accepting_binds_the_indicator_to_the_metric(cast, worse):
    detector = registry.get("cmdb_hygiene")
    assert (detector.title, detector.channel) == ("CMDB hygiene", "asset_data")
    SS.run_detector(detector, WINDOW, actor=cast.manager)
    candidate = Candidate.objects.get(fingerprint="cmdb_hygiene:coverage")
    assert candidate.channel == "asset_data" and candidate.evidence.count() == 4
    item = SS.accept_candidate(candidate, actor=cast.manager)
    indicator = item.indicators.get()
    assert indicator.metric_key == "cmdb_coverage"
    assert (indicator.unit, indicator.direction) == ("%", "higher")
    assert indicator.baseline_value == 70  # the metric's figure at the period's end, from the snapshot
    assert indicator.baseline_method.startswith("computed: Discovery coverage")
