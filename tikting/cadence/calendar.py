"""iCalendar feeds (RFC 5545, written with `icalendar`): a person's and a team's dates.

A person's feed: the reviews of the sprints of their team and of sprints holding items they own
(all-day, on the sprint's last day), the due dates of their open actions, the target dates of
the indicators they measure or whose item they own, and the register review meetings they chair
or attend. A team's feed: its sprints (start and review) and the review meetings one of its
members chairs or attends (the register review is the organisation's, not a team's: a team sees
the ones it takes part in).

Dates are all-day (VALUE=DATE): a due date is a day wherever the reader is, so no time zone
shifts it. A review meeting with a start time is a timed event in settings.TIME_ZONE (DTSTART
with TZID and the VTIMEZONE it names, so a reader elsewhere sees it at their own hour); without
one it is all-day. DTSTAMP is UTC. UIDs are stable (kind-id@tikting), so a calendar program
updates an event rather than adding a copy; a review whose agenda was circulated, held or closed
carries it in its description, and its SEQUENCE follows the review's version.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from tikting.accounts.models import Team, User
from tikting.core import audit
from tikting.governance.models import ReviewMeeting, ReviewStatus
from tikting.improvement.models import Action, Indicator

from .models import CalendarFeed, Sprint

if TYPE_CHECKING:  # loaded where a feed is written, not in every web worker (about 4 MB)
    from icalendar import Event

PRODID = "-//tikting//cadence calendar//EN"


@transaction.atomic
def issue_feed(user: User) -> tuple[CalendarFeed, str]:
    """A new secret feed address for `user`, revoking the previous ones (one live feed a person).
    Returns the row and the raw token, shown once. Records the change in the user's history."""
    now = timezone.now()
    CalendarFeed.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=now)
    raw = "cal_" + secrets.token_urlsafe(24)
    feed = CalendarFeed.objects.create(user=user, key_hash=CalendarFeed.hash(raw))
    audit.record(feed, action="create", actor=user, root=user, message="Calendar feed address issued")
    return feed, raw


@transaction.atomic
def revoke_feeds(user: User) -> int:
    """End every live feed of `user`; their calendar programs get 404 from now on."""
    live = list(CalendarFeed.objects.filter(user=user, revoked_at__isnull=True))
    for feed in live:
        feed.revoked_at = timezone.now()
        feed.save(update_fields=["revoked_at"])
        audit.record(feed, action="update", actor=user, root=user, message="Calendar feed revoked")
    return len(live)


def feed_user(raw: str) -> User | None:
    feed = (
        CalendarFeed.objects.filter(
            key_hash=CalendarFeed.hash(raw), revoked_at__isnull=True, user__is_active=True
        )
        .select_related("user")
        .first()
    )
    return feed.user if feed else None


def _event(uid: str, day: dt.date, summary: str, url: str, base_url: str, stamp: dt.datetime) -> Event:
    from icalendar import Event

    event = Event()
    event.add("uid", f"{uid}@tikting")
    event.add("dtstamp", stamp)
    event.add("dtstart", day)
    event.add("dtend", day + dt.timedelta(days=1))
    event.add("summary", summary)
    event.add("url", base_url + url)
    event.add("transp", "TRANSPARENT")  # a date to know, not time taken
    return event


def _calendar(name: str, events: Iterable[Event]) -> bytes:
    from icalendar import Calendar

    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", name)
    for event in events:
        cal.add_component(event)
    cal.add_missing_timezones()  # a VTIMEZONE for every TZID the timed events name
    return cal.to_ical()


def _sprint_events(sprints: Iterable[Sprint], base_url: str, stamp: dt.datetime) -> list[Event]:
    events = []
    for sprint in sprints:
        url = sprint.get_absolute_url()
        events.append(
            _event(
                f"sprint-{sprint.pk}-start", sprint.start, f"Sprint starts: {sprint}", url, base_url, stamp
            )
        )
        events.append(
            _event(f"sprint-{sprint.pk}-review", sprint.end, f"Sprint review: {sprint}", url, base_url, stamp)
        )
    return events


REVIEW_STATE: dict[str, str] = {
    ReviewStatus.PLANNED: "agenda not circulated yet",
    ReviewStatus.CIRCULATED: "agenda circulated",
    ReviewStatus.HELD: "held",
    ReviewStatus.CLOSED: "held; minutes final",
}


def _review_events(reviews: Iterable[ReviewMeeting], base_url: str, stamp: dt.datetime) -> list[Event]:
    from icalendar import Event

    events = []
    for review in reviews:
        url = review.get_absolute_url()
        start = review.starts_at()
        if start is None:
            event = _event(
                f"review-{review.pk}",
                review.scheduled_for,
                f"Register review: {review}",
                url,
                base_url,
                stamp,
            )
        else:
            event = Event()
            event.add("uid", f"review-{review.pk}@tikting")
            event.add("dtstamp", stamp)
            event.add("dtstart", start)
            event.add("dtend", start + dt.timedelta(minutes=review.duration_minutes))
            event.add("summary", f"Register review: {review}")
            event.add("url", base_url + url)
        chair = f"Chair: {review.chair}. " if review.chair else ""
        event.add("description", f"{chair}Status: {REVIEW_STATE.get(review.status, review.status)}.")
        event.add("sequence", review.version)
        events.append(event)
    return events


def _reviews(members: Q) -> Iterable[ReviewMeeting]:
    return (
        ReviewMeeting.objects.filter(members)
        .select_related("chair")
        .distinct()
        .order_by("scheduled_for", "pk")
    )


def user_feed(user: User, base_url: str, now: dt.datetime | None = None) -> bytes:
    stamp = now or timezone.now()
    sprints = (
        Sprint.objects.filter(Q(team_id=user.team_id) | Q(cards__item__owner=user))
        .distinct()
        .order_by("start", "pk")
    )
    if user.team_id is None:
        sprints = sprints.filter(cards__item__owner=user)
    events = _sprint_events(sprints, base_url, stamp)
    actions = Action.objects.filter(
        owner=user, done=False, cancelled=False, due_date__isnull=False
    ).select_related("item")
    for action in actions:
        if action.due_date is None:  # excluded by the query; says so to the type checker
            continue
        events.append(
            _event(
                f"action-{action.pk}",
                action.due_date,
                f"Action due: {action.title} ({action.item.ref})",
                action.item.get_absolute_url(),
                base_url,
                stamp,
            )
        )
    indicators = (
        Indicator.objects.filter(Q(owner=user) | Q(item__owner=user), target_date__isnull=False)
        .select_related("item")
        .distinct()
    )
    for indicator in indicators:
        if indicator.target_date is None:
            continue
        events.append(
            _event(
                f"indicator-{indicator.pk}-target",
                indicator.target_date,
                f"Measure against target: {indicator.name} ({indicator.item.ref})",
                indicator.item.get_absolute_url(),
                base_url,
                stamp,
            )
        )
    events.extend(_review_events(_reviews(Q(chair=user) | Q(attendees=user)), base_url, stamp))
    return _calendar(f"tikting: {user}", events)


def team_feed(team: Team, base_url: str, now: dt.datetime | None = None) -> bytes:
    stamp = now or timezone.now()
    events = _sprint_events(team.sprints.order_by("start", "pk"), base_url, stamp)
    events.extend(_review_events(_reviews(Q(chair__team=team) | Q(attendees__team=team)), base_url, stamp))
    return _calendar(f"tikting: {team}", events)
