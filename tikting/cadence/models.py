"""Improvement sprints: a team's time-boxed push on a few register items.

A sprint lasts two to four weeks, belongs to one team (accounts.Team), has a goal and a small scope
of register items (SprintItem, one card on the sprint board each). The people doing the work log
the hours they spend on an item (TimeLog). The sprint review records what changed, the measured
result per item and a decision per item (continue / adjust / close); unfinished items go back to
the register or into the next sprint, explicitly.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q, Sum
from django.urls import reverse

from tikting.core.bounds import long_text
from tikting.lib import display

MIN_DAYS = 14  # two weeks
MAX_DAYS = 28  # four weeks


def max_items() -> int:
    """The scope beyond which planning warns and asks for a reason (TIKTING_SPRINT_MAX_ITEMS)."""
    return int(getattr(settings, "TIKTING_SPRINT_MAX_ITEMS", 5))


class SprintStatus(models.TextChoices):
    PLANNED = "planned", "Planned"
    ACTIVE = "active", "Active"
    CLOSED = "closed", "Reviewed and closed"


class Column(models.TextChoices):
    TODO = "todo", "To do"
    DOING = "doing", "Doing"
    DONE = "done", "Done"


class Decision(models.TextChoices):
    CONTINUE = "continue", "Continue"
    ADJUST = "adjust", "Adjust"
    CLOSE = "close", "Close"


class Disposition(models.TextChoices):
    """Where a card goes after the review."""

    REGISTER = "register", "Back to the register"
    NEXT_SPRINT = "next_sprint", "Into the next sprint"
    CLOSED = "closed", "Closed: no more sprint work"


class SprintQuerySet(models.QuerySet["Sprint"]):
    def open(self) -> SprintQuerySet:
        return self.exclude(status=SprintStatus.CLOSED)

    def closed(self) -> SprintQuerySet:
        return self.filter(status=SprintStatus.CLOSED)

    def with_figures(self) -> SprintQuerySet:
        """Each sprint with its scope, items done, hours planned and hours logged (aggregates)."""
        return self.annotate(
            item_count=models.Count("cards", distinct=True),
            done_count=models.Count("cards", filter=Q(cards__column=Column.DONE), distinct=True),
            hours_planned=models.Subquery(
                SprintItem.objects.filter(sprint=models.OuterRef("pk"))
                .values("sprint")
                .annotate(total=Sum("planned_hours"))
                .values("total")[:1]
            ),
            hours_logged=models.Subquery(
                TimeLog.objects.filter(card__sprint=models.OuterRef("pk"))
                .values("card__sprint")
                .annotate(total=Sum("hours"))
                .values("total")[:1]
            ),
        ).order_by("-start", "-id")  # Meta.ordering does not apply to aggregate queries


class Sprint(models.Model):
    """An improvement sprint (PRODUCT.md §4): two to four weeks of one team's protected
    improvement time on a small scope of register items, with a goal, a board and a review."""

    team = models.ForeignKey("accounts.Team", on_delete=models.PROTECT, related_name="sprints")
    name = models.CharField(max_length=120)
    goal = models.TextField(validators=long_text())
    start = models.DateField()
    end = models.DateField(help_text="Last day of the sprint")
    status = models.CharField(max_length=10, choices=SprintStatus.choices, default=SprintStatus.PLANNED)
    over_scope_reason = models.TextField(
        blank=True, validators=long_text(), help_text="Why the scope goes past the configured size"
    )
    what_changed = models.TextField(blank=True, validators=long_text())
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    version = models.PositiveIntegerField(default=1)

    objects = SprintQuerySet.as_manager()

    class Meta:
        ordering = ["-start", "-id"]
        indexes = [models.Index(fields=["team", "start"])]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("cadence:sprint_detail", args=[self.pk])

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def is_closed(self) -> bool:
        return self.status == SprintStatus.CLOSED

    def contains(self, day: dt.date) -> bool:
        return self.start <= day <= self.end


class SprintItem(models.Model):
    """A register item in a sprint's scope: one card on the board, with the hours planned for it
    and, after the review, the measured result, the decision and where it went."""

    sprint = models.ForeignKey(Sprint, on_delete=models.CASCADE, related_name="cards")
    item = models.ForeignKey("improvement.Item", on_delete=models.PROTECT, related_name="sprint_cards")
    column = models.CharField(max_length=8, choices=Column.choices, default=Column.TODO)
    position = models.PositiveIntegerField(default=0)
    planned_hours = models.DecimalField(max_digits=7, decimal_places=2, default=Decimal("0"))
    decision = models.CharField(max_length=10, choices=Decision.choices, blank=True)
    decision_note = models.TextField(blank=True, validators=long_text())
    disposition = models.CharField(max_length=12, choices=Disposition.choices, blank=True)
    # The measured result at the review, as it stood then (indicator, baseline, target, latest).
    result = models.JSONField(default=dict, blank=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["column", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["sprint", "item"], name="cadence_card_once_per_sprint")
        ]

    def __str__(self) -> str:
        return f"{self.item.ref} in {self.sprint}"


class TimeLog(models.Model):
    """Hours someone spent on a sprint item on one day, logged by that person (or by a manager
    for them: `logged_by` says who typed it)."""

    card = models.ForeignKey(SprintItem, on_delete=models.CASCADE, related_name="time_logs")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="time_logs")
    logged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    day = models.DateField(db_index=True)
    hours = models.DecimalField(max_digits=5, decimal_places=2)
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-day", "-id"]

    def __str__(self) -> str:
        return f"{display.number(self.hours)} h by {self.user} on {display.when(self.day)}"


class CalendarFeed(models.Model):
    """A person's secret calendar-feed address (iCalendar): the token is in the URL, so calendar
    programs can subscribe without signing in. Only its hash is kept; revoking ends it."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_feeds"
    )
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Calendar feed of {self.user}"

    @staticmethod
    def hash(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()
