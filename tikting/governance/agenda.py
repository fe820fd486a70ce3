"""The monthly review agenda, generated from the register with the Item.objects helpers.

Each section costs two queries whatever the size of the register: one COUNT and one limited
SELECT (owner and service joined in). The agenda is a read: it changes nothing. When a review is
held, freeze_agenda() keeps the agenda as it stood (plain values, the reason each item is on it
in words) with the review: the record of what was on the table, however the register moves on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.db.models import F, QuerySet
from django.utils import timezone

from tikting.improvement import choices as IC
from tikting.improvement.models import Item
from tikting.improvement.querysets import ItemQuerySet
from tikting.lib.display import number, when

from .models import Minute, ReviewMeeting, ReviewStatus
from .notices import agenda_notices, as_json

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
    """The last review that took place: held, or held and since closed (its record final)."""
    return (
        ReviewMeeting.objects.filter(
            status__in=[ReviewStatus.HELD, ReviewStatus.CLOSED], held_at__isnull=False
        )
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
    identified_by: dt.datetime | None = None,
    identified_after: dt.datetime | None = None,
    exclude_ids: QuerySet | None = None,
) -> list[Section]:
    """The agenda's sections (all, or only the one keyed `only`), each with its count and first rows.
    `identified_by` leaves out items identified later (an agenda of the past); `identified_after`
    keeps only items identified later (what reached the agenda since it was circulated)."""
    now = now or timezone.now()
    if since is None:
        since, _ = closed_since(now)
    items = Item.objects.all() if user is None else Item.objects.visible_to(user)
    if identified_by is not None:  # an agenda of the past leaves out items identified since
        items = items.filter(identified_at__lte=identified_by)
    if identified_after is not None:
        items = items.filter(identified_at__gt=identified_after)
    if exclude_ids is not None:
        items = items.exclude(pk__in=exclude_ids)
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


# --- The agenda of a held review, frozen ------------------------------------------------------


def _day(value: dt.datetime | dt.date | None) -> str:
    return when(value, "date")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def why_on_agenda(item: Item, section: str, now: dt.datetime) -> str:
    """Why `item` is in `section` of the agenda at `now`, in words (what the frozen agenda keeps)."""
    today = timezone.localdate(now)
    if section == "assess":
        if item.status == IC.Status.DEFERRED:
            return f"deferred, revisit {_day(item.revisit_date)}: {item.assessment_reason}".strip(": ")
        return f"submitted {_day(item.identified_at)}, {item.get_quadrant_display().lower()}"
    if section == "blocked":
        escalated = f"escalated {_day(item.escalated_at)}; " if item.escalated_at else ""
        return f"{escalated}blocked since {_day(item.blocked_since)}: {item.blocker}"
    if section == "overdue" and item.target_date:
        return f"overdue by {_plural((today - item.target_date).days, 'day')}"
    if section == "stale":
        return f"no activity since {_day(item.last_activity_at)}"
    if section == "measurement_due":
        last = getattr(item, "last_measured_at", None)
        return f"last measured {_day(last)}" if last else "never measured"
    if section == "slipped":
        return f"slipped {_day(item.slipped_at)}, watched until {_day(item.control_until)}"
    if section == "due_soon" and item.target_date:
        days = (item.target_date - today).days
        return "due today" if days == 0 else f"due in {_plural(days, 'day')}"
    if section == "closed":
        delta = "" if item.realised_delta is None else f", delta {number(item.realised_delta)}"
        return f"{item.get_outcome_display()}{delta}, closed {_day(item.closed_at)}"
    return ""


def _frozen_sections(sections: list[Section], now: dt.datetime) -> list[dict[str, object]]:
    return [
        {
            "key": section.key,
            "title": section.title,
            "help": section.help,
            "count": section.count,
            "items": [
                {
                    "id": item.pk,
                    "ref": item.ref,
                    "title": item.title,
                    "status": item.status,
                    "status_label": item.get_status_display(),
                    "owner": str(item.owner) if item.owner else "",
                    "service": str(item.service) if item.service else "",
                    "practice": item.get_practice_display() if item.practice else "",
                    "target_date": _day(item.target_date),
                    "why": why_on_agenda(item, section.key, now),
                }
                for item in section.items
            ],
        }
        for section in sections
    ]


def freeze_agenda(*, now: dt.datetime, since: dt.datetime, limit: int = DEFAULT_LIMIT) -> dict[str, object]:
    """The whole agenda at `now` as plain JSON values: each section with its count and first
    `limit` items (reference, title, status, owner, service, target date, why it is there), and
    the notices other apps registered (notices.py: the capacity flags)."""
    sections = build_agenda(None, now=now, since=since, limit=limit, identified_by=now)
    return {
        "generated_at": now.isoformat(),
        "closed_since": since.isoformat(),
        "sections": _frozen_sections(sections, now),
        "notices": as_json(agenda_notices(now)),
    }


def added_since_circulation(
    meeting: ReviewMeeting, *, now: dt.datetime, user=None, limit: int = DEFAULT_LIMIT
) -> list[Section]:
    """The sections of the agenda at `now` holding items added to the register after the
    meeting's agenda was circulated (non-empty sections only): shown beside the circulated agenda
    as "added since circulation", never merged into it. The items the meeting itself raised as
    action items are its outcome, not additions, and are left out. Empty when not circulated."""
    if meeting.circulated_at is None:
        return []
    since = meeting.agenda_since()
    raised = meeting.action_items.filter(raised_item=True, item__isnull=False).values("item_id")
    sections = build_agenda(
        user, now=now, since=since, limit=limit, identified_after=meeting.circulated_at, exclude_ids=raised
    )
    return [section for section in sections if section.count]


def freeze_added_since_circulation(meeting: ReviewMeeting, *, now: dt.datetime) -> list[dict[str, object]]:
    """added_since_circulation as kept with the review when it is held."""
    return _frozen_sections(added_since_circulation(meeting, now=now), now)
