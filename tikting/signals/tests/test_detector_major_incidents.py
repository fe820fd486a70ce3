"""The major-incidents detector: major incidents resolved in the window without a post-incident review."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from tikting.incidents.models import Incident
from tikting.signals import registry
from tikting.signals import services as S
from tikting.signals.detectors import major_incidents as D
from tikting.signals.models import Candidate
from tikting.signals.proposals import Window, no_progress

pytestmark = pytest.mark.django_db

NOW = timezone.now()
WINDOW = Window(start=NOW - dt.timedelta(days=90), end=NOW)


def resolved(number: str, days_ago: float, *, priority: int = 1, service=None, **extra) -> Incident:
    at = NOW - dt.timedelta(days=days_ago)
    return Incident.objects.create(
        number=number,
        priority=priority,
        service=service,
        status=extra.pop("status", "resolved"),
        opened_at=at - dt.timedelta(hours=5),
        resolved_at=at,
        **extra,
    )


def detect(**thresholds):
    return D.detect(WINDOW, thresholds={**D.THRESHOLDS, **thresholds}, progress=no_progress)


def test_it_finds_major_incidents_without_a_review_per_service(cast):
    resolved("INC1", 20, service=cast.email)  # P1, no review: counted
    resolved("INC2", 30, priority=3, major=True, service=cast.email)  # flagged major: counted
    resolved("INC3", 40, service=cast.email, post_incident_review="Timeline reviewed")  # reviewed
    resolved("INC4", 25, priority=2, service=cast.email)  # not major
    resolved("INC5", 10, service=cast.network)
    proposals = {p.fingerprint: p for p in detect()}
    assert set(proposals) == {
        f"major_incidents:service={cast.email.pk}",
        f"major_incidents:service={cast.network.pk}",
    }
    email = proposals[f"major_incidents:service={cast.email.pk}"]
    assert [e.key for e in email.evidence] == ["INC2", "INC1"]  # by resolution time
    assert {e.role for e in email.evidence} == {"no_review"}
    assert email.magnitude == 2
    assert email.score == pytest.approx(2 * 2 / 3)
    assert email.figures["major_incidents"] == 3 and email.figures["without_review"] == 2
    assert email.figures["baseline"] == pytest.approx(200 / 3) and email.figures["unit"] == "%"
    assert email.figures["lower_is_better"] is True
    assert email.service_id == cast.email.pk and email.practice == "incident"
    assert email.impact == 4  # a critical one among them
    assert "2 of 3 major incident(s) on E-mail" in email.explanation
    assert "INC2, INC1" in email.explanation


def test_a_review_finding_submitted_through_the_manual_channel_counts(cast):
    inc = resolved("INC1", 20, service=cast.email)
    resolved("INC2", 20, service=cast.email)
    S.submit_candidate(
        actor=cast.contributor, channel="post_incident_review", title="Paging failed", record=inc
    )
    (proposal,) = detect()
    assert [e.key for e in proposal.evidence] == ["INC2"]


def test_recent_cancelled_and_out_of_window_incidents_are_left_out(cast):
    resolved("INC1", 2)  # inside the grace period
    resolved("INC2", 20, status="cancelled")
    resolved("INC3", 200)  # before the window
    assert detect() == []
    (proposal,) = detect(grace_days=1)
    assert [e.key for e in proposal.evidence] == ["INC1"]
    assert proposal.fingerprint == "major_incidents:service=none"


def test_thresholds_widen_major_and_raise_the_bar(cast):
    resolved("INC1", 20, priority=2, service=cast.email)
    assert detect() == []
    assert len(detect(max_priority=2)) == 1
    assert detect(max_priority=2, min_missing=2) == []


def test_a_service_that_skips_every_review_ranks_above_an_odd_miss(cast):
    for n in range(4):
        resolved(f"INC-N{n}", 20 + n, service=cast.network)
    resolved("INC-E0", 20, service=cast.email)
    for n in range(1, 20):
        resolved(f"INC-E{n}", 20, service=cast.email, post_incident_review="done")
    ranked = sorted(detect(), key=lambda p: -p.score)
    assert [p.service_id for p in ranked] == [cast.network.pk, cast.email.pk]
    assert ranked[0].score == 4.0 and ranked[1].score == pytest.approx(1 / 20)


def test_run_through_the_intake_and_accepted_it_brings_its_baseline(cast, settings):
    settings.TIKTING_SIGNALS_DETECTORS = ["tikting.signals.detectors.major_incidents"]
    for n in range(3):
        resolved(f"INC{n}", 20 + n, service=cast.email)
    (run,) = S.run_detectors(["major_incidents"], WINDOW)
    assert (run.status, run.raised) == ("succeeded", 1)
    candidate = Candidate.objects.get()
    assert candidate.channel == "post_incident_review"
    item = S.accept_candidate(candidate, actor=cast.manager)
    indicator = item.indicators.get()
    assert indicator.baseline_value == 100 and indicator.unit == "%" and indicator.direction == "lower"
    assert item.source_links.count() == 3
    # The reviews are done: the pattern is gone; a new miss later is suppressed (1 < 3 × 1.5).
    Incident.objects.update(post_incident_review="done")
    resolved("INC9", 15, service=cast.email)
    (again,) = S.run_detectors(["major_incidents"], WINDOW)
    assert (again.raised, again.suppressed) == (0, 1)


def test_the_module_keeps_the_detector_contract():
    detector = registry.load("tikting.signals.detectors.major_incidents")
    assert (detector.name, detector.channel) == ("major_incidents", "post_incident_review")
    assert set(detector.thresholds) == {"max_priority", "grace_days", "min_missing"}
