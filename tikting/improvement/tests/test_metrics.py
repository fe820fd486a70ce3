"""The practice's own metrics, against hand-computed numbers (run on SQLite and PostgreSQL)."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from tikting.improvement import choices as C
from tikting.improvement import metrics as M
from tikting.improvement import services as S
from tikting.improvement.models import Item
from tikting.test import ready_item

pytestmark = pytest.mark.django_db

UTC = dt.UTC


def at(year, month, day, hour=0, minute=0):
    return dt.datetime(year, month, day, hour, minute, tzinfo=UTC)


def closed_item(
    cast, *, identified, closed, target=None, outcome="successful", benefit="time_saved", **extra
):
    """An item submitted through the service, then closed on the given dates (date override)."""
    fields = {k: extra.pop(k) for k in ("practice", "service", "impact", "effort") if k in extra}
    item = S.create_item(actor=cast.contributor, title="closed", **fields)
    Item.objects.filter(pk=item.pk).update(
        status=C.Status.CLOSED,
        identified_at=identified,
        closed_at=closed,
        target_date=target,
        outcome=outcome,
        benefit_category=benefit if outcome != C.Outcome.WITHDRAWN else "",
        **extra,
    )
    return Item.objects.get(pk=item.pk)


@pytest.fixture
def four_closed(cast):
    """Cycle times 5, 10, 10 and 25 days: mean 12.5, median 10. Three of four closed by target date.

    A fifth item is withdrawn after 59 days and late: it must not count in either figure.
    """
    return [
        closed_item(cast, identified=at(2025, 1, 1), closed=at(2025, 1, 6), target=dt.date(2025, 1, 10),
                    practice="incident", service=cast.email, realised_delta=Decimal("-4")),
        # Closed on its target date itself: on time.
        closed_item(cast, identified=at(2025, 1, 1), closed=at(2025, 1, 11), target=dt.date(2025, 1, 11),
                    practice="incident", service=cast.email),
        closed_item(cast, identified=at(2025, 2, 1), closed=at(2025, 2, 11), target=dt.date(2025, 2, 20),
                    practice="change", outcome="partly_successful", benefit="quality"),
        closed_item(cast, identified=at(2025, 2, 1), closed=at(2025, 2, 26), target=dt.date(2025, 2, 20),
                    practice="change", outcome="unsuccessful", benefit=""),
        closed_item(cast, identified=at(2025, 1, 1), closed=at(2025, 3, 1), target=dt.date(2025, 1, 5),
                    practice="incident", outcome="withdrawn"),
    ]  # fmt: skip


# --- cycle time -----------------------------------------------------------------------------------


def test_it_computes_mean_and_median_cycle_time(four_closed):
    assert M.cycle_time() == {"count": 4, "mean_days": 12.5, "median_days": 10.0}


def test_it_takes_the_middle_value_for_an_odd_count(cast):
    for days in (25, 5, 10):
        closed_item(cast, identified=at(2025, 1, 1), closed=at(2025, 1, 1) + dt.timedelta(days=days))
    # full precision: 40 / 3 days, not 13.33 (rounding is the dashboard's, for display)
    assert M.cycle_time() == {"count": 3, "mean_days": 40 / 3, "median_days": 10.0}


def test_it_averages_the_two_middle_values_for_an_even_count(cast):
    for hours in (12, 36, 60, 240):  # 0.5, 1.5, 2.5, 10 days
        closed_item(cast, identified=at(2025, 1, 1), closed=at(2025, 1, 1) + dt.timedelta(hours=hours))
    assert M.cycle_time() == {"count": 4, "mean_days": 3.625, "median_days": 2.0}


def test_it_includes_withdrawn_items_only_when_asked(four_closed):
    # 5 + 10 + 10 + 25 + 59 = 109 / 5 = 21.8; median of 5, 10, 10, 25, 59 is 10.
    assert M.cycle_time(include_withdrawn=True) == {"count": 5, "mean_days": 21.8, "median_days": 10.0}


def test_it_gives_none_without_closed_items(cast):
    S.create_item(actor=cast.contributor, title="open")
    assert M.cycle_time() == {"count": 0, "mean_days": None, "median_days": None}
    assert M.closed_on_time()["percent"] is None


def test_it_filters_by_practice_service_and_closure_window(four_closed, cast):
    assert M.cycle_time(practice="change") == {"count": 2, "mean_days": 17.5, "median_days": 17.5}
    assert M.cycle_time(service=cast.email)["count"] == 2
    assert M.cycle_time(service=cast.email.pk)["mean_days"] == 7.5
    february = M.cycle_time(start=dt.date(2025, 2, 1), end=dt.date(2025, 2, 28))
    assert february == {"count": 2, "mean_days": 17.5, "median_days": 17.5}
    # The end date is inclusive: A closed on 6 January.
    assert M.cycle_time(start=dt.date(2025, 1, 6), end=dt.date(2025, 1, 6))["count"] == 1


def test_it_accepts_a_queryset(four_closed):
    qs = Item.objects.filter(pk__in=[four_closed[0].pk, four_closed[3].pk])
    assert M.cycle_time(qs) == {"count": 2, "mean_days": 15.0, "median_days": 15.0}


# --- closed by target date ------------------------------------------------------------------------


def test_it_computes_the_share_closed_by_target_date(four_closed):
    assert M.closed_on_time() == {
        "closed": 4,
        "with_target_date": 4,
        "on_time": 3,
        "late": 1,
        "open_past_target": 0,
        "missed": 1,
        "without_target_date": 0,
        "percent": 75.0,
    }


def test_open_items_past_their_target_count_as_missed(four_closed, cast):
    """An item left open after its target date has missed it: leaving it open must not flatter
    the figure (it was 75 % with the late ones simply not closed yet)."""
    late_open = ready_item(cast, title="late, still open")
    Item.objects.filter(pk=late_open.pk).update(target_date=dt.date(2025, 2, 14))
    due_today = ready_item(cast, title="due today, still open")
    Item.objects.filter(pk=due_today.pk).update(target_date=dt.date(2025, 3, 1))
    deferred = S.create_item(actor=cast.contributor, title="deferred")
    Item.objects.filter(pk=deferred.pk).update(status=C.Status.DEFERRED, target_date=dt.date(2025, 1, 1))
    result = M.closed_on_time(today=dt.date(2025, 3, 1))
    assert (result["on_time"], result["late"], result["open_past_target"], result["missed"]) == (3, 1, 1, 2)
    assert result["percent"] == 60.0  # 3 on time of 4 closed + 1 open past its target
    # the open item counts in the window of its target date (February), not in January's
    march_1 = dt.date(2025, 3, 1)
    february = M.closed_on_time(start=dt.date(2025, 2, 1), end=dt.date(2025, 2, 28), today=march_1)
    january = M.closed_on_time(start=dt.date(2025, 1, 1), end=dt.date(2025, 1, 31), today=march_1)
    assert (february["percent"], january["percent"]) == (pytest.approx(100 / 3), 100.0)
    # and the dashboard's bundle counts it as of its `now`
    assert M.practice_metrics(now=at(2025, 3, 2))["closed_on_time"]["open_past_target"] == 2


def test_items_without_target_date_are_outside_the_denominator(four_closed, cast):
    closed_item(cast, identified=at(2025, 1, 1), closed=at(2025, 1, 2))
    result = M.closed_on_time()
    assert (result["with_target_date"], result["without_target_date"], result["percent"]) == (4, 1, 75.0)


def test_withdrawn_items_count_when_asked(four_closed):
    # The withdrawn item closed after its target date: 3 of 5.
    assert M.closed_on_time(include_withdrawn=True)["percent"] == 60.0


def test_on_time_uses_the_local_date_of_closure(cast):
    closed_item(cast, identified=at(2025, 1, 1), closed=at(2025, 1, 10, 23, 30), target=dt.date(2025, 1, 10))
    assert M.closed_on_time()["percent"] == 100.0
    # 23:30 UTC is already 11 January in Berlin: late there.
    with timezone.override("Europe/Berlin"):
        assert M.closed_on_time()["percent"] == 0.0


# --- stock and flow -------------------------------------------------------------------------------


def test_it_counts_items_by_status_and_quadrant(cast):
    S.create_item(actor=cast.contributor, title="a", impact=5, effort=1)
    S.create_item(actor=cast.contributor, title="b", impact=5, effort=5)
    rejected = S.create_item(actor=cast.contributor, title="c", impact=1, effort=1)
    S.assess_item(rejected, actor=cast.manager, decision="reject", reason="duplicate")
    ready_item(cast)  # impact 4, effort 2: a quick win, in step 4
    by_status = M.items_by_status()
    assert list(by_status) == C.Status.values  # every status, in lifecycle order
    assert by_status["new"] == 2
    assert by_status["rejected"] == 1
    assert by_status["plan"] == 1
    assert by_status["closed"] == 0
    assert M.items_by_quadrant() == {"quick_win": 2, "major_project": 1, "fill_in": 1, "thankless": 0}
    assert M.totals() == {"total": 4, "open": 3, "closed": 0, "rejected": 1, "deferred": 0}


def test_it_counts_created_and_closed_per_month_with_empty_months(four_closed):
    rows = M.created_vs_closed(end=dt.date(2025, 4, 15), months=5)
    assert rows == [
        {"month": "2024-12", "created": 0, "closed": 0},
        {"month": "2025-01", "created": 3, "closed": 2},
        {"month": "2025-02", "created": 2, "closed": 2},
        {"month": "2025-03", "created": 0, "closed": 1},
        {"month": "2025-04", "created": 0, "closed": 0},
    ]


def test_months_wrap_over_the_year_and_default_to_twelve(four_closed):
    rows = M.created_vs_closed(end=dt.date(2025, 2, 1))
    assert len(rows) == 12
    assert (rows[0]["month"], rows[-1]["month"]) == ("2024-03", "2025-02")
    assert sum(r["created"] for r in rows) == 5


def test_months_are_the_site_time_zones(cast, settings):
    """Month bounds are local midnights: 23:30 UTC on 31 January is 1 February in Helsinki (UTC+2),
    and 22:30 UTC on 28 February is already 1 March there."""
    settings.TIME_ZONE = "Europe/Helsinki"
    closed_item(cast, identified=at(2025, 1, 31, 23, 30), closed=at(2025, 2, 28, 22, 30))
    closed_item(cast, identified=at(2025, 1, 31, 21, 30), closed=at(2025, 2, 28, 21, 30))
    rows = M.created_vs_closed(end=dt.date(2025, 3, 10), months=3)
    assert rows == [
        {"month": "2025-01", "created": 1, "closed": 0},
        {"month": "2025-02", "created": 1, "closed": 1},
        {"month": "2025-03", "created": 0, "closed": 1},
    ]


def test_created_vs_closed_is_one_query_whatever_the_months(four_closed, django_assert_num_queries):
    with django_assert_num_queries(1):
        M.created_vs_closed(end=dt.date(2025, 4, 15), months=24)


def test_it_counts_open_items_flagged_for_attention(cast):
    now = timezone.now()
    stale = S.create_item(actor=cast.contributor, title="stale")
    Item.objects.filter(pk=stale.pk).update(last_activity_at=now - dt.timedelta(days=45))
    overdue = ready_item(cast, title="overdue")
    Item.objects.filter(pk=overdue.pk).update(target_date=timezone.localdate(now) - dt.timedelta(days=1))
    blocked = ready_item(cast, title="blocked")
    S.set_blocked(blocked, actor=cast.owner, blocked=True, blocker="Waiting for the vendor")
    S.escalate_item(blocked, actor=cast.owner, note="Need budget")
    rejected = closed_item(cast, identified=at(2025, 1, 1), closed=at(2025, 1, 2))
    Item.objects.filter(pk=rejected.pk).update(
        last_activity_at=now - dt.timedelta(days=90)
    )  # closed: no flag
    assert M.open_flags(now=now) == {
        "open": 3,
        "stale": 1,
        "overdue": 1,
        "due_soon": 0,
        "blocked": 1,
        "escalated": 1,
    }


# --- outcomes and sustainment ---------------------------------------------------------------------


def test_it_counts_outcomes_and_benefits_and_lists_deltas(four_closed):
    result = M.outcomes()
    assert result["by_outcome"] == {
        "successful": 2,
        "partly_successful": 1,
        "unsuccessful": 1,
        "withdrawn": 1,
    }
    assert result["by_benefit"] == {
        "time_saved": 2,
        "cost_reduced": 0,
        "customer_satisfaction": 0,
        "quality": 1,
        "risk_reduced": 0,
    }
    assert result["with_delta"] == 1
    assert [row["ref"] for row in result["items"]] == [
        four_closed[i].ref for i in (4, 3, 2, 1, 0)
    ]  # newest closure first
    assert result["items"][-1]["realised_delta"] == Decimal("-4")


def test_it_counts_sustained_and_slipped(four_closed):
    Item.objects.filter(pk=four_closed[0].pk).update(sustainment=C.Sustainment.SUSTAINED)
    Item.objects.filter(pk=four_closed[1].pk).update(sustainment=C.Sustainment.SLIPPED)
    Item.objects.filter(pk=four_closed[2].pk).update(sustainment=C.Sustainment.SUSTAINED)
    Item.objects.filter(pk=four_closed[3].pk).update(sustainment=C.Sustainment.HOLDING)
    assert M.sustainment() == {
        "holding": 1,
        "sustained": 2,
        "slipped": 1,
        "not_watched": 1,
        "slipped_share": 100 / 3,
    }


def test_an_item_closed_through_the_services_is_measured(cast):
    item = ready_item(cast)
    indicator = item.indicators.get()
    item = S.transition_item(item, actor=cast.owner, to="action")
    S.record_measurement(indicator, actor=cast.owner, value="5")
    S.update_action(item.actions.get(), actor=cast.owner, done=True)
    item = S.transition_item(item, actor=cast.owner, to="evaluation")
    item = S.evaluate_item(item, actor=cast.owner)
    item = S.transition_item(item, actor=cast.owner, to="momentum")
    S.close_item(item, actor=cast.owner, outcome="successful", benefit_category="time_saved")
    assert M.closed_on_time()["percent"] == 100.0
    assert M.cycle_time()["count"] == 1
    assert M.outcomes()["items"][0]["realised_delta"] == Decimal("-5")
    assert M.sustainment()["holding"] == 1


def test_practice_metrics_bundles_every_metric(four_closed):
    result = M.practice_metrics(practice="change")
    assert result["cycle_time"]["mean_days"] == 17.5
    assert result["closed_on_time"]["percent"] == 50.0
    assert result["totals"]["closed"] == 2
    assert len(result["created_vs_closed"]) == 12
