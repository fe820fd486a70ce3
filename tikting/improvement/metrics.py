"""The practice measuring itself: metrics of the Continual Improvement Register.

Every figure is computed by the database (aggregates, conditional counts), never by a Python
loop over rows, and gives the same answer on SQLite and PostgreSQL. Definitions, formulas
and edge cases are written once in docs/metrics.md; keep the two in step.

Each function takes an optional Item queryset (defaults to every item), the filters `practice`
(a Practice value) and `service` (a Service or its id), and a window of dates `start`/`end`
(inclusive, in the site's time zone). Which timestamp the window applies to is part of each
metric's definition: identification for stock counts, closure for closure metrics.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from django.conf import settings
from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F, Q, QuerySet
from django.utils import timezone

from . import choices as C
from .models import Item
from .querysets import ItemQuerySet

__all__ = [
    "Filters",
    "closed_on_time",
    "created_vs_closed",
    "cycle_time",
    "items_by_quadrant",
    "items_by_status",
    "open_flags",
    "outcomes",
    "practice_metrics",
    "sustainment",
    "totals",
]

# Closure time minus identification time, as a duration the database computes.
CYCLE = ExpressionWrapper(F("closed_at") - F("identified_at"), output_field=DurationField())


@dataclass(frozen=True)
class Filters:
    """Scope and window shared by every metric. `start`/`end` are inclusive local dates."""

    practice: str | None = None
    service: Any = None  # a cmdb.Service or its id
    start: dt.date | None = None
    end: dt.date | None = None

    def scope(self, qs: QuerySet | None = None) -> ItemQuerySet:
        qs = cast(ItemQuerySet, Item.objects.all() if qs is None else qs)
        if self.practice:
            qs = qs.filter(practice=self.practice)
        if self.service not in (None, ""):
            qs = qs.filter(service_id=getattr(self.service, "pk", self.service))
        return qs

    def window(self, qs: QuerySet, field: str) -> QuerySet:
        """Keep rows whose `field` (a datetime) falls on a local day between start and end."""
        return qs.filter(self.window_q(field))

    def window_q(self, field: str) -> Q:
        """The condition of window(): `field` (a datetime) on a local day between start and end."""
        q = Q()
        if self.start:
            q &= Q(**{f"{field}__gte": _local_midnight(self.start)})
        if self.end:
            q &= Q(**{f"{field}__lt": _local_midnight(self.end + dt.timedelta(days=1))})
        return q

    def date_window_q(self, field: str) -> Q:
        """`field` (a date) between start and end, inclusive."""
        q = Q()
        if self.start:
            q &= Q(**{f"{field}__gte": self.start})
        if self.end:
            q &= Q(**{f"{field}__lte": self.end})
        return q


def _local_midnight(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def _filters(practice=None, service=None, start=None, end=None) -> Filters:
    return Filters(practice=practice or None, service=service, start=start, end=end)


# Figures are returned unrounded (the API and exports carry full precision); the dashboard rounds
# them for display only.
def _days(value: dt.timedelta | None) -> float | None:
    return None if value is None else value.total_seconds() / 86400


def _percent(part: int, whole: int) -> float | None:
    return None if not whole else 100 * part / whole


# --- Stock: what the register holds ------------------------------------------------------------


def totals(qs=None, *, practice=None, service=None, start=None, end=None) -> dict[str, int]:
    """Items in the register, open, closed, and ended otherwise (rejected, deferred).

    Window: identification date.
    """
    f = _filters(practice, service, start, end)
    return f.window(f.scope(qs), "identified_at").aggregate(
        total=Count("pk"),
        open=Count("pk", filter=Q(status__in=C.OPEN_STATUSES)),
        closed=Count("pk", filter=Q(status=C.Status.CLOSED)),
        rejected=Count("pk", filter=Q(status=C.Status.REJECTED)),
        deferred=Count("pk", filter=Q(status=C.Status.DEFERRED)),
    )


def _counts_by(qs: QuerySet, field: str, values) -> dict[str, int]:
    rows = qs.order_by().values(field).annotate(n=Count("pk")).values_list(field, "n")
    found = dict(rows)
    # Every choice appears, with 0 when no row has it (a chart needs the full axis).
    result = {value: found.pop(value, 0) for value in values}
    result.update(found)  # values outside the choices (should not happen) are still counted
    return result


def items_by_status(qs=None, *, practice=None, service=None, start=None, end=None) -> dict[str, int]:
    """Count of items per status, in lifecycle order (all statuses, zeros included).

    Window: identification date.
    """
    f = _filters(practice, service, start, end)
    return _counts_by(f.window(f.scope(qs), "identified_at"), "status", C.Status.values)


def items_by_quadrant(qs=None, *, practice=None, service=None, start=None, end=None) -> dict[str, int]:
    """Count of items per impact × effort quadrant (all quadrants, zeros included).

    Window: identification date.
    """
    f = _filters(practice, service, start, end)
    return _counts_by(f.window(f.scope(qs), "identified_at"), "quadrant", C.Quadrant.values)


# --- Closure: how items end -------------------------------------------------------------------


def _closed_q(f: Filters, *, include_withdrawn: bool) -> Q:
    """Closed items whose closure date is in the window (withdrawn ones only when asked)."""
    closed = Q(status=C.Status.CLOSED, closed_at__isnull=False) & f.window_q("closed_at")
    return closed if include_withdrawn else closed & ~Q(outcome=C.Outcome.WITHDRAWN)


def _closed(qs, f: Filters, *, include_withdrawn: bool) -> QuerySet:
    return f.scope(qs).filter(_closed_q(f, include_withdrawn=include_withdrawn))


def closed_on_time(
    qs=None,
    *,
    practice=None,
    service=None,
    start=None,
    end=None,
    include_withdrawn: bool = False,
    today: dt.date | None = None,
) -> dict[str, Any]:
    """% closed by target date = on_time / (with_target_date + open_past_target) × 100.

    Closed items (withdrawn excluded unless asked) that had a target date count in the window of
    their closure date: on time when their closure date, in the site's time zone, is on or before
    the target date, else late. Open items whose target date has already passed (before `today`)
    have missed it whatever happens next: they count as missed in the window of their target date,
    so that leaving late items open never flatters the figure. Items closed without a target date
    are reported separately and are in neither. `percent` is None when the denominator is 0.
    One query.
    """
    f = _filters(practice, service, start, end)
    today = today or timezone.localdate()
    closed = _closed_q(f, include_withdrawn=include_withdrawn)
    # Open as the complement (C.NOT_OPEN_STATUSES): the target date's index, not the status one.
    past_target = (
        ~Q(status__in=C.NOT_OPEN_STATUSES) & Q(target_date__lt=today) & f.date_window_q("target_date")
    )
    # WHERE the union of the counted rows: the indexes on (status, closed_at) and target_date narrow
    # the read to the window instead of every item (the FILTERs below then split them).
    row = (
        f.scope(qs)
        .filter(closed | past_target)
        .aggregate(
            closed=Count("pk", filter=closed),
            with_target_date=Count("pk", filter=closed & Q(target_date__isnull=False)),
            on_time=Count(
                "pk", filter=closed & Q(target_date__isnull=False, closed_at__date__lte=F("target_date"))
            ),
            open_past_target=Count("pk", filter=past_target),
        )
    )
    row["without_target_date"] = row["closed"] - row["with_target_date"]
    row["late"] = row["with_target_date"] - row["on_time"]
    row["missed"] = row["late"] + row["open_past_target"]
    row["percent"] = _percent(row["on_time"], row["with_target_date"] + row["open_past_target"])
    return row


def cycle_time(
    qs=None, *, practice=None, service=None, start=None, end=None, include_withdrawn: bool = False
) -> dict[str, Any]:
    """Cycle time from identification to closure (closed_at − identified_at), in days.

    Mean: AVG in the database. Median: the middle value (mean of the two middle values for an even
    count), read with ORDER BY … OFFSET so SQLite and PostgreSQL agree. Two queries in all.
    Window: closure date. mean_days / median_days are None when no item closed.
    """
    f = _filters(practice, service, start, end)
    closed = _closed(qs, f, include_withdrawn=include_withdrawn).annotate(cycle=CYCLE)
    row = closed.aggregate(count=Count("pk"), mean=Avg("cycle"))
    n = row["count"]
    result: dict[str, Any] = {"count": n, "mean_days": _days(row["mean"]), "median_days": None}
    if n:
        low = (n - 1) // 2
        middle = list(closed.order_by("cycle", "pk").values_list("cycle", flat=True)[low : low + 2 - n % 2])
        result["median_days"] = _days(sum(middle, dt.timedelta()) / len(middle))
    return result


def outcomes(
    qs=None, *, practice=None, service=None, start=None, end=None, limit: int = 50
) -> dict[str, Any]:
    """Measured outcome of closed items: counts by outcome and by benefit category, and the latest
    `limit` closed items with their realised delta (withdrawn items included: they are an outcome).

    Window: closure date.
    """
    f = _filters(practice, service, start, end)
    closed = _closed(qs, f, include_withdrawn=True)
    by_benefit = _counts_by(closed.exclude(benefit_category=""), "benefit_category", C.BenefitCategory.values)
    items = list(
        closed.order_by("-closed_at", "-pk").values(
            "pk", "title", "outcome", "benefit_category", "realised_delta", "closed_at"
        )[:limit]
    )
    for row in items:  # bounded by `limit`: presentation only
        row["ref"] = f"CI-{row['pk']:05d}"
        if isinstance(row["realised_delta"], Decimal):
            row["realised_delta"] = row["realised_delta"].normalize()
    return {
        "by_outcome": _counts_by(closed, "outcome", C.Outcome.values),
        "by_benefit": by_benefit,
        "with_delta": closed.filter(realised_delta__isnull=False).count(),
        "items": items,
    }


def sustainment(qs=None, *, practice=None, service=None, start=None, end=None) -> dict[str, int]:
    """Closed items by sustainment: holding (in the control period), sustained, slipped, not watched.

    Window: closure date. `slipped_share` is slipped / (sustained + slipped) × 100, None when 0.
    """
    f = _filters(practice, service, start, end)
    row = _closed(qs, f, include_withdrawn=True).aggregate(
        holding=Count("pk", filter=Q(sustainment=C.Sustainment.HOLDING)),
        sustained=Count("pk", filter=Q(sustainment=C.Sustainment.SUSTAINED)),
        slipped=Count("pk", filter=Q(sustainment=C.Sustainment.SLIPPED)),
        not_watched=Count("pk", filter=Q(sustainment=C.Sustainment.NONE)),
    )
    row["slipped_share"] = _percent(row["slipped"], row["sustained"] + row["slipped"])
    return row


# --- Flow ---------------------------------------------------------------------------------------


def _month_start(day: dt.date, back: int = 0) -> dt.date:
    index = day.year * 12 + day.month - 1 - back
    return dt.date(index // 12, index % 12 + 1, 1)


def created_vs_closed(
    qs=None, *, practice=None, service=None, end: dt.date | None = None, months: int = 12
) -> list[dict[str, Any]]:
    """Items identified and items closed per calendar month, for the `months` months ending with the
    month of `end` (default: this month). Months without either are listed with zeros.

    One query: a conditional count per month and kind, between local midnights of the months'
    first days (the site's time zone), over the rows identified or closed in the window (read
    through the indexes on identified_at and (status, closed_at); no per-row month truncation).
    """
    f = _filters(practice, service)
    last = _month_start(end or timezone.localdate())
    firsts = [_month_start(last, back) for back in range(months - 1, -2, -1)]  # + the month after
    bounds = [_local_midnight(day) for day in firsts]

    def between(field: str, low: dt.datetime, high: dt.datetime) -> Q:
        return Q(**{f"{field}__gte": low, f"{field}__lt": high})

    closed = Q(status=C.Status.CLOSED)
    counts: dict[str, Count] = {}
    for n in range(months):
        counts[f"created_{n}"] = Count("pk", filter=between("identified_at", bounds[n], bounds[n + 1]))
        counts[f"closed_{n}"] = Count("pk", filter=closed & between("closed_at", bounds[n], bounds[n + 1]))
    window = between("identified_at", bounds[0], bounds[-1]) | (
        closed & between("closed_at", bounds[0], bounds[-1])
    )
    row = f.scope(qs).filter(window).aggregate(**counts)
    return [
        {
            "month": firsts[n].strftime("%Y-%m"),
            "created": row[f"created_{n}"],
            "closed": row[f"closed_{n}"],
        }
        for n in range(months)
    ]


def open_flags(qs=None, *, practice=None, service=None, now: dt.datetime | None = None) -> dict[str, int]:
    """Open items flagged for attention, as of `now`: stale, overdue, due soon, blocked, escalated.

    An item may carry several flags; each count is independent. One query.
    """
    f = _filters(practice, service)
    now = now or timezone.now()
    today = timezone.localdate(now)
    stale_before = now - dt.timedelta(days=settings.TIKTING_STALE_DAYS)
    # Aliases carry a prefix: "blocked" is also a field, and an alias may not shadow one.
    row = (
        f.scope(qs)
        .open()
        .aggregate(
            n_open=Count("pk"),
            n_stale=Count("pk", filter=Q(last_activity_at__lt=stale_before)),
            n_overdue=Count("pk", filter=Q(target_date__lt=today)),
            n_due_soon=Count("pk", filter=Q(due_soon_from__lte=today, target_date__gte=today)),
            n_blocked=Count("pk", filter=Q(blocked=True)),
            n_escalated=Count("pk", filter=Q(blocked=True, escalated_at__isnull=False)),
        )
    )
    return {key.removeprefix("n_"): value for key, value in row.items()}


def practice_metrics(
    qs=None,
    *,
    practice=None,
    service=None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Every practice metric at once: what the dashboard and GET /api/governance/practice-metrics show."""
    f: dict[str, Any] = {"practice": practice, "service": service, "start": start, "end": end}
    return {
        "totals": totals(qs, **f),
        "by_status": items_by_status(qs, **f),
        "by_quadrant": items_by_quadrant(qs, **f),
        "closed_on_time": closed_on_time(qs, **f, today=timezone.localdate(now) if now else None),
        "cycle_time": cycle_time(qs, **f),
        "outcomes": outcomes(qs, **f),
        "sustainment": sustainment(qs, **f),
        "created_vs_closed": created_vs_closed(qs, practice=practice, service=service, end=end),
        "flags": open_flags(qs, practice=practice, service=service, now=now),
    }
