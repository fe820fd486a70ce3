"""Protected capacity in the register review's agenda: the teams whose improvement time was eaten
by operations (capacity.py's flag), each with its trend over the last months.

Registered with governance's agenda (governance.notices) from CadenceConfig.ready: cadence is
the layer above governance, so governance never imports this module; it asks its registry.
"""

from __future__ import annotations

import datetime as dt

from django.urls import reverse
from django.utils import timezone

from tikting.governance.notices import Notice, NoticeRow, TrendPoint
from tikting.lib.display import number

from .capacity import MonthFigure, TeamCapacity, capacity, flag_below

MONTHS = 6  # the trend: the current month and the five before it


def _percent(value) -> str:
    return f"{number(round(value * 100))} %"


def _point(month: MonthFigure) -> TrendPoint:
    kept = month.kept
    return TrendPoint(
        label=f"{month.month:%b}",
        value="—" if kept is None else _percent(kept),
        flagged=month.flagged,
        partial=month.partial,
    )


def _summary(team: TeamCapacity) -> str:
    full = [m for m in team.months if not m.partial and m.planned]
    last = full[-1]
    under = 0
    for month in reversed(full):  # consecutive full months under the threshold, the last one included
        if not month.flagged:
            break
        under += 1
    run = f"; under the threshold {under} months running" if under > 1 else ""
    return (
        f"kept {_percent(last.kept)} in {last.month:%B %Y}: {number(round(last.logged, 1))} of "
        f"{number(round(last.planned, 1))} planned improvement hours logged{run}"
    )


def capacity_notice(now: dt.datetime) -> Notice:
    """The agenda section: flagged teams only (two queries, capacity.capacity)."""
    today = timezone.localdate(now)
    teams = capacity(today=today, months=MONTHS)
    flagged = [team for team in teams if team.flagged]
    url = reverse("cadence:capacity")
    rows = [
        NoticeRow(
            name=str(team.team), url=url, summary=_summary(team), trend=[_point(m) for m in team.months]
        )
        for team in sorted(flagged, key=lambda t: t.team.name)
    ]
    threshold = _percent(flag_below())
    return Notice(
        key="capacity",
        title="Improvement time eaten by operations",
        help=(
            f"Teams whose last full month kept less than {threshold} of the improvement hours planned "
            "for them (protected capacity), with the share kept month by month."
        ),
        rows=rows,
        covers=(
            f"{len(flagged)} of {len(teams)} teams flagged. Kept = hours logged on sprint items ÷ hours "
            "planned (members × working days × the team's improvement share); improvement work logged "
            "outside sprints is not counted. * a partial month (the current one, or the team's first), "
            "never flagged. — nothing planned."
        ),
    )
