"""The monthly review agenda, generated from the register with the Item.objects helpers.

Each section costs two queries whatever the size of the register: one COUNT and one limited
SELECT (owner and service joined in). The agenda is a read: it changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.db.models import F, QuerySet
from django.utils import timezone

from tikting.improvement.models import Item
from tikting.improvement.querysets import ItemQuerySet

from .models import Minute, ReviewMeeting, ReviewStatus

DEFAULT_LIMIT = 25
RECENTLY_CLOSED_DAYS = 30  # when no review was held yet

# The columns an agenda row shows (HTML and API): long texts and unused columns stay in the database,
# which keeps the sort of each section's candidates small.
ROW_FIELDS = (
    "id",
    "title",
    "status",
    "practice",
    "quadrant",
    "service__name",
    "owner__username",
    "owner__first_name",
    "owner__last_name",
    "target_date",
    "blocked",
    "blocker",
    "blocked_since",
    "escalated_at",
    "last_activity_at",
    "revisit_date",
    "assessment_reason",
    "identified_at",
    "outcome",
    "benefit_category",
    "realised_delta",
    "closed_at",
    "slipped_at",
    "control_until",
    "sustainment",
)


@dataclass(frozen=True)
class SectionSpec:
    key: str
    title: str
    help: str
    select: Callable[[ItemQuerySet, dt.datetime, dt.datetime], QuerySet]  # (items, now, since) → rows
    register_filter: dict[str, str]


@dataclass
class Section:
    key: str
    title: str
    help: str
    count: int
    items: list[Item]
    register_url: str
    more: int = field(init=False)

    def __post_init__(self) -> None:
        self.more = max(self.count - len(self.items), 0)


def _today(now: dt.datetime) -> dt.date:
    return timezone.localdate(now)


SECTIONS: tuple[SectionSpec, ...] = (
    SectionSpec(
        "assess",
        "New items to assess",
        "Submitted and not assessed yet, and deferred items whose revisit date has come.",
        lambda qs, now, since: (qs.to_assess() | qs.deferred_due(_today(now))).order_by(
            "identified_at", "id"
        ),
        {"status": "all", "flag": "to_assess"},
    ),
    SectionSpec(
        "blocked",
        "Blocked and escalated",
        "Open items that are blocked; those escalated to the register owner first.",
        lambda qs, now, since: qs.blocked().order_by(
            F("escalated_at").desc(nulls_last=True), F("blocked_since").asc(nulls_last=True), "id"
        ),
        {"flag": "blocked"},
    ),
    SectionSpec(
        "overdue",
        "Overdue",
        "Open items past their target date, the longest overdue first.",
        lambda qs, now, since: qs.overdue(_today(now)).order_by("target_date", "id"),
        {"flag": "overdue"},
    ),
    SectionSpec(
        "stale",
        "Stale",
        "Open items without any activity for the stale period.",
        lambda qs, now, since: qs.stale(now).order_by("last_activity_at", "id"),
        {"flag": "stale"},
    ),
    SectionSpec(
        "measurement_due",
        "Measurement due",
        "Items acting, evaluating or under sustainment watch, not measured for the measurement interval.",
        lambda qs, now, since: qs.measurement_due(now).order_by(
            F("last_measured_at").asc(nulls_first=True), "id"
        ),
        {"flag": "measurement_due"},
    ),
    SectionSpec(
        "slipped",
        "Slipped after closure",
        "Closed items whose indicator slid back during the control period (sustainment).",
        lambda qs, now, since: qs.slipped().order_by(F("slipped_at").desc(nulls_last=True), "id"),
        {"flag": "slipped"},
    ),
    SectionSpec(
        "due_soon",
        "Due soon",
        "Open items with less than 15 % of their time to target left.",
        lambda qs, now, since: qs.due_soon(_today(now)).order_by("target_date", "id"),
        {"flag": "due_soon"},
    ),
    SectionSpec(
        "closed",
        "Recently closed, with outcomes",
        "Closed since the last review held (or the last 30 days).",
        lambda qs, now, since: qs.recently_closed(since).order_by("-closed_at", "-id"),
        {"status": "closed"},
    ),
)
SECTION_KEYS = tuple(spec.key for spec in SECTIONS)


def last_held_review() -> ReviewMeeting | None:
    return (
        ReviewMeeting.objects.filter(status=ReviewStatus.HELD, held_at__isnull=False)
        .order_by("-held_at", "-id")
        .first()
    )


def closed_since(now: dt.datetime) -> tuple[dt.datetime, ReviewMeeting | None]:
    last = last_held_review()
    if last is not None and last.held_at:
        return last.held_at, last
    return now - dt.timedelta(days=RECENTLY_CLOSED_DAYS), None


def build_agenda(
    user=None,
    *,
    now: dt.datetime | None = None,
    limit: int = DEFAULT_LIMIT,
    only: str | None = None,
    since: dt.datetime | None = None,
) -> list[Section]:
    """The agenda's sections (all, or only the one keyed `only`), each with its count and first rows."""
    now = now or timezone.now()
    if since is None:
        since, _ = closed_since(now)
    items = Item.objects.all() if user is None else Item.objects.visible_to(user)
    items = items.select_related("owner", "service").only(*ROW_FIELDS)
    sections = []
    for spec in SECTIONS:
        if only and spec.key != only:
            continue
        rows = spec.select(items, now, since)
        sections.append(
            Section(
                key=spec.key,
                title=spec.title,
                help=spec.help,
                count=rows.count(),
                items=list(rows[:limit]),
                register_url=f"/register/?{urlencode(spec.register_filter)}",
            )
        )
    return sections


def attach_minutes(sections: list[Section], meeting: ReviewMeeting | None) -> None:
    """Give every agenda row `meeting_minutes`: what this meeting decided about it (one query)."""
    rows = [item for section in sections for item in section.items]
    by_item: dict[int, list[Minute]] = {}
    if meeting is not None and rows:
        minutes = Minute.objects.filter(meeting=meeting, item_id__in={i.pk for i in rows}).order_by(
            "at", "id"
        )
        for minute in minutes:
            by_item.setdefault(minute.item_id, []).append(minute)
    for item in rows:
        item.meeting_minutes = by_item.get(item.pk, [])  # type: ignore[attr-defined]
