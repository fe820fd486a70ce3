"""Governance of the register: monthly review meetings and the minutes recorded against items."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

__all__ = ["MinuteKind", "Minute", "ReviewMeeting", "ReviewStatus"]


class ReviewStatus(models.TextChoices):
    PLANNED = "planned", "Planned"
    HELD = "held", "Held"


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


ASSESSMENT_KINDS = frozenset({MinuteKind.ACCEPT, MinuteKind.DEFER, MinuteKind.REJECT})


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
    notes = models.TextField(blank=True)
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


# --- Minutes ------------------------------------------------------------------------------------


class Minute(models.Model):
    """One decision or note of a review about one register item (a journal entry of the review).

    `effect` says what the decision changed on the item when it took effect (assessment, owner),
    empty for decisions recorded for the owner to act on.
    """

    meeting = models.ForeignKey(ReviewMeeting, on_delete=models.CASCADE, related_name="minutes")
    item = models.ForeignKey("improvement.Item", on_delete=models.CASCADE, related_name="review_minutes")
    kind = models.CharField(max_length=10, choices=MinuteKind.choices, default=MinuteKind.NOTE)
    text = models.TextField(blank=True)
    effect = models.CharField(max_length=200, blank=True)
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
