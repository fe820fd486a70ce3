"""The recurring-incident detector: hand-built scenarios whose right answers are known, detect()
called directly (no intake needed)."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import pytest

from tikting.cmdb.models import ConfigurationItem, Service
from tikting.incidents.models import Incident
from tikting.problems.models import Problem
from tikting.signals.detectors import recurring_incidents as R
from tikting.signals.proposals import Window

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)  # a Monday
WINDOW = Window(dt.datetime(2026, 1, 1, tzinfo=dt.UTC), dt.datetime(2026, 7, 1, tzinfo=dt.UTC))
_numbers = itertools.count(1)

ALIKE = [
    "Outlook crashes when opening attachments",
    "outlook crashs when openning attachment",  # typos
    "Attachments: opening them crashes Outlook",  # another word order
    "OUTLOOK CRASHES OPENING ATTACHMENTS!!",
    "Outlook crash - opening attachments",
]
UNRELATED = [
    "Printer on floor 3 out of toner",
    "VPN connection drops every hour",
    "Password expired, cannot log in",
    "New starter needs a laptop",
    "Teams meeting has no sound",
    "Shared drive is full",
    "Excel macro fails with runtime error",
    "Monitor flickers after docking",
    "Calendar invites arrive twice",
    "Mobile phone does not sync mail",
]


def incident(at: dt.datetime, text: str = "", **fields) -> Incident:
    n = next(_numbers)
    return Incident.objects.create(
        number=f"INC{n:05d}",
        external_key=f"INC{n:05d}",
        source="test",
        opened_at=at,
        short_description=text,
        **fields,
    )


def run(window: Window = WINDOW, **overrides: float):
    return R.detect(window, thresholds={**R.THRESHOLDS, **overrides}, progress=lambda done, total: None)


def keys(proposal) -> set[str]:
    return {e.key for e in proposal.evidence if e.kind == "incident"}


@pytest.fixture
def mail():
    service = Service.objects.create(name="E-mail")
    return service, ConfigurationItem.objects.create(name="MX-01", service=service)


def test_it_groups_alike_texts_with_typos_and_another_word_order(mail):
    service, _ci = mail
    alike = [
        incident(T0 + dt.timedelta(days=9 * k, hours=k), text, service=service, category="Software")
        for k, text in enumerate(ALIKE)
    ]
    for k, text in enumerate(UNRELATED):
        incident(T0 + dt.timedelta(days=3 * k), text, service=service, category="Software")

    [proposal] = run()

    assert keys(proposal) == {i.number for i in alike}
    assert proposal.proposes == "problem"
    assert proposal.magnitude == 5
    assert proposal.service_id == service.pk
    assert proposal.figures["rule"] == "text"
    assert proposal.figures["wordings"] == 4  # the first and the fourth differ in case and punctuation only
    # the explanation says how many, when, where, the shared text, the trend and the rule
    text = proposal.explanation
    assert "5 incidents (service E-mail, category Software)" in text
    assert "2 Mar 2026, 09:00 and 7 Apr 2026, 13:00" in text  # dates as the UI writes them
    assert "“Outlook crashes when opening attachments”" in text  # the first wording of the most frequent
    assert "attachments, crashes, opening, outlook" in text  # the words most of them share
    assert "Trend (falling): per week from 2 Mar 2026: 1, 1, 1, 1, 0, 1; none in the 12 week(s) since" in text
    assert "at least 50% alike" in text
    assert "None of them is linked to a problem" in text
    assert proposal.figures["weekly"]["2026-03-02"] == 1
    assert proposal.figures["weekly"]["2026-06-29"] == 0  # to the window's last week


def test_typos_and_word_order_keep_texts_alike_and_other_texts_apart():
    canon = [R.normalise(t) for t in ALIKE]
    assert canon[0] == canon[3]  # case, punctuation and word order do not count
    assert all(R.similarity(canon[0], c) >= 0.5 for c in canon)
    for text in UNRELATED:
        assert R.similarity(canon[0], R.normalise(text)) < 0.2


def test_unrelated_texts_on_one_service_are_not_grouped(mail):
    service, ci = mail
    for k, text in enumerate(UNRELATED * 2):
        incident(T0 + dt.timedelta(hours=5 * k), f"{text} ({k})", service=service, ci=ci, category="Software")

    assert run() == []


def test_the_same_text_on_other_services_is_not_one_group(mail):
    service, _ci = mail
    other = Service.objects.create(name="Intranet")
    for k, text in enumerate(ALIKE[:2]):
        incident(T0 + dt.timedelta(days=k), text, service=service, category="Software")
        incident(T0 + dt.timedelta(days=k), text, service=other, category="Software")

    assert run() == []  # two on each service: fewer than min_group_size anywhere


def test_a_big_generic_category_does_not_become_one_giant_group(mail):
    service, _ci = mail
    # 300 incidents of one category without text or CI, one every 7 hours: the category's
    # everyday volume, plus other traffic
    for k in range(300):
        incident(T0 + dt.timedelta(hours=7 * k), service=service, category="Software")
        incident(T0 + dt.timedelta(hours=7 * k + 3), service=service, category="Hardware")
    # ... and a real burst inside it: eight mail incidents within the hour
    burst = [
        incident(
            T0 + dt.timedelta(days=20, minutes=8 * k),
            service=service,
            category="Software",
            subcategory="Mail",
        )
        for k in range(8)
    ]

    [proposal] = run()

    assert keys(proposal) == {i.number for i in burst}
    assert proposal.figures["rule"] == "burst"
    assert proposal.figures["subcategory"] == "Mail"
    # expected from the subcategory's share of the traffic while the burst came
    assert "8 incidents of any kind were opened over that time" in proposal.explanation
    assert "about 0.11 expected, 8 came" in proposal.explanation
    assert "Chance explains such a run with P = " in proposal.explanation


def test_a_chain_of_partly_alike_texts_is_split_when_too_big(mail):
    service, _ci = mail
    # A and B alike, B and C alike, A and C not: one chain at 0.5, two groups at 0.6
    texts = {
        "a": "printer not printing",
        "b": "printer not working",
        "c": "printer stopped working",
    }
    assert R.similarity(R.normalise(texts["a"]), R.normalise(texts["b"])) >= 0.6
    assert 0.5 <= R.similarity(R.normalise(texts["b"]), R.normalise(texts["c"])) < 0.6
    made = {
        name: [incident(T0 + dt.timedelta(days=k), text, service=service) for k in range(4)]
        for name, text in texts.items()
    }

    [whole] = run()
    assert whole.magnitude == 12

    split = run(max_group_size=10)
    assert {frozenset(keys(p)) for p in split} == {
        frozenset(i.number for i in made["a"] + made["b"]),
        frozenset(i.number for i in made["c"]),
    }


def test_incidents_without_text_on_one_ci_are_grouped_on_their_fields(mail):
    service, ci = mail
    on_ci = [
        incident(
            T0 + dt.timedelta(days=10 * k), service=service, ci=ci, category="Hardware", subcategory="Disk"
        )
        for k in range(4)
    ]
    incident(T0, service=service, ci=ci, category="Hardware", subcategory="Memory")  # another class

    [proposal] = run()

    assert keys(proposal) == {i.number for i in on_ci}
    assert proposal.figures["rule"] == "ci"
    assert proposal.figures["ci"] == "MX-01"
    assert "structured fields alone" in proposal.explanation


def test_a_busy_ci_counts_only_in_bursts(mail):
    service, ci = mail
    for k in range(12):
        incident(T0 + dt.timedelta(days=7 * k), service=service, ci=ci, category="Hardware")
    for k in range(200):
        incident(T0 + dt.timedelta(hours=2 * k + 1), service=service, category="Other")
    burst = [
        incident(T0 + dt.timedelta(days=30, minutes=5 * k), service=service, ci=ci, category="Hardware")
        for k in range(4)
    ]

    assert {p.figures["rule"] for p in run()} == {"ci"}  # 16 on the CI: one group
    [proposal] = run(max_group_size=10)  # too busy: only its burst
    assert keys(proposal) == {i.number for i in burst}
    assert proposal.figures["rule"] == "burst"
    assert proposal.figures["ci"] == "MX-01"


def test_fingerprints_are_stable_across_runs_and_row_ids(mail):
    service, ci = mail

    def build(order):
        for k in order:
            incident(T0 + dt.timedelta(days=9 * k), ALIKE[k], service=service, category="Software")
            incident(T0 + dt.timedelta(days=k), service=service, ci=ci, category="Hardware")
            incident(T0 + dt.timedelta(minutes=k), category="Network")
        for k in range(30):
            incident(T0 + dt.timedelta(hours=13 * k), category="Other")

    build(range(5))
    first = run()
    assert {p.figures["rule"] for p in first} == {"text", "ci", "burst"}
    assert [p.fingerprint for p in run()] == [p.fingerprint for p in first]  # same records, same answer

    # the same incidents again, created in another order: other row ids, same fingerprints
    Incident.objects.all().delete()
    build(reversed(range(5)))
    again = run()
    assert sorted(p.fingerprint for p in again) == sorted(p.fingerprint for p in first)
    assert {p.fingerprint: p.magnitude for p in again} == {p.fingerprint: p.magnitude for p in first}

    # a group that grows keeps its fingerprint: the next month's run merges into the same candidate
    incident(
        T0 + dt.timedelta(days=60),
        "outlook crashes opening attachments",
        service=service,
        category="Software",
    )
    grown = {p.fingerprint: p.magnitude for p in run()}
    text = next(p for p in first if p.figures["rule"] == "text")
    assert grown[text.fingerprint] == 6


def test_a_group_with_a_problem_proposes_an_improvement_only_if_it_persists(mail):
    service, _ci = mail
    problem = Problem.objects.create(
        number="PRB0001", title="Outlook and attachments", opened_at=T0 + dt.timedelta(days=10)
    )
    before = [
        incident(
            T0 + dt.timedelta(days=k),
            text,
            service=service,
            category="Software",
            problem=problem if k == 0 else None,
        )
        for k, text in enumerate(ALIKE[:4])
    ]
    # opened before the problem, plus one in the grace day: problem management has it in hand
    incident(T0 + dt.timedelta(days=10, hours=12), ALIKE[4], service=service, category="Software")
    assert run() == []

    after = [
        incident(T0 + dt.timedelta(days=20 + 7 * k), ALIKE[k], service=service, category="Software")
        for k in range(3)
    ]
    [proposal] = run()
    assert proposal.proposes == "improvement"
    assert proposal.title.startswith("Incidents keep recurring despite problem PRB0001")
    assert proposal.figures["after_problem"] == 3
    assert "3 were opened more than 1 day(s) after it" in proposal.explanation
    assert {i.number for i in before + after} <= keys(proposal)
    assert [(e.kind, e.key, e.role) for e in proposal.evidence if e.kind == "problem"] == [
        ("problem", "PRB0001", "problem")
    ]


def test_a_group_without_a_problem_proposes_a_problem_record(mail):
    service, _ci = mail
    for k, text in enumerate(ALIKE[:3]):
        incident(
            T0 + dt.timedelta(days=k), text, service=service, category="Software", priority=1 if k == 0 else 3
        )
    [proposal] = run()
    assert proposal.proposes == "problem"
    assert proposal.practice == "problem"
    assert proposal.impact == 2  # 3 incidents rate 1, a critical one among them one more
    assert "1 of them critical or high priority" in proposal.rating_reason
    assert proposal.figures["baseline"] == pytest.approx(3 / (181 / 7))  # incidents a week over the window


def test_cancelled_incidents_and_incidents_outside_the_window_are_left_out(mail):
    service, _ci = mail
    incident(T0, ALIKE[0], service=service, category="Software")
    incident(T0, ALIKE[1], service=service, category="Software", status=Incident.Status.CANCELLED)
    incident(WINDOW.end, ALIKE[2], service=service, category="Software")
    incident(WINDOW.start - dt.timedelta(seconds=1), ALIKE[3], service=service, category="Software")
    incident(T0, ALIKE[4], service=service, category="Software")
    assert run() == []
    assert run(min_group_size=2)[0].magnitude == 2


def test_the_score_weights_recent_incidents_more(mail):
    service, _ci = mail
    window = Window(dt.datetime(2026, 1, 1, tzinfo=dt.UTC), dt.datetime(2026, 7, 1, tzinfo=dt.UTC))
    for k, text in enumerate(ALIKE[:3]):
        incident(window.end - dt.timedelta(days=30, hours=k), text, service=service, category="Software")
    for k, text in enumerate(ALIKE[:3]):
        incident(window.end - dt.timedelta(days=120, hours=k), text, service=service, category="Hardware")
    recent, old = sorted(run(window), key=lambda p: -p.score)
    assert recent.figures["category"] == "Software"
    assert recent.score == pytest.approx(1.5, rel=0.01)  # three incidents a half-life old
    assert old.score == pytest.approx(3 / 16, rel=0.01)  # four half-lives old


# --- On real data: the problems of the ServiceNow event log --------------------------------------

SERVICENOW = (
    Path(__file__).resolve().parents[3].parent
    / "shared"
    / "data"
    / "uci_incident_event_log"
    / "incident_event_log.zip"
)


@pytest.mark.skipif(not SERVICENOW.exists(), reason="../shared/data/uci_incident_event_log is absent")
def test_it_beats_the_naive_baseline_on_the_known_problems_of_the_servicenow_log():
    from tikting.signals.detectors import _recurring_quality as Q

    Q.import_servicenow(SERVICENOW)
    result = Q.compare()

    base, ours = result.baseline, result.detector
    assert result.incidents == 24918
    assert ours.problems == 35  # the problems with two or more linked incidents
    # more known problems held together, in groups not much larger than the problem ...
    assert ours.recovered > base.recovered
    assert ours.pair_recall > base.pair_recall
    # ... while grouping far fewer of all incidents, and hardly ever two problems in one group
    assert ours.coverage < base.coverage / 2
    assert ours.largest < base.largest / 5  # no giant group of one busy classification
    assert ours.linked_precision > base.linked_precision


def test_a_classification_with_many_runs_needs_a_stronger_one_to_burst(mail):
    service, _ci = mail
    Incident.objects.bulk_create(
        Incident(
            number=f"BG{k:05d}",
            source="test",
            opened_at=T0 + dt.timedelta(minutes=10 * k, seconds=30),
            category="Other",
        )
        for k in range(2880)  # one every ten minutes for 20 days
    )
    for day in range(10):  # ten runs of three printer incidents within 20 minutes, a day apart
        for k in range(3):
            incident(T0 + dt.timedelta(days=2 * day, minutes=10 * k), category="Printer")

    # each run alone: P about 1e-5 (surprise 5.0); ten runs tested: about 1e-4 (4.0)
    alone = run(burst_surprise=4.5, burst_correction=0)
    assert len(alone) == 10
    assert all(p.figures["burst_runs_tested"] == 1 for p in alone)
    assert run(burst_surprise=4.5) == []
    [first, *_rest] = run(burst_surprise=3.5)
    assert first.figures["burst_runs_tested"] == 10
    assert "its classification had 10 runs of 3 or more in the window" in first.explanation


def test_different_wordings_linked_to_one_problem_are_one_group(mail):
    service, ci = mail
    problem = Problem.objects.create(
        number="PRB0007", title="Relay queue", opened_at=T0 - dt.timedelta(days=30)
    )
    relay = [
        incident(
            T0 + dt.timedelta(days=k), "Mail relay queue stuck", service=service, ci=ci, category="Software"
        )
        for k in range(3)
    ]
    delayed = [
        incident(
            T0 + dt.timedelta(days=k),
            "Outbound e-mail delayed for hours",
            service=service,
            ci=ci,
            category="Software",
        )
        for k in range(3)
    ]
    assert len(run()) == 2  # unlike texts: two groups

    Incident.objects.filter(pk__in=[i.pk for i in relay + delayed[:2]]).update(problem=problem)
    [proposal] = run()  # most of each wording's incidents are linked to the problem: one pattern
    assert keys(proposal) == {i.number for i in relay + delayed}
    assert proposal.proposes == "improvement"
    assert proposal.figures["wordings"] == 2


def test_a_sharp_burst_does_not_swallow_its_categorys_ordinary_day(mail):
    service, _ci = mail
    for k in range(300):  # the category's ordinary traffic: one every 15 minutes, for three days
        incident(
            T0 + dt.timedelta(minutes=15 * k + 7),
            service=service,
            category="Network",
            subcategory=f"LAN {k % 7}",
        )
    for k in range(300):
        incident(T0 + dt.timedelta(minutes=15 * k + 3), service=service, category="Software")
    outage = [
        incident(
            T0 + dt.timedelta(days=1, minutes=3 * k),
            service=service,
            category="Network",
            subcategory="Outage",
        )
        for k in range(10)
    ]

    [proposal] = run()
    assert keys(proposal) == {i.number for i in outage}  # not the hours of LAN incidents around it


def test_one_cause_classified_under_several_subcategories_is_one_burst(mail):
    service, _ci = mail
    for k in range(300):
        incident(T0 + dt.timedelta(minutes=15 * k + 7), service=service, category="Other")
    for k in range(40):  # mail incidents are usually rare
        incident(
            T0 + dt.timedelta(hours=2 * k + 1), service=service, category="Mail", subcategory=f"Misc {k % 4}"
        )
    burst = [
        incident(T0 + dt.timedelta(days=1, minutes=4 * k), service=service, category="Mail", subcategory=sub)
        for k, sub in enumerate(["Outlook", "Webmail", "Mobile"] * 5)
    ]

    [proposal] = run()
    assert keys(proposal) == {i.number for i in burst}
    assert proposal.figures["category"] == "Mail"
    assert proposal.figures["subcategory"] == ""  # several


def test_window_days_reads_only_the_last_days_of_the_runs_window(mail):
    service, _ci = mail
    early = [
        incident(WINDOW.end - dt.timedelta(days=60 + k), text, service=service, category="Software")
        for k, text in enumerate(ALIKE[:3])
    ]
    late = [
        incident(WINDOW.end - dt.timedelta(days=10 + k), text, service=service, category="Software")
        for k, text in enumerate(ALIKE[:3])
    ]
    [whole] = run()
    assert keys(whole) == {i.number for i in early + late}
    [month] = run(window_days=30)
    assert keys(month) == {i.number for i in late}
    assert month.period_start == dt.date(2026, 6, 1)  # the window it read, not the run's
