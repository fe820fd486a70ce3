"""The sprint rules: dates, scope size and its reason, the board, time logs, the review, velocity."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings
from django.utils import timezone

from tikting.cadence import services as CS
from tikting.cadence.models import Column, Disposition, Sprint, SprintItem, SprintStatus, TimeLog
from tikting.cadence.results import velocity
from tikting.core.audit import history_for
from tikting.core.exceptions import ConflictError, PermissionDeniedError
from tikting.improvement import services as S
from tikting.test import ready_item

from .conftest import SPRINT_END, SPRINT_START

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()
START, END = SPRINT_START, SPRINT_END  # the `sprint` fixture's days (conftest.py)


def items(cast, n):
    return [S.create_item(actor=cast.contributor, title=f"Idea {i}") for i in range(n)]


def test_it_refuses_sprints_shorter_than_two_or_longer_than_four_weeks(cast, team):
    for end in (dt.date(2026, 12, 12), dt.date(2026, 12, 28)):  # 13 and 29 days
        with pytest.raises(ValidationError) as exc:
            CS.create_sprint(
                actor=cast.manager, team=team, name="S", goal="G", start=dt.date(2026, 11, 30), end=end
            )
        assert "end" in exc.value.message_dict
    four_weeks = CS.create_sprint(
        actor=cast.manager,
        team=team,
        name="S",
        goal="G",
        start=dt.date(2026, 11, 30),
        end=dt.date(2026, 12, 27),
    )
    assert four_weeks.days == 28


def test_it_needs_a_goal(cast, team):
    with pytest.raises(ValidationError) as exc:
        CS.create_sprint(
            actor=cast.manager, team=team, name="S", goal=" ", start=TODAY, end=TODAY + dt.timedelta(days=13)
        )
    assert exc.value.message_dict["goal"] == ["Say what the sprint is for: its goal."]


@pytest.mark.parametrize("role", ["viewer", "contributor"])
def test_only_owners_and_managers_plan(cast, team, role):
    with pytest.raises(PermissionDeniedError):
        CS.create_sprint(
            actor=getattr(cast, role),
            team=team,
            name="S",
            goal="G",
            start=TODAY,
            end=TODAY + dt.timedelta(days=13),
        )


@override_settings(TIKTING_SPRINT_MAX_ITEMS=2)
def test_it_warns_past_the_scope_size_and_keeps_the_reason_to_go_past_it(cast, sprint):
    first, second, third = items(cast, 3)
    CS.add_sprint_item(sprint, actor=cast.manager, item=first)
    assert CS.scope_warning(sprint) == ""
    CS.add_sprint_item(sprint, actor=cast.manager, item=second)
    assert "3 items, past the configured 2" in CS.scope_warning(sprint)
    with pytest.raises(ValidationError) as exc:
        CS.add_sprint_item(sprint, actor=cast.manager, item=third)
    assert "TIKTING_SPRINT_MAX_ITEMS" in exc.value.message_dict["over_scope_reason"][0]
    assert sprint.cards.count() == 2  # nothing added
    CS.add_sprint_item(sprint, actor=cast.manager, item=third, over_scope_reason="Quick fix, same people")
    sprint.refresh_from_db()
    assert sprint.cards.count() == 3
    assert sprint.over_scope_reason == f"{third.ref}: Quick fix, same people"
    assert any(e.changes.get("over_scope_reason") == "Quick fix, same people" for e in history_for(sprint))


def test_an_item_is_in_one_open_sprint_at_a_time(cast, team, sprint):
    (item,) = items(cast, 1)
    CS.add_sprint_item(sprint, actor=cast.manager, item=item)
    other = CS.create_sprint(
        actor=cast.owner, team=team, name="Sprint 2", goal="G", start=TODAY, end=TODAY + dt.timedelta(days=13)
    )
    with pytest.raises(ValidationError) as exc:
        CS.add_sprint_item(other, actor=cast.owner, item=item)
    assert exc.value.message_dict["item"] == [f"{item.ref} is already in 'Sprint 1'."]


def test_closed_items_stay_out(cast, sprint):
    (item,) = items(cast, 1)
    S.assess_item(item, actor=cast.manager, decision="reject", reason="Not ours")
    item.refresh_from_db()
    with pytest.raises(ValidationError) as exc:
        CS.add_sprint_item(sprint, actor=cast.manager, item=item)
    assert "only open items" in exc.value.message_dict["item"][0]


def test_moving_cards_orders_the_column_and_refuses_a_stale_version(cast, sprint):
    a, b, c = (CS.add_sprint_item(sprint, actor=cast.manager, item=i) for i in items(cast, 3))
    CS.move_card(a, actor=cast.contributor, column=Column.DONE)
    CS.move_card(b, actor=cast.contributor, column=Column.DONE, position=1)
    assert list(
        sprint.cards.filter(column=Column.DONE).order_by("position").values_list("pk", flat=True)
    ) == [b.pk, a.pk]
    with pytest.raises(ConflictError):
        CS.move_card(c, actor=cast.contributor, column=Column.DOING, expected_version=c.version + 5)
    with pytest.raises(ValidationError):
        CS.move_card(c, actor=cast.contributor, column="archive")


def test_people_outside_the_team_do_not_move_cards(cast, sprint):
    (card,) = (CS.add_sprint_item(sprint, actor=cast.manager, item=i) for i in items(cast, 1))
    with pytest.raises(PermissionDeniedError):
        CS.move_card(card, actor=cast.viewer, column=Column.DOING)


def test_the_logger_is_the_actor_and_only_managers_log_for_others(cast, sprint):
    card = CS.add_sprint_item(sprint, actor=cast.manager, item=items(cast, 1)[0], planned_hours="6")
    entry = CS.log_time(card, actor=cast.contributor, hours="2.5", day=START + dt.timedelta(days=1))
    assert (entry.user, entry.logged_by, entry.hours) == (cast.contributor, cast.contributor, Decimal("2.50"))
    with pytest.raises(PermissionDeniedError):
        CS.log_time(card, actor=cast.contributor, hours="1", user=cast.owner)
    with pytest.raises(PermissionDeniedError):  # not in the team, does not own the item
        CS.log_time(card, actor=cast.other_owner, hours="1")
    for_someone = CS.log_time(card, actor=cast.manager, hours="1", user=cast.owner)
    assert (for_someone.user, for_someone.logged_by) == (cast.owner, cast.manager)


def test_time_logs_are_within_the_sprint_past_and_a_day(cast, sprint):
    card = CS.add_sprint_item(sprint, actor=cast.manager, item=items(cast, 1)[0])
    for day, field in [(START - dt.timedelta(days=1), "day"), (TODAY + dt.timedelta(days=1), "day")]:
        with pytest.raises(ValidationError) as exc:
            CS.log_time(card, actor=cast.contributor, hours="1", day=day)
        assert field in exc.value.message_dict
    for hours in ("0", "-1", "lots"):
        with pytest.raises(ValidationError) as exc:
            CS.log_time(card, actor=cast.contributor, hours=hours)
        assert "hours" in exc.value.message_dict
    CS.log_time(card, actor=cast.contributor, hours="20")
    with pytest.raises(ValidationError) as exc:
        CS.log_time(card, actor=cast.contributor, hours="5")
    assert "a day has 24" in exc.value.message_dict["hours"][0]
    assert TimeLog.objects.count() == 1


def test_the_review_records_results_decisions_and_carries_items_over(cast, team, sprint):
    measured = ready_item(cast)
    indicator = measured.indicators.get()
    S.record_measurement(indicator, actor=cast.owner, value="7")
    other = items(cast, 1)[0]
    done = CS.add_sprint_item(sprint, actor=cast.manager, item=measured)
    left = CS.add_sprint_item(sprint, actor=cast.manager, item=other)
    CS.start_sprint(sprint, actor=cast.manager)
    CS.move_card(done, actor=cast.contributor, column=Column.DONE)
    nxt = CS.create_sprint(
        actor=cast.manager,
        team=team,
        name="Sprint 2",
        goal="G",
        start=END + dt.timedelta(days=1),
        end=END + dt.timedelta(days=14),
    )
    with pytest.raises(ValidationError) as exc:
        CS.review_sprint(
            sprint,
            actor=cast.manager,
            what_changed="",
            decisions={done.pk: {"decision": "close"}, left.pk: {"decision": "continue"}},
        )
    assert set(exc.value.message_dict) == {"what_changed", f"disposition_{left.pk}"}
    with pytest.raises(ValidationError) as exc:
        CS.review_sprint(
            sprint,
            actor=cast.manager,
            what_changed="Triage scripts",
            decisions={
                done.pk: {"decision": "close"},
                left.pk: {"decision": "continue", "disposition": "next_sprint"},
            },
        )
    assert "next_sprint" in exc.value.message_dict
    CS.review_sprint(
        sprint,
        actor=cast.manager,
        what_changed="Triage scripts in place",
        decisions={
            done.pk: {"decision": "close", "note": "Target nearly met"},
            left.pk: {"decision": "adjust", "disposition": "next_sprint"},
        },
        next_sprint=nxt,
    )
    sprint.refresh_from_db()
    done.refresh_from_db()
    left.refresh_from_db()
    assert sprint.status == SprintStatus.CLOSED and sprint.what_changed == "Triage scripts in place"
    assert done.disposition == Disposition.CLOSED
    assert done.result == {
        "indicator": "MTTR",
        "unit": "h",
        "direction": "lower",
        "baseline": "10.0000",
        "target": "6.0000",
        "latest": "7.0000",
        "measured_at": done.result["measured_at"],
        "delta": "-3.0000",
        "met": False,
        "improved": True,
    }
    assert left.disposition == Disposition.NEXT_SPRINT
    assert SprintItem.objects.filter(sprint=nxt, item=other).exists()
    with pytest.raises(ValidationError):
        CS.log_time(done, actor=cast.contributor, hours="1")


def test_the_review_refuses_a_stale_version(cast, sprint):
    with pytest.raises(ConflictError):
        CS.review_sprint(
            sprint, actor=cast.manager, what_changed="x", decisions={}, expected_version=sprint.version + 1
        )


def test_velocity_counts_reviewed_sprints_only(cast, team, sprint):
    a, b, c = (CS.add_sprint_item(sprint, actor=cast.manager, item=i) for i in items(cast, 3))
    CS.move_card(a, actor=cast.manager, column=Column.DONE)
    CS.move_card(b, actor=cast.manager, column=Column.DONE)
    CS.log_time(a, actor=cast.contributor, hours="3")
    CS.log_time(c, actor=cast.contributor, hours="1.5")
    assert velocity(Sprint.objects.all())["sprints"] == 0
    CS.review_sprint(
        sprint,
        actor=cast.manager,
        what_changed="x",
        decisions={k.pk: {"decision": "continue", "disposition": "register"} for k in (a, b, c)},
    )
    second = CS.create_sprint(
        actor=cast.manager,
        team=team,
        name="Sprint 2",
        goal="G",
        start=TODAY,
        end=TODAY + dt.timedelta(days=13),
    )
    d = CS.add_sprint_item(second, actor=cast.manager, item=c.item)
    CS.move_card(d, actor=cast.manager, column=Column.DONE)
    CS.log_time(d, actor=cast.contributor, hours="2")
    CS.review_sprint(second, actor=cast.manager, what_changed="y", decisions={d.pk: {"decision": "close"}})
    open_one = CS.create_sprint(
        actor=cast.manager,
        team=team,
        name="Sprint 3",
        goal="G",
        start=TODAY,
        end=TODAY + dt.timedelta(days=13),
    )
    CS.add_sprint_item(open_one, actor=cast.manager, item=items(cast, 1)[0])
    figures = velocity(Sprint.objects.filter(team=team))
    assert figures == {
        "sprints": 2,
        "items_done": 3,
        "hours_logged": Decimal("6.50"),
        "items_per_sprint": Decimal("1.5"),
        "hours_per_sprint": Decimal("3.25"),
    }
