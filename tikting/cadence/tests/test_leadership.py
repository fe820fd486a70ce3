"""The leadership view: quarter bounds, outcomes with deltas against baselines, blockers and
escalations until resolved, the three items that most need a decision, and who may read it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from tikting.accounts.models import Team
from tikting.cadence import leadership as L
from tikting.cadence.models import Sprint, SprintItem, TimeLog
from tikting.improvement import choices as C
from tikting.improvement import services as S
from tikting.improvement.models import Item
from tikting.test import ready_item

pytestmark = pytest.mark.django_db


def test_quarters():
    assert L.quarter_of(dt.date(2026, 12, 5)) == (dt.date(2026, 10, 1), dt.date(2026, 12, 31))
    assert L.quarter_of(dt.date(2026, 7, 1)) == (dt.date(2026, 7, 1), dt.date(2026, 9, 30))
    assert L.quarter_label(dt.date(2026, 7, 1)) == "2026-Q3"


def closed(item: Item, *, at: dt.datetime, outcome: str = "successful", delta: str | None = None) -> Item:
    # The closure's own rules are improvement's (tested there); here only its record matters.
    Item.objects.filter(pk=item.pk).update(
        status=C.Status.CLOSED,
        closed_at=at,
        outcome=outcome,
        realised_delta=Decimal(delta) if delta else None,
    )
    return Item.objects.get(pk=item.pk)


def test_outcomes_of_the_quarter_with_their_baseline_delta_and_hours(cast):
    now = timezone.now()
    start, _ = L.quarter_of(timezone.localdate(now))
    measured = ready_item(cast)  # MTTR, baseline 10 h, target 6 h
    S.record_measurement(measured.indicators.get(), actor=cast.owner, value="7")
    team_sprint = Sprint.objects.create(
        team=Team.objects.create(name="Desk"),
        name="S",
        goal="G",
        start=start,
        end=start + dt.timedelta(days=13),
    )
    card = SprintItem.objects.create(sprint=team_sprint, item=measured)
    TimeLog.objects.create(card=card, user=cast.owner, day=start, hours=Decimal("3.5"))
    TimeLog.objects.create(card=card, user=cast.contributor, day=start, hours=Decimal("2"))
    closed(measured, at=now, delta="-3")
    withdrawn = closed(S.create_item(actor=cast.contributor, title="Withdrawn"), at=now, outcome="withdrawn")
    last_quarter = closed(
        S.create_item(actor=cast.contributor, title="Old"), at=L.local_midnight(start) - dt.timedelta(hours=1)
    )
    view = L.leadership(now)
    assert view["outcome_count"] == 1
    assert view["outcome_hours"] == Decimal("5.5")
    (row,) = view["outcomes"]
    assert row["item"] == measured and row["hours"] == Decimal("5.5")
    assert (row["baseline"], row["target"], row["delta"]["text"], row["delta"]["moved"]) == (
        Decimal("10"),
        Decimal("6"),
        "-3 h",
        "toward",
    )
    refs = [r["item"].pk for r in view["outcomes"]]
    assert withdrawn.pk not in refs and last_quarter.pk not in refs


def test_an_escalated_blocker_stays_on_the_page_until_it_is_unblocked(cast, login):
    item = ready_item(cast, title="Slow VPN")
    S.set_blocked(item, actor=cast.owner, blocked=True, blocker="Waiting for the vendor")
    item.refresh_from_db()
    S.escalate_item(item, actor=cast.owner, note="Need budget")
    client = login(cast.manager)
    page = client.get("/cadence/leadership/").content.decode()
    assert "Slow VPN" in page and "escalated 0 days ago" in page
    (row,) = L.blockers(timezone.now())
    assert row["escalated"] is True
    item.refresh_from_db()
    S.set_blocked(item, actor=cast.owner, blocked=False)
    assert L.blockers(timezone.now()) == []
    assert "Slow VPN" not in client.get("/cadence/leadership/").content.decode()


def test_the_three_items_that_most_need_a_decision_follow_the_stated_rule(cast):
    now = timezone.now()
    new = S.create_item(actor=cast.contributor, title="New idea")
    Item.objects.filter(pk=new.pk).update(identified_at=now - dt.timedelta(days=40))
    late = ready_item(cast, title="Late")
    Item.objects.filter(pk=late.pk).update(target_date=timezone.localdate(now) - dt.timedelta(days=3))
    blocked = ready_item(cast, title="Blocked")
    S.set_blocked(blocked, actor=cast.owner, blocked=True, blocker="Licence")
    escalated = ready_item(cast, title="Escalated")
    S.escalate_item(escalated, actor=cast.owner, note="Decide")
    picked = L.need_decision(now)
    assert [(r["item"].title, r["reason"]) for r in picked] == [
        ("Escalated", "Escalated blocker"),
        ("Blocked", "Blocked"),
        ("Late", "Past its target date"),
    ]
    assert picked[2]["days"] == 3
    S.set_blocked(Item.objects.get(pk=escalated.pk), actor=cast.owner, blocked=False)  # resolved
    assert [r["item"].title for r in L.need_decision(now)] == ["Blocked", "Late", "New idea"]


@pytest.mark.parametrize(
    "role, status", [("viewer", 403), ("contributor", 403), ("owner", 403), ("manager", 200), ("admin", 200)]
)
def test_managers_and_administrators_read_the_leadership_view(cast, login, role, status):
    assert login(getattr(cast, role)).get("/cadence/leadership/").status_code == status


def add_world(cast, n: int, now: dt.datetime) -> None:
    """`n` more of everything the page lists: blocked items (every other one escalated), items
    closed this quarter with an indicator, a measurement and sprint hours, and a team."""
    start, _ = L.quarter_of(timezone.localdate(now))
    team = Team.objects.create(name=f"Team {Team.objects.count()}")
    sprint = Sprint.objects.create(
        team=team, name="S", goal="G", start=start, end=start + dt.timedelta(days=13)
    )
    for k in range(n):
        blocked = S.create_item(actor=cast.contributor, title=f"Blocked {k}")
        Item.objects.filter(pk=blocked.pk).update(
            status=C.Status.ACTION,
            owner=cast.owner,
            blocked=True,
            blocker="Vendor",
            blocked_since=now - dt.timedelta(days=k + 1),
            escalated_at=now if k % 2 else None,
        )
        done = S.create_item(actor=cast.contributor, title=f"Done {k}")
        indicator = done.indicators.create(
            name="MTTR", unit="h", direction="lower", baseline_value=Decimal(10), target_value=Decimal(6)
        )
        indicator.measurements.create(value=Decimal(7), measured_at=now - dt.timedelta(hours=2))
        Item.objects.filter(pk=done.pk).update(
            status=C.Status.CLOSED, owner=cast.owner, closed_at=now - dt.timedelta(hours=1), realised_delta=-3
        )
        card = SprintItem.objects.create(sprint=sprint, item=done)
        TimeLog.objects.create(card=card, user=cast.owner, day=start, hours=Decimal(2))


def test_the_leadership_view_states_its_rule_and_keeps_its_query_count(cast, login):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    now = timezone.now()
    add_world(cast, 2, now)
    client = login(cast.manager)
    client.get("/cadence/leadership/")
    with CaptureQueriesContext(connection) as small:
        client.get("/cadence/leadership/")
    add_world(cast, 12, now)  # six times as many of everything
    with CaptureQueriesContext(connection) as large:
        page = client.get("/cadence/leadership/").content.decode()
    # Never more queries for more items (fewer here: the three items needing a decision are all
    # found in the first tier, so the later tiers are not read).
    assert len(large) <= len(small)
    assert L.NEED_DECISION_RULE in page
    assert "14 items closed, 28 h of sprint work on them" in page


def test_every_escalated_item_is_listed_and_the_longest_blocked_others(cast, login):
    now = timezone.now()
    add_world(cast, 30, now)  # 15 escalated, 15 only blocked
    rows = L.blockers(now)
    escalated = [r for r in rows if r["escalated"]]
    blocked = [r for r in rows if not r["escalated"]]
    assert len(escalated) == 15
    assert len(blocked) == L.BLOCKED_ROWS
    assert rows[: len(escalated)] == escalated  # escalated first
    # The others blocked longest first: "Blocked 28" since 29 days, then 26, ...
    assert [r["days"] for r in blocked] == sorted((r["days"] for r in blocked), reverse=True)
    assert blocked[0]["item"].title == "Blocked 28"
    page = login(cast.manager).get("/cadence/leadership/").content.decode()
    assert "Blocked or escalated (30)" in page
    assert "All 30 blocked items in the register" in page and "?flag=blocked" in page


def test_days_are_counted_the_same_way_in_both_lists(cast):
    """Escalated yesterday at 23:00 is 1 day ago this morning, in the blockers and in the decisions."""
    now = L.local_midnight(timezone.localdate()) + dt.timedelta(hours=8)
    item = S.create_item(actor=cast.contributor, title="Waiting")
    Item.objects.filter(pk=item.pk).update(
        status=C.Status.ACTION,
        blocked=True,
        blocked_since=now - dt.timedelta(hours=9),
        escalated_at=now - dt.timedelta(hours=9),
    )
    (row,) = L.blockers(now)
    (decision,) = L.need_decision(now)
    assert row["days"] == row["escalated_days"] == decision["days"] == 1


def test_open_items_are_the_registers_open_items(cast):
    """open_items() is written as the complement of the other statuses (for SQLite's planner):
    the same rows as the register's open()."""
    assert set(C.Status.values) == C.NOT_OPEN_STATUSES | C.OPEN_STATUSES
    assert not C.NOT_OPEN_STATUSES & C.OPEN_STATUSES
    for n, status in enumerate(C.Status.values):
        item = S.create_item(actor=cast.contributor, title=f"Item {n}")
        Item.objects.filter(pk=item.pk).update(status=status)
    assert set(L.open_items().values_list("pk", flat=True)) == set(
        Item.objects.open().values_list("pk", flat=True)
    )
    assert L.open_items().count() == len(C.OPEN_STATUSES)
