"""The CSAT detector: low scores against a group's own history and the organisation, and themes."""

from __future__ import annotations

import datetime as dt
import itertools
import json

import pytest

from tikting.accounts.models import Team
from tikting.cmdb.models import Service
from tikting.incidents.models import Incident
from tikting.signals.detectors import csat
from tikting.signals.proposals import Window
from tikting.surveys.models import SurveyResponse

pytestmark = pytest.mark.django_db

WINDOW = Window(dt.datetime(2026, 7, 1, tzinfo=dt.UTC), dt.datetime(2026, 10, 1, tzinfo=dt.UTC))
BEFORE = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)  # inside the 180 days of history
DURING = dt.datetime(2026, 8, 1, tzinfo=dt.UTC)
_numbers = itertools.count(1)


def respond(scores, *, at, comment="", **fields) -> list[SurveyResponse]:
    out = []
    for i, score in enumerate(scores):
        n = next(_numbers)
        out.append(
            SurveyResponse.objects.create(
                score=score,
                comment=comment(score, i) if callable(comment) else comment,
                responded_at=at + dt.timedelta(hours=n),
                source="test",
                external_key=f"CSAT{n:05d}",
                **fields,
            )
        )
    return out


def run(**overrides: float):
    return csat.detect(WINDOW, thresholds={**csat.THRESHOLDS, **overrides}, progress=lambda d, t: None)


def kinds(proposals):
    return {
        (p.figures["kind"], p.figures.get(p.figures["kind"]))
        for p in proposals
        if p.figures["kind"] != "theme"
    }


@pytest.fixture
def services():
    mail = Service.objects.create(name="Mail")
    vpn = Service.objects.create(name="VPN")
    # Mail: the organisation's steady 4-ish, before and during.
    for at in (BEFORE, DURING):
        respond([5, 4, 4, 5, 4, 3, 4, 5, 4, 4] * 4, at=at, service=mail)
    return mail, vpn


def test_a_service_whose_scores_fell_against_its_own_history(services):
    mail, vpn = services
    respond([5, 4, 4, 5, 4] * 6, at=BEFORE, service=vpn)
    low = respond([2, 1, 3, 2, 2, 3, 1, 2, 4, 2] * 2, at=DURING, service=vpn)

    found = run()

    assert kinds(found) == {("service", "VPN")}  # Mail is as it always was
    p = next(p for p in found if p.figures["kind"] == "service")
    assert p.figures["history_mean"] == pytest.approx(4.4) and p.figures["mean"] == pytest.approx(2.2)
    assert p.figures["drop_p_value"] < 0.01
    assert {e.pk for e in p.evidence} == {r.pk for r in low if r.score <= 2}
    assert p.magnitude == 14.0 and p.service_id == vpn.pk
    assert p.figures["baseline"] == pytest.approx(2.2) and p.figures["lower_is_better"] is False
    assert "fell from 4.40" in p.explanation
    json.dumps(p.figures)


def test_a_team_below_the_rest_of_the_organisation(services):
    mail, vpn = services
    team = Team.objects.create(name="Network Operations")
    incidents = [
        Incident.objects.create(number=f"INC{i}", opened_at=DURING, assignment_group=team, category="network")
        for i in range(12)
    ]
    for i, inc in enumerate(incidents):
        respond([2 if i % 3 else 3], at=DURING, incident=inc)

    found = run()

    assert ("team", "Network Operations") in kinds(found)
    assert ("category", "network") in kinds(found)
    p = next(p for p in found if p.figures["kind"] == "team")
    assert p.figures["history_mean"] is None and p.figures["gap_p_value"] < 0.01
    assert "below the rest of the organisation" in p.explanation


def test_a_group_recovering_from_worse_is_not_raised_on_the_gap(services):
    mail, vpn = services
    respond([1, 2, 1, 2, 1] * 4, at=BEFORE, service=vpn)
    respond([3, 2, 3, 3, 2] * 4, at=DURING, service=vpn)

    assert kinds(run()) == set()


def test_small_groups_are_not_judged(services):
    mail, vpn = services
    respond([5] * 20, at=BEFORE, service=vpn)
    respond([1] * 9, at=DURING, service=vpn)

    assert kinds(run()) == set()


def test_themes_are_word_pairs_frequent_among_unhappy_comments(services):
    mail, vpn = services
    unhappy = ["The knowledge article did not help.", "Article did not help at all", "It did not help!"]
    carriers = respond([1, 2, 1, 2], at=DURING, service=vpn, comment=lambda s, i: unhappy[i % 3])
    respond([2, 1], at=DURING, service=vpn, comment="Slow to resolve.")  # twice only: noise
    respond([5] * 6, at=DURING, service=mail, comment="Quick and friendly, thanks.")
    respond([4], at=DURING, service=mail, comment="Help was quick")

    themes = [p for p in run() if p.figures["kind"] == "theme"]

    # "article not" is in three of the same comments: folded into the theme; "slow resolve" is in
    # two comments only.
    assert [p.figures["theme"] for p in themes] == ["not help"]
    p = themes[0]
    assert p.figures["folded"] == ["article not"] and p.figures["phrase"] == "article not help"
    assert "“article not help”" in p.title
    assert {e.pk for e in p.evidence} == {r.pk for r in carriers}
    assert p.figures["low_comments_with"] == 4 and p.figures["high_comments_with"] == 0
    assert p.service_id == vpn.pk
    assert p.fingerprint == "csat:theme=not help"


def test_bigrams_keep_negations_and_drop_common_words():
    assert csat.bigrams("The knowledge article did NOT help.") == {
        "knowledge article",
        "article not",
        "not help",
    }
    assert csat.bigrams("ok") == set()


def test_the_same_responses_give_the_same_proposals(services):
    mail, vpn = services
    respond([5, 4, 4, 5, 4] * 6, at=BEFORE, service=vpn)
    respond([2, 1, 3, 2, 2] * 4, at=DURING, service=vpn, comment="Third time I call about this")

    first, second = run(), run()

    assert [(p.fingerprint, p.score, p.figures) for p in first] == [
        (p.fingerprint, p.score, p.figures) for p in second
    ]
