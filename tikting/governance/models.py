"""Governance of the register: monthly review meetings and the minutes recorded against items."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone

from tikting.core.bounds import long_text
from tikting.improvement.choices import Status as ItemStatus

__all__ = ["MeetingAction", "MinuteKind", "Minute", "ReviewMeeting", "ReviewStatus"]


class ReviewStatus(models.TextChoices):
    """planned → agenda circulated (the agenda frozen and sent to the attendees before the
    meeting) → held (minutes still editable) → closed (the record is final: a change is an
    amendment, kept beside what it amends). A review may be held without circulating its agenda
    first: then the agenda is frozen when it is held."""

    PLANNED = "planned", "Planned"
    CIRCULATED = "circulated", "Agenda circulated"
    HELD = "held", "Held"
    CLOSED = "closed", "Closed"


class MinuteKind(models.TextChoices):
    """What a review decided about one item. accept / defer / reject take effect (assessment);
    assign sets the owner; the others are decisions recorded for the item's owner to act on."""

    NOTE = "note", "Note"
    ACCEPT = "accept", "Accept"
    DEFER = "defer", "Defer"
    REJECT = "reject", "Reject"
    CONTINUE = "continue", "Continue"
    ADJUST = "adjust", "Adjust"
    ESCALATE = "escalate", "Escalate"
    CLOSE = "close", "Close"
    ASSIGN = "assign", "Assign owner"
    # Written against an earlier minute (`amends`), never chosen as a decision of their own.
    AMEND = "amend", "Amendment"
    UNACCEPT = "unaccept", "Acceptance undone"


ASSESSMENT_KINDS = frozenset({MinuteKind.ACCEPT, MinuteKind.DEFER, MinuteKind.REJECT})
# The decisions a review records about an item (forms, API); the others amend a minute.
DECISION_KINDS = tuple(k for k in MinuteKind if k not in {MinuteKind.AMEND, MinuteKind.UNACCEPT})


# --- Review meetings ----------------------------------------------------------------------------


class ReviewMeeting(models.Model):
    """A register review (ITIL 4 continual improvement governance): usually monthly, chaired by the
    improvement manager, working through the agenda generated from the register."""

    title = models.CharField(max_length=200)
    scheduled_for = models.DateField(default=timezone.localdate, db_index=True)
    chair = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # When the meeting starts, in settings.TIME_ZONE (empty: a day, no time set); how long it lasts.
    start_time = models.TimeField(null=True, blank=True)
    duration_minutes = models.PositiveSmallIntegerField(
        default=60, validators=[MinValueValidator(5), MaxValueValidator(600)]
    )
    status = models.CharField(max_length=10, choices=ReviewStatus.choices, default=ReviewStatus.PLANNED)
    # Who attended and who sent apologies (editable until the review is closed).
    attendees = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="reviews_attended")
    apologies = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="reviews_excused")
    # The circulation of the agenda before the meeting: when, and to whom as they were then
    # ([{"id", "name", "email"}]); the circulated agenda is `agenda`.
    circulated_at = models.DateTimeField(null=True, blank=True)
    circulated_to = models.JSONField(default=list, blank=True, editable=False)
    held_at = models.DateTimeField(null=True, blank=True, db_index=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    notes = models.TextField(blank=True, validators=long_text())
    # The agenda as it stood when it was circulated, or when the review was held if it was not
    # circulated (agenda.freeze_agenda): the record of what was on the table, which the printable
    # view reads instead of today's register. Holding a circulated review adds the items that
    # reached the agenda after the circulation ("added_since_circulation") without changing it.
    agenda = models.JSONField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Optimistic concurrency of the attendance (and every other change through the services).
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["-scheduled_for", "-id"]
        indexes = [models.Index(fields=["status", "-scheduled_for"])]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("governance:review_detail", args=[self.pk])

    @property
    def is_planned(self) -> bool:
        return self.status == ReviewStatus.PLANNED

    @property
    def is_circulated(self) -> bool:
        return self.status == ReviewStatus.CIRCULATED

    @property
    def is_upcoming(self) -> bool:
        """Not held yet: planned, or its agenda circulated."""
        return self.status in {ReviewStatus.PLANNED, ReviewStatus.CIRCULATED}

    @property
    def is_closed(self) -> bool:
        return self.status == ReviewStatus.CLOSED

    def starts_at(self) -> dt.datetime | None:
        """The start as an aware datetime in settings.TIME_ZONE (None without a start time)."""
        if self.start_time is None:
            return None
        return dt.datetime.combine(self.scheduled_for, self.start_time, tzinfo=ZoneInfo(settings.TIME_ZONE))

    def agenda_since(self) -> dt.datetime | None:
        """The frozen agenda's "closed since" moment (None when nothing is frozen)."""
        if not self.agenda or not self.agenda.get("closed_since"):
            return None
        return dt.datetime.fromisoformat(self.agenda["closed_since"])


# --- Minutes ------------------------------------------------------------------------------------


class Minute(models.Model):
    """One decision or note of a review about one register item (a journal entry of the review).

    `effect` says what the decision changed on the item when it took effect (assessment, owner),
    empty for decisions recorded for the owner to act on. `item_ref`, `item_title`, `item_status`
    and `item_owner` keep the item as it was when the minute was taken: the record reads them, not
    today's register. An amendment (or an acceptance undone) points at the minute it amends.
    """

    meeting = models.ForeignKey(ReviewMeeting, on_delete=models.CASCADE, related_name="minutes")
    item = models.ForeignKey("improvement.Item", on_delete=models.CASCADE, related_name="review_minutes")
    kind = models.CharField(max_length=10, choices=MinuteKind.choices, default=MinuteKind.NOTE)
    text = models.TextField(blank=True, validators=long_text())
    effect = models.CharField(max_length=200, blank=True)
    amends = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="amendments"
    )
    item_ref = models.CharField(max_length=16, blank=True)
    item_title = models.CharField(max_length=200, blank=True)
    item_status = models.CharField(max_length=16, blank=True)
    item_owner = models.CharField(max_length=200, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [
            models.Index(fields=["item", "at"]),
            models.Index(fields=["meeting", "item"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.item.ref}" if self.item_id else self.get_kind_display()

    @property
    def item_status_label(self) -> str:
        """The item's status when the minute was taken, as the register names it."""
        if self.item_status in ItemStatus.values:
            return str(ItemStatus(self.item_status).label)
        return self.item_status


# --- Action items of a meeting ---------------------------------------------------------------------


class MeetingAction(models.Model):
    """An action item a review gave someone, with an owner and a due date. It lives in the
    register: on an existing item it is that item's Action (`action`); otherwise it raised a new
    register item (`item`, `raised_item` true). The meeting page reads their current state from
    the register; `title` and `item_ref` keep what the meeting decided."""

    meeting = models.ForeignKey(ReviewMeeting, on_delete=models.CASCADE, related_name="action_items")
    title = models.CharField(max_length=200)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    due_date = models.DateField()
    item = models.ForeignKey(
        "improvement.Item", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.ForeignKey(
        "improvement.Action", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    raised_item = models.BooleanField(default=False)
    item_ref = models.CharField(max_length=16, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return self.title

    def state(self, today: dt.date | None = None) -> tuple[str, str]:
        """(key, words) of where it stands in the register now: open, overdue, done, cancelled
        for an action; the item's status for a raised item; gone when the register lost it."""
        if self.raised_item:
            if self.item is None:
                return "gone", "Item deleted"
            return ("closed" if not self.item.is_open else "open"), self.item.get_status_display()
        if self.action is None:
            return "gone", "Action removed from the item"
        if self.action.done:
            return "done", "Done"
        if self.action.cancelled:
            return "cancelled", f"Cancelled: {self.action.cancel_reason}"
        if self.action.is_overdue(today):
            return "overdue", "Overdue"
        return "open", "Open"
