"""The intake rules: fingerprints, merging into open candidates, suppression and regrowth."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from tikting.core.models import AuditEntry
from tikting.improvement import services as IS
from tikting.signals import services as S
from tikting.signals.models import Candidate
from tikting.signals.tests.fixtures import NAME, incident, proposal

pytestmark = pytest.mark.django_db


def ingest(*proposals):
    return S.ingest(list(proposals), detector=NAME, channel="sla_breach").as_dict()


def test_a_new_fingerprint_raises_a_candidate_with_its_evidence():
    a, b = incident("INC1"), incident("INC2")
    assert ingest(proposal(incidents=[a, b])) == {"raised": 1, "merged": 0, "suppressed": 0}
    candidate = Candidate.objects.get()
    assert (candidate.detector, candidate.channel, candidate.status) == (NAME, "sla_breach", "new")
    assert candidate.magnitude == 4 and candidate.score == 6
    assert [(e.kind, e.key, e.role, e.object_id) for e in candidate.evidence.all()] == [
        ("incident", "INC1", "breach", str(a.pk)),
        ("incident", "INC2", "breach", str(b.pk)),
    ]
    assert AuditEntry.objects.filter(object_id=str(candidate.pk), action="create").exists()


def test_the_same_fingerprint_updates_the_open_candidate_and_merges_evidence():
    a, b, c = incident("INC1"), incident("INC2"), incident("INC3")
    ingest(proposal(magnitude=2, incidents=[a, b]))
    assert ingest(proposal(magnitude=3, incidents=[b, c])) == {"raised": 0, "merged": 1, "suppressed": 0}
    candidate = Candidate.objects.get()
    assert candidate.magnitude == 3 and candidate.title == "Breaches pile up (3)"
    assert sorted(e.key for e in candidate.evidence.all()) == ["INC1", "INC2", "INC3"]
    assert candidate.version == 2


def test_a_deferred_candidate_is_updated_too(cast):
    ingest(proposal(magnitude=2))
    S.defer_candidate(Candidate.objects.get(), actor=cast.manager, until=_tomorrow())
    assert ingest(proposal(magnitude=9)) == {"raised": 0, "merged": 1, "suppressed": 0}
    candidate = Candidate.objects.get()
    assert (candidate.status, candidate.magnitude) == ("deferred", 9)


@pytest.mark.parametrize("decision", ["dismiss", "merge", "accept"])
def test_a_decided_pattern_is_suppressed_until_it_grows_by_half(cast, decision):
    ingest(proposal(magnitude=4))
    first = Candidate.objects.get()
    if decision == "dismiss":
        S.dismiss_candidate(first, actor=cast.manager, reason="known, accepted risk")
    elif decision == "merge":
        S.merge_candidate(first, actor=cast.manager, item=_item(cast))
    else:
        S.accept_candidate(first, actor=cast.manager)
    assert ingest(proposal(magnitude=4)) == {"raised": 0, "merged": 0, "suppressed": 1}
    assert ingest(proposal(magnitude=5.9)) == {"raised": 0, "merged": 0, "suppressed": 1}  # +47.5 %
    first.refresh_from_db()
    assert first.last_seen_magnitude == 5.9  # still watched, its latest size shown
    assert first.comes_back_above() == 6.0
    assert ingest(proposal(magnitude=6)) == {"raised": 1, "merged": 0, "suppressed": 0}  # +50 %
    again = Candidate.objects.exclude(pk=first.pk).get()
    assert again.previous == first and again.status == "new"
    assert again.explanation.startswith(f"Raised again: {first.ref} was")
    assert "grown to 6" in again.explanation


def test_the_regrowth_threshold_is_a_setting(cast, settings):
    settings.TIKTING_SIGNALS_REGROWTH = 1.0
    ingest(proposal(magnitude=4))
    S.dismiss_candidate(Candidate.objects.get(), actor=cast.manager, reason="noise")
    assert ingest(proposal(magnitude=7.9))["suppressed"] == 1
    assert ingest(proposal(magnitude=8))["raised"] == 1


def test_regrowth_counts_from_the_magnitude_at_the_decision(cast):
    ingest(proposal(magnitude=4))
    ingest(proposal(magnitude=10))  # grew while it waited: the decision is taken at 10
    S.dismiss_candidate(Candidate.objects.get(), actor=cast.manager, reason="noise")
    assert Candidate.objects.get().magnitude_at_triage == 10
    assert ingest(proposal(magnitude=14))["suppressed"] == 1
    assert ingest(proposal(magnitude=15))["raised"] == 1


def test_distinct_fingerprints_are_distinct_candidates():
    counts = ingest(
        proposal("scripted:service=1"), proposal("scripted:service=2"), proposal("scripted:service=1")
    )
    assert counts == {"raised": 2, "merged": 1, "suppressed": 0}  # the repeat within a run merged
    assert Candidate.objects.count() == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"detector": "other"}, "detector is 'other'"),
        ({"fingerprint": ""}, "fingerprint"),
        ({"practice": "cooking"}, "practice 'cooking'"),
        ({"impact": 9}, "impact and effort"),
        ({"proposes": "wish"}, "proposes 'wish'"),
    ],
)
def test_a_malformed_proposal_fails_the_ingest_naming_the_problem(change, message):
    bad = proposal(**{k: v for k, v in change.items() if k != "detector"})
    if "detector" in change:
        bad.detector = change["detector"]
    with pytest.raises(ValueError, match=message):
        ingest(proposal("scripted:ok"), bad)
    assert not Candidate.objects.exists()  # nothing half-ingested


def _tomorrow() -> dt.date:
    return timezone.localdate() + dt.timedelta(days=1)


def _item(cast):
    return IS.create_item(actor=cast.manager, title="Fix the rota", practice="sla")
