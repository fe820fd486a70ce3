"""The leadership view: what an IT leader reads in two minutes.

- outcomes achieved this quarter: items closed in the quarter (withdrawn left out) with their
  measured delta against the baseline of the indicator it was measured on, and the sprint hours
  logged on them;
- blocked or escalated items (open), and for how long; an escalation stays until the item is
  unblocked (improvement's set_blocked clears it) or closed;
- capacity kept against planned per team (last full month and this month, capacity.py);
- the practice's own metrics this quarter against last quarter (improvement.metrics);
- the three items that most need a decision (NEED_DECISION_RULE).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django.db.models import DecimalField, F, OuterRef, Q, QuerySet, Subquery, Sum
from django.utils import timezone

from tikting.improvement import choices as IC
from tikting.improvement import metrics as M
from tikting.improvement.models import Indicator, Item, Measurement

from .capacity import capacity
from .models import TimeLog

NEED_DECISION_RULE = (
    "Open items, escalated blockers first, then other blockers, then items past their target date, "
    "then items waiting for assessment; within each, the one waiting longest first."
)
OUTCOME_ROWS = 10


def quarter_of(day: dt.date) -> tuple[dt.date, dt.date]:
    """First and last day of the calendar quarter holding `day`."""
    first_month = (day.month - 1) // 3 * 3 + 1
    start = dt.date(day.year, first_month, 1)
    end_month = first_month + 3
    end = (dt.date(day.year + 1, 1, 1) if end_month > 12 else dt.date(day.year, end_month, 1)) - dt.timedelta(
        days=1
    )
    return start, end


def local_midnight(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def quarter_label(start: dt.date) -> str:
    return f"{start.year}-Q{(start.month - 1) // 3 + 1}"


def closed_in(start: dt.date, end: dt.date) -> QuerySet[Item]:
    """Items closed between two local days (withdrawn left out: they achieved nothing)."""
    return (
        Item.objects.closed()
        .exclude(outcome=IC.Outcome.WITHDRAWN)
        .filter(
            closed_at__gte=M._local_midnight(start),
            closed_at__lt=M._local_midnight(end + dt.timedelta(days=1)),
        )
        .order_by("-closed_at", "-pk")
    )


# What a row of outcomes shows of an item (the long texts it does not show are not read).
ROW_FIELDS = (
    "title",
    "status",
    "outcome",
    "benefit_category",
    "realised_delta",
    "lessons",
    "closed_at",
    "owner",
)


def sprint_hours() -> Subquery:
    """The hours logged on the outer item in sprints (a correlated subquery: one SUM per row read
    through the indexes on card item and time log card, instead of a GROUP BY over every column)."""
    return Subquery(
        TimeLog.objects.filter(card__item=OuterRef("pk"))
        .order_by()
        .values("card__item")
        .annotate(total=Sum("hours"))
        .values("total")[:1],
        output_field=DecimalField(max_digits=12, decimal_places=2),
    )


def hours_on(items: QuerySet[Item]) -> Decimal:
    """All the sprint hours logged on `items` (one aggregate)."""
    total = TimeLog.objects.filter(card__item__in=items.values("pk")).aggregate(h=Sum("hours"))["h"]
    return total or Decimal(0)


def attach_indicators(items: Sequence[Item]) -> None:
    """Each item's indicators, each with its measurements, in two queries, kept where
    prefetch_related("indicators__measurements") keeps them (item.indicators.all() and
    Indicator.latest_measurement() read them). prefetch_related itself clones a queryset for every
    item and indicator: most of the time of a 200-item report."""
    by_item: dict[int, list[Indicator]] = {item.pk: [] for item in items}
    indicators = list(Indicator.objects.filter(item_id__in=by_item))  # Meta order: item, role, id
    by_indicator: dict[int, list[Measurement]] = {indicator.pk: [] for indicator in indicators}
    for measurement in Measurement.objects.filter(indicator_id__in=by_indicator):
        by_indicator[measurement.indicator_id].append(measurement)
    for indicator in indicators:
        indicator._prefetched_objects_cache = {"measurements": by_indicator[indicator.pk]}  # type: ignore[attr-defined]
        by_item[indicator.item_id].append(indicator)
    for item in items:
        item._prefetched_objects_cache = {"indicators": by_item[item.pk]}  # type: ignore[attr-defined]


def outcome_rows(items: QuerySet[Item], limit: int | None) -> list[dict[str, Any]]:
    """Each item with its delta and the baseline it is measured against: four queries, whatever
    the number of items."""
    rows = []
    read = list(items.only(*ROW_FIELDS).select_related("owner").annotate(sprint_hours=sprint_hours())[:limit])
    attach_indicators(read)
    for item in read:
        summary = item.delta_summary()
        indicator = summary["indicator"] if summary else item.delta_indicator()
        rows.append(
            {
                "item": item,
                "delta": summary,
                "indicator": indicator,
                "baseline": indicator.baseline_value if indicator else None,
                "target": indicator.target_value if indicator else None,
                "hours": item.sprint_hours,  # type: ignore[attr-defined]
            }
        )
    return rows


def open_items() -> QuerySet[Item]:
    """The open items, written as the complement of the others (IC.NOT_OPEN_STATUSES says why)."""
    return Item.objects.exclude(status__in=IC.NOT_OPEN_STATUSES)


def days_since(since: dt.date | dt.datetime | None, today: dt.date) -> int | None:
    """Calendar days from `since` (a time: its local day) to today, as every count on the page is
    made (escalated yesterday evening is 1 day ago this morning)."""
    if since is None:
        return None
    day = timezone.localdate(since) if isinstance(since, dt.datetime) else since
    return (today - day).days


BLOCKED_ROWS = 10  # blocked (not escalated) items listed; escalated ones are all listed
# What a blocker or decision row shows of an item.
ATTENTION_FIELDS = (
    "title",
    "status",
    "blocked",
    "blocker",
    "blocked_since",
    "escalated_at",
    "target_date",
    "identified_at",
    "owner",
)


def blockers(now: dt.datetime, blocked_limit: int | None = BLOCKED_ROWS) -> list[dict[str, Any]]:
    """Open items escalated (every one: an escalation stays on the page until resolved), then the
    `blocked_limit` longest-blocked others; escalated first, each group the longest waiting first."""
    attention = open_items().only(*ATTENTION_FIELDS).select_related("owner")
    escalated = list(attention.filter(escalated_at__isnull=False))
    blocked = attention.filter(blocked=True, escalated_at__isnull=True).order_by(
        F("blocked_since").asc(nulls_last=True), "pk"
    )
    rows: list[dict[str, Any]] = []
    today = timezone.localdate(now)
    for item in [*escalated, *blocked[:blocked_limit]]:
        since = item.blocked_since or item.escalated_at
        rows.append(
            {
                "item": item,
                "escalated": item.escalated_at is not None,
                "since": since,
                "days": days_since(since, today),
                "escalated_days": days_since(item.escalated_at, today),
            }
        )
    # Escalated first, then the longest blocked.
    rows.sort(key=lambda r: (not r["escalated"], -int(r["days"] or 0)))
    return rows


def need_decision(now: dt.datetime, limit: int = 3) -> list[dict[str, Any]]:
    """The `limit` items that most need a decision, by NEED_DECISION_RULE (one query a tier)."""
    today = timezone.localdate(now)
    tiers = [
        (
            "Escalated blocker",
            open_items().filter(escalated_at__isnull=False).order_by("escalated_at", "pk"),
            "escalated_at",
        ),
        (
            "Blocked",
            open_items().filter(blocked=True, escalated_at__isnull=True).order_by("blocked_since", "pk"),
            "blocked_since",
        ),
        (
            "Past its target date",
            open_items()
            .filter(target_date__lt=today, blocked=False, escalated_at__isnull=True)
            .order_by("target_date", "pk"),
            "target_date",
        ),
        ("Waiting for assessment", Item.objects.to_assess().order_by("identified_at", "pk"), "identified_at"),
    ]
    picked: list[dict[str, Any]] = []
    for reason, qs, field in tiers:
        for item in qs.only(*ATTENTION_FIELDS).select_related("owner")[: limit - len(picked)]:
            since = getattr(item, field)
            picked.append(
                {
                    "item": item,
                    "reason": reason,
                    "since": since,
                    "days": days_since(since, today),
                }
            )
        if len(picked) >= limit:
            break
    return picked


def practice_trend(
    this: tuple[dt.date, dt.date], last: tuple[dt.date, dt.date], today: dt.date
) -> dict[str, Any]:
    def window(start: dt.date, end: dt.date) -> dict[str, Any]:
        return {
            "closed_on_time": M.closed_on_time(start=start, end=end, today=today),
            "cycle_time": M.cycle_time(start=start, end=end),
        }

    months = M.created_vs_closed(end=today, months=6)
    for row in months:  # "2026-07" → "Jul 2026", as the pages write months
        row["label"] = dt.date.fromisoformat(f"{row['month']}-01").strftime("%b %Y")
    return {"this": window(*this), "last": window(*last), "created_vs_closed": months}


def leadership(now: dt.datetime | None = None) -> dict[str, Any]:
    now = now or timezone.now()
    today = timezone.localdate(now)
    start, end = quarter_of(today)
    last_start, last_end = quarter_of(start - dt.timedelta(days=1))
    closed = closed_in(start, end)
    teams = capacity(today=today, months=2)
    return {
        "quarter": quarter_label(start),
        "quarter_start": start,
        "quarter_end": end,
        "last_quarter": quarter_label(last_start),
        "outcomes": outcome_rows(closed, OUTCOME_ROWS),
        "outcome_count": closed.count(),
        "outcome_hours": hours_on(closed),
        "blockers": blockers(now),
        "blocked_count": open_items().filter(Q(blocked=True) | Q(escalated_at__isnull=False)).count(),
        "capacity": teams,
        "practice": practice_trend((start, end), (last_start, last_end), today),
        "need_decision": need_decision(now),
        "need_decision_rule": NEED_DECISION_RULE,
    }
