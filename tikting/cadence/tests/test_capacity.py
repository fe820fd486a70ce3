"""Protected capacity: planned improvement hours per team and month (partial months prorated and
labelled) against the hours the team's members logged, and the flag when operations ate them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from tikting.accounts.models import Team
from tikting.cadence import capacity as K
from tikting.cadence.models import Sprint, SprintItem, TimeLog
from tikting.improvement import services as S
from tikting.test import make_user

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 12, 9)  # a Wednesday


def test_working_days_count_monday_to_friday():
    assert K.working_days(dt.date(2026, 11, 1), dt.date(2026, 11, 30)) == 21  # November 2026
    assert K.working_days(dt.date(2026, 12, 5), dt.date(2026, 12, 6)) == 0  # a weekend
    assert K.working_days(dt.date(2026, 12, 1), dt.date(2026, 12, 9)) == 7
    assert K.working_days(dt.date(2026, 12, 9), dt.date(2026, 12, 1)) == 0


@pytest.fixture
def desk(cast):
    team = Team.objects.create(
        name="Desk", working_hours_per_week=Decimal("40"), improvement_share=Decimal("10")
    )
    for user in (cast.contributor, cast.owner):
        user.team = team
        user.save()
    make_user("vic", "viewer", team=team)  # a viewer does no improvement work: not a member here
    return team


def log(card: SprintItem, user, day: dt.date, hours: str) -> None:
    # Past sprints' hours as they were logged then (the service only takes days up to today).
    TimeLog.objects.create(card=card, user=user, logged_by=user, day=day, hours=Decimal(hours))


@pytest.fixture
def card(cast, desk):
    sprint = Sprint.objects.create(
        team=desk, name="S", goal="G", start=dt.date(2026, 10, 1), end=dt.date(2026, 10, 14)
    )
    item = S.create_item(actor=cast.contributor, title="Idea")
    return SprintItem.objects.create(sprint=sprint, item=item)


def test_full_months_plan_the_share_of_the_members_working_time(cast, desk, card):
    log(card, cast.contributor, dt.date(2026, 11, 3), "10")
    log(card, cast.owner, dt.date(2026, 11, 20), "8")
    log(card, cast.manager, dt.date(2026, 11, 20), "9")  # not in the team: not its hours
    log(card, cast.contributor, dt.date(2026, 10, 5), "5")
    (row,) = K.capacity(today=TODAY, months=3)
    october, november, december = row.months
    # 2 members (the viewer does not count) × 8 h × 21 working days × 10 %
    assert (november.month, november.members, november.planned, november.logged, november.partial) == (
        dt.date(2026, 11, 1),
        2,
        Decimal("33.6"),
        Decimal("18"),
        "",
    )
    assert not november.flagged  # 18 / 33.6 = 54 % kept
    assert october.planned == Decimal("35.2") and october.flagged  # 22 days; 5 h: 14 % kept
    assert not row.flagged  # judged on the last full month, November
    # The current month counts to today: 7 working days, labelled.
    assert (december.planned, december.logged, december.partial) == (Decimal("11.2"), Decimal(0), "to 9 Dec")
    assert not december.flagged  # a partial month is never flagged


def test_a_team_started_mid_month_is_prorated_from_its_first_day(cast, desk, card):
    desk.active_from = dt.date(2026, 11, 18)
    desk.save()
    log(card, cast.contributor, dt.date(2026, 11, 19), "2")
    (row,) = K.capacity(today=TODAY, months=3)
    october, november, _ = row.months
    assert (october.planned, october.partial) == (Decimal(0), "before the team started")
    assert not october.flagged
    # 9 working days from Wednesday 18 to Monday 30 November
    assert (november.planned, november.partial) == (Decimal("14.4"), "team started 18 Nov")
    assert not november.flagged and not row.flagged  # partial: the team has no full month yet


def test_a_team_whose_last_full_month_kept_too_little_is_flagged_and_shown(cast, desk, card, login):
    today = timezone.localdate()  # the page's own "today"
    last_full_month = K.month_start(K.month_start(today) - dt.timedelta(days=1))
    log(card, cast.contributor, last_full_month + dt.timedelta(days=2), "4")  # under half of ~30 h
    (row,) = K.capacity(today=today, months=2)
    assert row.flagged
    page = login(cast.viewer).get("/cadence/capacity/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Improvement time eaten by operations:</strong>\n  Desk." in text


def test_capacity_takes_two_queries_whatever_the_number_of_teams(cast, django_assert_num_queries):
    for n in range(5):
        Team.objects.create(name=f"Team {n}")
    with django_assert_num_queries(2):
        K.capacity(today=TODAY, months=6)


def test_a_team_started_this_month_is_prorated_at_both_ends(cast, desk, card):
    desk.active_from = dt.date(2026, 12, 3)  # a Thursday
    desk.save()
    (row,) = K.capacity(today=TODAY, months=2)
    november, december = row.months
    assert (november.planned, november.partial) == (Decimal(0), "before the team started")
    # Thursday 3 to Wednesday 9 December: 5 working days × 2 members × 8 h × 10 %
    assert (december.planned, december.partial) == (Decimal("8.0"), "team started 3 Dec, to 9 Dec")
    assert not row.flagged  # no full month yet


def test_a_team_without_members_plans_nothing_and_says_why(cast, login):
    Team.objects.create(name="Empty")
    (row,) = K.capacity(today=TODAY, months=1)
    assert (row.months[0].planned, row.months[0].members, row.flagged) == (Decimal(0), 0, False)
    page = login(cast.viewer).get("/cadence/capacity/").content.decode()
    assert "nothing planned: no members" in page
