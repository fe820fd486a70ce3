"""Triage: accept into the register, merge into an item, defer, dismiss; one by one and in bulk."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from tikting.core.exceptions import ConflictError, PermissionDeniedError
from tikting.core.models import StatusChange
from tikting.improvement import services as IS
from tikting.improvement.models import Comment, Item, SourceLink
from tikting.signals import services as S
from tikting.signals.models import Candidate
from tikting.signals.tasks import housekeeping
from tikting.signals.tests.fixtures import NAME, incident, proposal

pytestmark = pytest.mark.django_db


def raise_one(fingerprint: str = "scripted:service=1", **extra) -> Candidate:
    S.ingest([proposal(fingerprint, **extra)], detector=NAME, channel="sla_breach")
    return Candidate.objects.get(fingerprint=fingerprint)


def tomorrow() -> dt.date:
    return timezone.localdate() + dt.timedelta(days=1)


def test_accept_creates_a_prefilled_item_with_links_and_a_baseline(cast):
    a, b = incident("INC1"), incident("INC2")
    candidate = raise_one(
        incidents=[a, b],
        service_id=cast.email.pk,
        figures={"baseline": 37.123456, "unit": "%", "lower_is_better": True, "indicator": "Breached (%)"},
    )
    item = S.accept_candidate(candidate, actor=cast.manager)
    assert (item.title, item.practice, item.service, item.impact, item.effort) == (
        "Breaches pile up (4)",
        "sla",
        cast.email,
        4,
        2,
    )
    assert item.status == "new"  # still to be assessed in the register
    assert item.source_channel == "sla_breach"
    assert item.source_reference == f"{candidate.ref} ({NAME})"
    assert "4 breaches in the window." in item.description and candidate.ref in item.description
    links = list(SourceLink.objects.filter(item=item).order_by("id"))
    assert [(link.object_id, link.is_origin) for link in links] == [(str(a.pk), True), (str(b.pk), False)]
    indicator = item.indicators.get()
    assert (indicator.name, indicator.unit, indicator.direction) == ("Breached (%)", "%", "lower")
    assert indicator.baseline_value == Decimal("37.1235")  # the column keeps 4 decimals
    assert indicator.baseline_date == candidate.period_end
    assert NAME in indicator.baseline_method and str(candidate.period_start) in indicator.baseline_method
    candidate.refresh_from_db()
    assert (candidate.status, candidate.item, candidate.triaged_by) == ("accepted", item, cast.manager)
    assert candidate.magnitude_at_triage == 4
    assert StatusChange.objects.filter(object_id=str(candidate.pk), new_status="accepted").exists()


def test_accept_takes_the_managers_changes_and_skips_a_missing_baseline(cast):
    candidate = raise_one()
    item = S.accept_candidate(candidate, actor=cast.manager, title="Rota for the night shift", impact=5)
    assert (item.title, item.impact, item.effort) == ("Rota for the night shift", 5, 2)
    assert not item.indicators.exists()


def test_merge_links_the_evidence_and_comments_on_the_item(cast):
    target = IS.create_item(actor=cast.manager, title="Fix the rota", practice="sla")
    candidate = raise_one(incidents=[incident("INC9")])
    S.merge_candidate(candidate, actor=cast.manager, item=target, note="Same cause as the rota item")
    assert SourceLink.objects.filter(item=target, is_origin=False).count() == 1
    comment = Comment.objects.get(item=target)
    assert candidate.ref in comment.body and "Same cause" in comment.body
    candidate.refresh_from_db()
    assert (candidate.status, candidate.item, candidate.status_reason) == (
        "merged",
        target,
        "Same cause as the rota item",
    )


def test_defer_needs_a_future_date_and_comes_back_on_it(cast):
    candidate = raise_one()
    with pytest.raises(ValidationError) as exc:
        S.defer_candidate(candidate, actor=cast.manager, until=timezone.localdate())
    assert "until" in exc.value.message_dict
    S.defer_candidate(candidate, actor=cast.manager, until=tomorrow(), reason="after the freeze")
    candidate.refresh_from_db()
    assert (candidate.status, candidate.deferred_until) == ("deferred", tomorrow())
    assert S.wake_deferred(as_of=timezone.localdate()) == 0
    assert S.wake_deferred(as_of=tomorrow()) == 1
    candidate.refresh_from_db()
    assert candidate.status == "new"


def test_the_housekeeping_task_wakes_deferred_candidates(cast):
    candidate = raise_one()
    S.defer_candidate(candidate, actor=cast.manager, until=tomorrow())
    assert housekeeping.call(tomorrow().isoformat()) == {"woken": 1}


def test_dismiss_needs_a_reason(cast):
    candidate = raise_one()
    with pytest.raises(ValidationError) as exc:
        S.dismiss_candidate(candidate, actor=cast.manager, reason="  ")
    assert exc.value.message_dict == {"reason": ["A reason is required to dismiss a candidate."]}
    S.dismiss_candidate(candidate, actor=cast.manager, reason="Planned maintenance, not a pattern")
    candidate.refresh_from_db()
    assert (candidate.status, candidate.status_reason) == ("dismissed", "Planned maintenance, not a pattern")


def test_a_triaged_candidate_cannot_be_triaged_again(cast):
    candidate = raise_one()
    S.dismiss_candidate(candidate, actor=cast.manager, reason="noise")
    with pytest.raises(ValidationError) as exc:
        S.accept_candidate(candidate, actor=cast.manager)
    assert "already dismissed" in exc.value.message_dict["status"][0]
    assert not Item.objects.exists()


def test_a_stale_version_conflicts(cast):
    candidate = raise_one()
    version = candidate.version
    S.defer_candidate(candidate, actor=cast.manager, until=tomorrow(), expected_version=version)
    with pytest.raises(ConflictError):
        S.dismiss_candidate(candidate, actor=cast.admin, reason="noise", expected_version=version)


@pytest.mark.parametrize("role", ["viewer", "contributor", "owner"])
def test_only_managers_triage(cast, role):
    candidate = raise_one()
    user = getattr(cast, role)
    for call in (
        lambda: S.accept_candidate(candidate, actor=user),
        lambda: S.dismiss_candidate(candidate, actor=user, reason="x"),
        lambda: S.defer_candidate(candidate, actor=user, until=tomorrow()),
        lambda: S.triage_bulk([candidate.pk], actor=user, action="dismiss", reason="x"),
    ):
        with pytest.raises(PermissionDeniedError):
            call()
    candidate.refresh_from_db()
    assert candidate.status == "new"


def test_bulk_applies_one_decision_to_all(cast):
    ids = [raise_one(f"scripted:{n}").pk for n in range(3)]
    result = S.triage_bulk(ids, actor=cast.manager, action="dismiss", reason="seasonal noise")
    assert result.ok and len(result.done) == 3
    assert set(Candidate.objects.values_list("status", flat=True)) == {"dismissed"}


def test_bulk_accept_creates_one_item_each(cast):
    ids = [raise_one(f"scripted:{n}", incidents=[incident(f"INC{n}")]).pk for n in range(2)]
    result = S.triage_bulk(ids, actor=cast.manager, action="accept")
    assert result.ok
    assert Item.objects.count() == 2 and SourceLink.objects.count() == 2


def test_bulk_with_one_failing_changes_nothing_and_names_it(cast):
    ok_a, ok_b = raise_one("scripted:a"), raise_one("scripted:b")
    taken = raise_one("scripted:c")
    S.dismiss_candidate(taken, actor=cast.admin, reason="already handled")
    result = S.triage_bulk([ok_a.pk, taken.pk, 999999, ok_b.pk], actor=cast.manager, action="accept")
    assert not result.ok and result.done == []
    assert [(e["id"], e["field"]) for e in result.errors] == [(taken.pk, "status"), (999999, "ids")]
    assert "already dismissed" in result.errors[0]["message"]
    assert not Item.objects.exists()  # all or nothing: the two good ones were not accepted either
    assert set(Candidate.objects.filter(pk__in=[ok_a.pk, ok_b.pk]).values_list("status", flat=True)) == {
        "new"
    }


def test_bulk_merge_needs_an_item_for_each(cast):
    ids = [raise_one(f"scripted:{n}").pk for n in range(2)]
    result = S.triage_bulk(ids, actor=cast.manager, action="merge")
    assert [e["field"] for e in result.errors] == ["item", "item"]
