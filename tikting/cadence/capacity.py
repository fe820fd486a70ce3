"""Protected capacity: per team and month, the improvement time planned against the time logged.

planned hours = members × (working hours a week ÷ 5) × working days (Monday to Friday) × share.
Members are the team's active users with a role of contributor or above as they are today (tikting
keeps no membership history). Logged hours are the hours the team's members logged on sprint
items that month (any sprint). A month is **partial** when the team started during it
(Team.active_from) or when it is the current month (counted to today): its working days, and so
its planned hours, are prorated and the month is labelled. Public holidays are not known and not
left out.

A team is **flagged** when, in a full month, it logged less than TIKTING_CAPACITY_FLAG_BELOW
(default 0.5) of its planned improvement hours: its improvement time was eaten by operations.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncMonth

from tikting.accounts.models import ROLE_LEVEL, Role, Team

from .models import TimeLog

WORK_ROLES = [role for role in Role if ROLE_LEVEL[role] >= ROLE_LEVEL[Role.CONTRIBUTOR]]


def flag_below() -> Decimal:
    return Decimal(str(getattr(settings, "TIKTING_CAPACITY_FLAG_BELOW", "0.5")))


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def next_month(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def working_days(first: dt.date, last: dt.date) -> int:
    """Monday-to-Friday days from `first` to `last`, both counted (0 when last < first)."""
    if last < first:
        return 0
    days = (last - first).days + 1
    weeks, rest = divmod(days, 7)
    count = weeks * 5
    for offset in range(rest):
        if (first.weekday() + offset) % 7 < 5:
            count += 1
    return count


@dataclass
class MonthFigure:
    month: dt.date
    planned: Decimal
    logged: Decimal
    partial: str = ""  # why the month is prorated ("" when it is whole)
    members: int = 0

    @property
    def kept(self) -> Decimal | None:
        """Logged ÷ planned (None when nothing was planned)."""
        return (self.logged / self.planned) if self.planned else None

    @property
    def flagged(self) -> bool:
        return not self.partial and self.kept is not None and self.kept < flag_below()


@dataclass
class TeamCapacity:
    team: Team
    months: list[MonthFigure] = field(default_factory=list)

    @property
    def flagged(self) -> bool:
        """Eaten by operations: the last full month kept less than the threshold."""
        full = [m for m in self.months if not m.partial and m.planned]
        return bool(full) and full[-1].flagged


def month_figure(team: Team, month: dt.date, members: int, logged: Decimal, today: dt.date) -> MonthFigure:
    first, last = month, next_month(month) - dt.timedelta(days=1)
    if team.active_from and team.active_from > last:
        return MonthFigure(
            month=month, planned=Decimal(0), logged=logged, partial="before the team started", members=members
        )
    reasons = []
    if team.active_from and team.active_from > first:
        first = team.active_from
        reasons.append(f"team started {team.active_from.day} {team.active_from:%b}")
    if today < last:
        last = today
        reasons.append(f"to {today.day} {today:%b}")
    days = working_days(first, last)
    daily = team.working_hours_per_week / 5
    planned = Decimal(members) * daily * days * team.improvement_share / 100
    partial = ", ".join(reasons)
    return MonthFigure(month=month, planned=planned, logged=logged, partial=partial, members=members)


def capacity(*, today: dt.date, months: int = 6, teams: list[Team] | None = None) -> list[TeamCapacity]:
    """The last `months` months (the current one included) for each team: two queries in all."""
    first_month = month_start(today)
    for _ in range(months - 1):
        first_month = month_start(first_month - dt.timedelta(days=1))
    team_list = (
        teams
        if teams is not None
        else list(
            Team.objects.annotate(
                member_count=Count("members", filter=Q(members__is_active=True, members__role__in=WORK_ROLES))
            )
        )
    )
    logged: dict[tuple[int, dt.date], Decimal] = {}
    rows = (
        TimeLog.objects.filter(day__gte=first_month, day__lte=today, user__team__isnull=False)
        .annotate(month=TruncMonth("day"))
        .values("user__team", "month")
        .annotate(total=Sum("hours"))
    )
    for row in rows:
        month = row["month"].date() if isinstance(row["month"], dt.datetime) else row["month"]
        logged[(row["user__team"], month)] = row["total"]
    result = []
    for team in team_list:
        members = getattr(team, "member_count", None)
        if members is None:
            members = team.members.filter(is_active=True, role__in=WORK_ROLES).count()
        figures = []
        month = first_month
        while month <= today:
            hours = logged.get((team.pk, month), Decimal(0))
            figures.append(month_figure(team, month, members, hours, today))
            month = next_month(month)
        result.append(TeamCapacity(team=team, months=figures))
    return result
