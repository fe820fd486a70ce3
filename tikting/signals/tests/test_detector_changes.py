"""The change detector: hand-built scenarios whose right answers are known, detect() called directly."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from pathlib import Path

import pytest

from tikting.accounts.models import Team
from tikting.changes.models import Change
from tikting.cmdb.models import ConfigurationItem, Service
from tikting.incidents.models import Incident
from tikting.signals.detectors import _quality, changes
from tikting.signals.proposals import Window

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)  # a Monday
WINDOW = Window(dt.datetime(2026, 1, 1, tzinfo=dt.UTC), dt.datetime(2026, 7, 1, tzinfo=dt.UTC))
_numbers = itertools.count(1)


def change(*, ended: dt.datetime, hours: float = 2, **fields) -> Change:
    n = next(_numbers)
    obj = Change.objects.create(
        number=f"CHG{n:05d}",
        external_key=f"CHG{n:05d}",
        source="test",
        opened_at=ended - dt.timedelta(days=3),
        actual_start=ended - dt.timedelta(hours=hours),
        actual_end=ended,
        **{"status": Change.Status.CLOSED, **fields},
    )
    return obj


def incident(at: dt.datetime, **fields) -> Incident:
    n = next(_numbers)
    return Incident.objects.create(
        number=f"INC{n:05d}", external_key=f"INC{n:05d}", source="test", opened_at=at, **fields
    )


def run(**overrides: float):
    return changes.detect(WINDOW, thresholds={**changes.THRESHOLDS, **overrides}, progress=lambda d, t: None)


def by_kind(proposals, kind):
    return [p for p in proposals if p.figures["kind"] == kind]


@pytest.fixture
def estate():
    teams = {
        name: Team.objects.create(name=name) for name in ("Network Operations", "Messaging", "Workplace")
    }
    services = {name: Service.objects.create(name=name) for name in ("Network", "E-mail", "Laptops")}
    cis = {
        name: ConfigurationItem.objects.create(
            name=name, service=services[svc], source="test", external_key=name
        )
        for name, svc in (
            ("SW-01", "Network"),
            ("SW-02", "Network"),
            ("MX-01", "E-mail"),
            ("LT-01", "Laptops"),
        )
    }
    # The incident history starts long before: the detector judges a change against the weeks of
    # incidents before it, and only where the records reach back that far.
    incident(WINDOW.start - dt.timedelta(days=90))
    return teams, services, cis


def routine_changes(teams, services, count: int = 40, failing_every: int = 0, **fields):
    """Many normal changes by the other teams, successful (but every `failing_every`-th): the rest of
    the organisation."""
    for i in range(count):
        team = "Messaging" if i % 2 else "Workplace"
        service = "E-mail" if i % 2 else "Laptops"
        failed = failing_every and i % failing_every == 0
        change(
            ended=T0 - dt.timedelta(days=40) + dt.timedelta(days=i),
            assignment_group=teams[team],
            service=services[service],
            outcome=Change.Outcome.FAILED if failed else Change.Outcome.SUCCESSFUL,
            **fields,
        )


def test_it_finds_the_team_whose_changes_fail(estate):
    teams, services, cis = estate
    routine_changes(teams, services)
    # Noise: one failure elsewhere is not a pattern.
    change(
        ended=T0,
        assignment_group=teams["Messaging"],
        service=services["E-mail"],
        outcome=Change.Outcome.FAILED,
    )
    failing = []
    for i in range(10):
        outcome = [Change.Outcome.FAILED, Change.Outcome.BACKED_OUT, Change.Outcome.SUCCESSFUL][i % 3]
        c = change(
            ended=T0 + dt.timedelta(days=i),
            assignment_group=teams["Network Operations"],
            service=services["Network"],
            change_type=Change.Type.NORMAL,
            outcome=outcome,
        )
        if outcome != Change.Outcome.SUCCESSFUL:
            failing.append(c)

    found = by_kind(run(), "failed")

    # One candidate for the team, not one per service and type inside it.
    assert len(found) == 1
    p = found[0]
    assert p.figures["team"] == "Network Operations" and p.figures["level"] == "team"
    assert p.figures["service"] is None and p.figures["change_type"] is None
    assert p.figures["breakdown"] == [
        {
            "service_id": services["Network"].pk,
            "service": "Network",
            "change_type": "normal",
            "changes": 10,
            "troubled": 7,
        }
    ]
    assert (p.figures["troubled"], p.figures["changes"]) == (7, 10)
    assert {e.key for e in p.evidence} == {c.number for c in failing}
    assert p.figures["baseline"] == pytest.approx(70.0)
    assert p.figures["lower_is_better"] is True and p.figures["unit"] == "%"
    assert p.service_id == services["Network"].pk and p.practice == "change"
    assert "7 of 10" in p.explanation and "binomial" in p.explanation
    assert p.fingerprint == f"changes:failed:team={teams['Network Operations'].pk}:service=*:type=*"


def test_a_change_followed_by_incidents_on_its_ci_is_a_problem_candidate(estate):
    teams, services, cis = estate
    c = change(
        ended=T0, assignment_group=teams["Network Operations"], service=services["Network"], ci=cis["SW-01"]
    )
    c.affected_cis.add(cis["SW-02"])
    followers = [
        incident(T0 + dt.timedelta(minutes=20), ci=cis["SW-01"]),
        incident(T0 + dt.timedelta(hours=3), ci=cis["SW-02"]),  # an affected CI
        incident(
            T0 + dt.timedelta(hours=30), ci=cis["LT-01"], caused_by_ci=cis["SW-01"]
        ),  # named as the cause
    ]
    # Not followers: before the change ended, on another CI, too late.
    incident(T0 - dt.timedelta(minutes=30), ci=cis["SW-01"])
    incident(T0 + dt.timedelta(hours=1), ci=cis["MX-01"])
    incident(T0 + dt.timedelta(hours=80), ci=cis["SW-01"])

    found = by_kind(run(), "single_change")

    assert len(found) == 1
    p = found[0]
    assert p.proposes == "problem"
    assert [e.key for e in p.evidence if e.role == "cause"] == [c.number]
    assert {e.key for e in p.evidence if e.role == "followed_by"} == {i.number for i in followers}
    assert p.figures["followed_by"] == {c.number: sorted(i.number for i in followers)}
    assert p.figures["incidents_by_link"] == {"ci": 3}
    assert p.magnitude == 3.0


def test_a_busy_ci_does_not_make_every_change_look_guilty(estate):
    teams, services, cis = estate
    # Three incidents a day on MX-01, every day, for six weeks: the change changes nothing.
    start = T0 - dt.timedelta(days=35)
    for day in range(42):
        for hour in (9, 13, 16):
            incident(start.replace(hour=hour) + dt.timedelta(days=day), ci=cis["MX-01"])
    change(
        ended=T0.replace(hour=18),
        assignment_group=teams["Messaging"],
        service=services["E-mail"],
        ci=cis["MX-01"],
    )

    assert by_kind(run(), "single_change") == []
    assert by_kind(run(), "incidents") == []


def test_a_change_before_the_incident_history_starts_is_not_judged(estate):
    teams, services, cis = estate
    Incident.objects.all().delete()
    change(ended=T0, ci=cis["SW-01"])
    incident(T0 + dt.timedelta(hours=1), ci=cis["SW-01"])  # the first incident on record

    # Nothing to compare with: an incident after the first change is not yet a pattern.
    assert by_kind(run(), "single_change") == []


def test_a_burst_right_after_a_change_stands_out_on_a_busy_ci(estate):
    teams, services, cis = estate
    start = T0 - dt.timedelta(days=35)
    for day in range(35):
        incident(start.replace(hour=9) + dt.timedelta(days=day), ci=cis["MX-01"])  # one a day
    c = change(ended=T0, assignment_group=teams["Messaging"], service=services["E-mail"], ci=cis["MX-01"])
    burst = [incident(T0 + dt.timedelta(minutes=m), ci=cis["MX-01"]) for m in (10, 25, 40, 70)]

    found = by_kind(run(), "single_change")

    assert [p.figures["change"] for p in found] == [c.number]
    assert {e.key for e in found[0].evidence if e.role == "followed_by"} == {i.number for i in burst}


def test_recorded_causes_count_unless_the_incident_came_first(estate):
    teams, services, cis = estate
    c = change(ended=T0, service=services["Network"])
    fix_for = incident(T0 - dt.timedelta(days=2), caused_by_change=c)  # the change was raised to fix it
    caused = incident(T0 + dt.timedelta(days=5), caused_by_change=c)  # outside the follow window: recorded

    found = by_kind(run(), "single_change")
    assert {e.key for e in found[0].evidence if e.role == "followed_by"} == {caused.number}
    assert fix_for.number not in json.dumps(found[0].figures)

    # The quality bench's setting: recorded links are the answer key, not evidence.
    assert by_kind(run(use_recorded_links=0), "single_change") == []


def test_a_change_without_ci_is_matched_on_its_service(estate):
    teams, services, cis = estate
    c = change(ended=T0, service=services["Laptops"])
    follower = incident(T0 + dt.timedelta(hours=1), service=services["Laptops"])
    incident(T0 + dt.timedelta(hours=1), service=services["E-mail"])

    found = by_kind(run(), "single_change")
    assert found[0].figures["followed_by"] == {c.number: [follower.number]}
    assert found[0].figures["incidents_by_link"] == {"service": 1}
    assert by_kind(run(service_match=0), "single_change") == []


def test_a_group_whose_changes_are_followed_by_incidents(estate):
    teams, services, cis = estate
    routine_changes(teams, services)
    for i in range(4):
        end = T0 + dt.timedelta(days=7 * i)
        change(
            ended=end,
            assignment_group=teams["Network Operations"],
            service=services["Network"],
            ci=cis["SW-01"],
        )
        incident(end + dt.timedelta(hours=2), ci=cis["SW-01"])
    change(
        ended=T0 + dt.timedelta(days=40),
        assignment_group=teams["Network Operations"],
        service=services["Network"],
    )

    found = by_kind(run(), "incidents")

    assert len(found) == 1
    p = found[0]
    assert (p.figures["troubled"], p.figures["changes"], p.figures["incidents"]) == (4, 5, 4)
    assert p.figures["indicator"].startswith("Changes by Network Operations: share that are followed")
    assert len([e for e in p.evidence if e.role == "cause"]) == 4
    assert len([e for e in p.evidence if e.role == "followed_by"]) == 4


def test_a_cell_that_stands_out_inside_an_ordinary_team_is_proposed_alone(estate):
    teams, services, cis = estate
    routine_changes(teams, services, count=70, failing_every=7)  # 10 of 70 fail
    for i in range(30):  # Network Operations: fine on Network …
        change(
            ended=T0 + dt.timedelta(hours=i),
            assignment_group=teams["Network Operations"],
            service=services["Network"],
            outcome=Change.Outcome.SUCCESSFUL,
        )
    for i in range(5):  # … but its emergency changes on Laptops fail
        change(
            ended=T0 + dt.timedelta(days=i),
            assignment_group=teams["Network Operations"],
            service=services["Laptops"],
            change_type=Change.Type.EMERGENCY,
            outcome=Change.Outcome.FAILED,
        )

    found = by_kind(run(), "failed")

    assert [p.figures["level"] for p in found] == ["team+service"]
    assert found[0].figures["service"] == "Laptops" and found[0].service_id == services["Laptops"].pk


def test_emergency_and_unplanned_changes_by_one_team(estate):
    teams, services, cis = estate
    routine_changes(teams, services)
    for i in range(6):
        change(
            ended=T0 + dt.timedelta(days=i),
            assignment_group=teams["Network Operations"],
            service=services["Network"],
            change_type=Change.Type.EMERGENCY if i % 2 else Change.Type.NORMAL,
            unplanned=i == 2,
            unauthorized=i == 4,
        )

    found = by_kind(run(), "unplanned")

    assert len(found) == 1
    assert found[0].figures["change_type"] is None  # the type is the trouble: grouped without it
    assert found[0].figures["troubled"] == 5


def test_reviews_that_report_the_outcome_was_not_delivered(estate):
    teams, services, cis = estate
    routine_changes(teams, services, pir_done=True, pir_delivered_outcome=True)
    for i in range(5):
        change(
            ended=T0 + dt.timedelta(days=i),
            assignment_group=teams["Network Operations"],
            service=services["Network"],
            pir_done=True,
            pir_delivered_outcome=i == 0,
        )
    # Not reviewed: not part of the share.
    change(ended=T0, assignment_group=teams["Network Operations"], service=services["Network"])

    found = by_kind(run(), "pir")

    assert len(found) == 1
    assert (found[0].figures["troubled"], found[0].figures["changes"]) == (4, 5)


def test_cancelled_changes_and_changes_outside_the_window_are_left_out(estate):
    teams, services, cis = estate
    for i in range(5):
        change(
            ended=T0 + dt.timedelta(days=i),
            service=services["Network"],
            outcome=Change.Outcome.FAILED,
            assignment_group=teams["Network Operations"],
            status=Change.Status.CANCELLED,
        )
        change(
            ended=WINDOW.end + dt.timedelta(days=i),
            service=services["Network"],
            outcome=Change.Outcome.FAILED,
            assignment_group=teams["Network Operations"],
        )
    routine_changes(teams, services)

    assert by_kind(run(), "failed") == []


def test_the_same_records_give_the_same_proposals(estate):
    teams, services, cis = estate
    routine_changes(teams, services)
    for i in range(6):
        c = change(
            ended=T0 + dt.timedelta(days=i),
            assignment_group=teams["Network Operations"],
            service=services["Network"],
            ci=cis["SW-01"],
            outcome=Change.Outcome.FAILED,
        )
        assert c.actual_end is not None
        incident(c.actual_end + dt.timedelta(hours=1), ci=cis["SW-01"])

    first, second = run(), run()

    assert [(p.fingerprint, p.score, p.figures, p.evidence) for p in first] == [
        (p.fingerprint, p.score, p.figures, p.evidence) for p in second
    ]
    assert len({p.fingerprint for p in first}) == len(first)
    for p in first:
        json.dumps(p.figures)  # JSON-safe
        assert 1 <= p.impact <= 5 and 1 <= p.effort <= 5 and p.rating_reason
        assert p.period_start == dt.date(2026, 1, 1) and p.period_end == dt.date(2026, 6, 30)


# --- Real data: BPI Challenge 2014 ----------------------------------------------------------------

BPIC2014 = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "bpic2014"


@pytest.mark.skipif(not (BPIC2014 / "detail_change.zip").exists(), reason="../shared/data/bpic2014 is absent")
def test_it_beats_the_naive_baseline_on_the_causal_links_of_bpic2014():
    """The causal links (incident opened after the change ended) are the answer key; the detector
    runs without them. It must find more of them than the 48-hour baseline, at a better precision,
    at the level of its proposals and of every change it links (bench/signals_changes_quality.py)."""
    _quality.import_changes_and_incidents(BPIC2014)

    result = _quality.compare()

    assert (result.baseline.truth_links, result.baseline.truth_changes) == (199, 48)
    for ours in (result.proposals, result.inferred):
        assert ours.link_recall > result.baseline.link_recall
        assert ours.link_precision > result.baseline.link_precision
        assert ours.change_recall > result.baseline.change_recall
        assert ours.change_precision > result.baseline.change_precision
    assert result.proposals.candidates < result.baseline.candidates
