"""Governance of the register: monthly review meetings and the minutes recorded against items."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from tikting.core.bounds import long_text
from tikting.improvement.choices import Status as ItemStatus

__all__ = ["MinuteKind", "Minute", "ReviewMeeting", "ReviewStatus"]


class ReviewStatus(models.TextChoices):
    """planned → held (the agenda is frozen as it stood; minutes still editable) → closed (the
    record is final: a change is an amendment, kept beside what it amends)."""

    PLANNED = "planned", "Planned"
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
    status = models.CharField(max_length=10, choices=ReviewStatus.choices, default=ReviewStatus.PLANNED)
    held_at = models.DateTimeField(null=True, blank=True, db_index=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    notes = models.TextField(blank=True, validators=long_text())
    # The agenda as it stood when the review was held (agenda.freeze_agenda): the record of what
    # was on the table, which the printable view reads instead of today's register.
    agenda = models.JSONField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

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
    def is_closed(self) -> bool:
        return self.status == ReviewStatus.CLOSED


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
