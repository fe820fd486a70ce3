"""The Continual Improvement Register: items, indicators, measurements, actions, comments, source links."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone

from tikting.core.bounds import long_text
from tikting.lib import display

from . import choices as C
from .querysets import ItemQuerySet

__all__ = ["Item", "Indicator", "Measurement", "Action", "Comment", "SourceLink"]

RATING = [MinValueValidator(1), MaxValueValidator(5)]
MAX_GAP_DETAILS = 5  # actions named in one gap; the rest are counted


class Item(models.Model):
    """One improvement opportunity in the register."""

    # What
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, validators=long_text())
    practice = models.CharField(max_length=20, choices=C.Practice.choices, blank=True)
    service = models.ForeignKey(
        "cmdb.Service", null=True, blank=True, on_delete=models.PROTECT, related_name="improvement_items"
    )
    justification = models.TextField(blank=True, validators=long_text())
    justification_type = models.CharField(
        max_length=12, choices=C.JustificationType.choices, default=C.JustificationType.OPERATIONAL
    )
    vision = models.TextField(
        blank=True, validators=long_text(), help_text="Step 1: the business outcome this serves"
    )
    expected_outcome = models.TextField(blank=True, validators=long_text())

    # Priority: impact × effort, and a manual rank on top
    impact = models.PositiveSmallIntegerField(default=3, validators=RATING)
    effort = models.PositiveSmallIntegerField(default=3, validators=RATING)
    quadrant = models.CharField(max_length=16, choices=C.Quadrant.choices, editable=False)
    priority_score = models.PositiveSmallIntegerField(default=0, editable=False, db_index=True)
    rank = models.PositiveIntegerField(null=True, blank=True, help_text="Manual backlog order, 1 first")

    # Who and when
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="owned_items"
    )
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    identified_at = models.DateTimeField(default=timezone.now, db_index=True)
    target_date = models.DateField(null=True, blank=True, db_index=True)
    review_milestone = models.CharField(max_length=120, blank=True)
    due_soon_from = models.DateField(null=True, blank=True, editable=False, db_index=True)

    # Where it came from
    source_channel = models.CharField(
        max_length=24, choices=C.SourceChannel.choices, default=C.SourceChannel.STAFF_FEEDBACK
    )
    source_reference = models.CharField(max_length=300, blank=True, help_text="Ticket number, URL, …")
    external_id = models.CharField(max_length=100, null=True, blank=True, unique=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )

    # State
    status = models.CharField(max_length=16, choices=C.Status.choices, default=C.Status.NEW, db_index=True)
    status_changed_at = models.DateTimeField(default=timezone.now)
    blocked = models.BooleanField(default=False, db_index=True)
    blocker = models.TextField(blank=True, validators=long_text())
    blocked_since = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)

    # Assessment
    assessment_reason = models.TextField(blank=True, validators=long_text())
    revisit_date = models.DateField(null=True, blank=True)
    assessed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    assessed_at = models.DateTimeField(null=True, blank=True)

    # Evaluation, closure, sustainment
    evaluation_result = models.CharField(max_length=16, choices=C.EvaluationResult.choices, blank=True)
    evaluation_note = models.TextField(blank=True, validators=long_text())
    evaluated_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=20, choices=C.Outcome.choices, blank=True)
    benefit_category = models.CharField(max_length=24, choices=C.BenefitCategory.choices, blank=True)
    realised_delta = models.DecimalField(max_digits=16, decimal_places=4, null=True, blank=True)
    lessons = models.TextField(blank=True, validators=long_text())
    closed_at = models.DateTimeField(null=True, blank=True, db_index=True)
    control_until = models.DateField(null=True, blank=True)
    sustainment = models.CharField(max_length=10, choices=C.Sustainment.choices, blank=True, default="")
    slipped_at = models.DateTimeField(null=True, blank=True)

    # Bookkeeping
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_activity_at = models.DateTimeField(default=timezone.now, db_index=True)
    version = models.PositiveIntegerField(default=1)

    objects = ItemQuerySet.as_manager()

    class Meta:
        ordering = ["-priority_score", "-id"]
        indexes = [
            models.Index(fields=["status", "-priority_score"]),
            models.Index(fields=["owner", "status"]),
            models.Index(fields=["rank", "-priority_score"]),
            models.Index(fields=["quadrant"]),
            models.Index(fields=["practice"]),
            # Closure windows (metrics, the leadership view, the outcomes report): status = closed
            # and closed_at in a range, one index range scan.
            models.Index(fields=["status", "closed_at"]),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(impact__gte=1, impact__lte=5), name="item_impact_1_5"),
            models.CheckConstraint(condition=models.Q(effort__gte=1, effort__lte=5), name="item_effort_1_5"),
        ]

    def __str__(self) -> str:
        return f"{self.ref} {self.title}"

    @property
    def ref(self) -> str:
        return f"CI-{self.pk:05d}" if self.pk else "CI-new"

    def get_absolute_url(self) -> str:
        return reverse("improvement:detail", args=[self.pk])

    # Derived fields, kept in the row so the database can sort and filter on them.
    def derive(self) -> None:
        self.quadrant = C.quadrant_for(self.impact, self.effort)
        self.priority_score = C.priority_score(self.impact, self.effort)
        self.due_soon_from = self.compute_due_soon_from()

    def compute_due_soon_from(self) -> dt.date | None:
        """The day from which less than 15 % (TIKTING_DUE_SOON_FRACTION) of the time to target is left."""
        if not self.target_date:
            return None
        start = timezone.localdate(self.identified_at) if self.identified_at else timezone.localdate()
        span = (self.target_date - start).days
        if span <= 0:
            return self.target_date
        return self.target_date - dt.timedelta(days=int(span * settings.TIKTING_DUE_SOON_FRACTION))

    def save(self, *args, **kwargs):
        self.derive()
        update_fields = kwargs.get("update_fields")
        if update_fields is not None:
            kwargs["update_fields"] = {*update_fields, "quadrant", "priority_score", "due_soon_from"}
        super().save(*args, **kwargs)

    # State questions, answered from the row.
    @property
    def is_open(self) -> bool:
        return self.status in C.OPEN_STATUSES

    @property
    def is_active(self) -> bool:
        return self.status in C.ACTIVE_STATUSES

    @property
    def step_number(self) -> int | None:
        try:
            return C.STEPS.index(self.status) + 1
        except ValueError:
            return None

    def is_overdue(self, today: dt.date | None = None) -> bool:
        today = today or timezone.localdate()
        return bool(self.target_date and self.is_open and self.target_date < today)

    def is_due_soon(self, today: dt.date | None = None) -> bool:
        today = today or timezone.localdate()
        if not (self.is_open and self.due_soon_from and self.target_date):
            return False
        return self.due_soon_from <= today <= self.target_date

    def is_stale(self, now: dt.datetime | None = None) -> bool:
        now = now or timezone.now()
        limit = now - dt.timedelta(days=settings.TIKTING_STALE_DAYS)
        return self.is_open and self.last_activity_at < limit

    def flags(self, now: dt.datetime | None = None) -> list[str]:
        now = now or timezone.now()
        today = timezone.localdate(now)
        result = []
        if self.blocked:
            result.append("blocked")
        if self.is_overdue(today):
            result.append("overdue")
        elif self.is_due_soon(today):
            result.append("due soon")
        if self.is_stale(now):
            result.append("stale")
        if self.sustainment == C.Sustainment.SLIPPED:
            result.append("slipped")
        return result

    @property
    def read_only(self) -> bool:
        """Closed and rejected items are a record: only comments, follow-ups and (closed items under
        sustainment watch) measurements are added; a manager reopens one to change it."""
        return self.status in C.ENDED_STATUSES

    def gaps_for(self, status: str, *, back: bool = False) -> list[str]:
        """What the item lacks to enter `status` (a step forward, or closing), or to step `back` to
        it, as keys of choices.GAP_MESSAGES (explain_gaps() words them)."""
        needs = C.UNBLOCKED_ONLY if back else C.PRECONDITIONS.get(status, ())
        if not needs:
            return []
        indicators = [i for i in self.indicators.all() if i.role == C.IndicatorRole.PRIMARY]
        checks = {
            "unblocked": lambda: not self.blocked,
            "vision": lambda: bool(self.vision.strip()),
            "owner": lambda: bool(self.owner_id),
            "target_date": lambda: bool(self.target_date),
            "baseline": lambda: any(i.baseline_value is not None for i in indicators),
            "target": lambda: any(
                i.baseline_value is not None and i.target_value is not None for i in indicators
            ),
            "planned_action": lambda: any(not a.cancelled for a in self.actions.all()),
            "actions_assigned": lambda: not self._actions_unassigned(),
            "actions_settled": lambda: not self._actions_open(),
            "measurement": lambda: Measurement.objects.filter(
                indicator__in=indicators,
                measured_at__gte=self._action_started_at().replace(second=0, microsecond=0),
            ).exists(),
            "evaluation": lambda: bool(self.evaluation_result),
        }
        return [need for need in needs if not checks[need]()]

    def readiness_gaps(self) -> list[str]:
        """What is missing before the item is ready to act on (owner, target date, baseline, target)."""
        return [g for g in self.gaps_for(C.Status.ACTION) if g in C.READINESS]

    def _actions_unassigned(self) -> list[str]:
        """Each planned action lacking an owner or a due date, worded: “Train staff”: no owner."""
        lacking = []
        for action in self.actions.all():
            missing = [
                what for what, ok in (("owner", action.owner_id), ("due date", action.due_date)) if not ok
            ]
            if missing and not action.cancelled:
                lacking.append(f"“{action.title}”: no {' and no '.join(missing)}")
        return lacking

    def _actions_open(self) -> list[str]:
        return [f"“{a.title}”" for a in self.actions.all() if a.is_open]

    def explain_gap(self, gap: str) -> str:
        """One gap in words: what is missing (with the actions it is about) — what to do."""
        details = {
            "unblocked": lambda: [f"blocked by: {self.blocker.strip()}"] if self.blocker.strip() else [],
            "actions_assigned": self._actions_unassigned,
            "actions_settled": lambda: [f"open: {', '.join(self._actions_open())}"],
        }.get(gap, list)()
        shown = details[:MAX_GAP_DETAILS] + (
            [f"and {len(details) - MAX_GAP_DETAILS} more"] if len(details) > MAX_GAP_DETAILS else []
        )
        what = C.GAP_MESSAGES[gap] + (f" ({'; '.join(shown)})" if shown else "")
        return f"{what} — {C.GAP_HINTS[gap]}"

    def explain_gaps(self, gaps: list[str]) -> str:
        """The gaps in one sentence: "an owner — an improvement manager assigns one; and …"."""
        words = [self.explain_gap(g) for g in gaps]
        return words[0] if len(words) == 1 else f"{'; '.join(words[:-1])}; and {words[-1]}"

    def delta_indicator(self) -> Indicator | None:
        """The primary indicator the realised delta is measured on: the first with a baseline and
        a measurement (services.measured_delta)."""
        for indicator in self.indicators.all():
            if indicator.role != C.IndicatorRole.PRIMARY or indicator.baseline_value is None:
                continue
            if indicator.latest_measurement() is not None:
                return indicator
        return None

    def delta_summary(self) -> dict[str, Any] | None:
        """The realised delta as the pages show it: value, unit, on which indicator, and whether it
        moved toward the target ("toward", "away" or "none"); None while there is no delta."""
        if self.realised_delta is None:
            return None
        indicator = self.delta_indicator()
        moved = "none"
        if self.realised_delta and indicator is not None:
            better = (
                self.realised_delta < 0
                if indicator.direction == C.Direction.LOWER
                else self.realised_delta > 0
            )
            moved = "toward" if better else "away"
        unit = indicator.unit if indicator else ""
        return {
            "value": self.realised_delta,
            "text": f"{'+' if self.realised_delta > 0 else ''}{display.number(self.realised_delta)}"
            + (f" {unit}" if unit else ""),
            "unit": unit,
            "indicator": indicator,
            "moved": moved if indicator is not None else "",
        }

    def _action_started_at(self) -> dt.datetime:
        """When the item last entered step 5. Forms take times to the minute, so callers compare
        from the start of that minute: a measurement entered in the same minute counts."""
        from tikting.core.models import StatusChange

        change = (
            StatusChange.objects.filter(
                content_type=ContentType.objects.get_for_model(Item),
                object_id=str(self.pk),
                new_status=C.Status.ACTION,
            )
            .order_by("-at")
            .first()
        )
        return change.at if change else self.identified_at


class Indicator(models.Model):
    """A measurable indicator of an item: baseline, target and dated measurements."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="indicators")
    name = models.CharField(max_length=200)
    unit = models.CharField(max_length=30, blank=True)
    direction = models.CharField(max_length=6, choices=C.Direction.choices, default=C.Direction.LOWER)
    role = models.CharField(max_length=10, choices=C.IndicatorRole.choices, default=C.IndicatorRole.PRIMARY)
    # Who takes the measure (besides the item's owner): records measurements whatever their role
    # above viewer (permissions.can_measure). Empty: the item's owner.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Who records its measurements, besides the item's owner",
    )
    baseline_value = models.DecimalField(max_digits=16, decimal_places=4, null=True, blank=True)
    baseline_date = models.DateField(null=True, blank=True)
    baseline_method = models.CharField(
        max_length=300, blank=True, help_text="How the baseline was obtained (manual, computed over …)"
    )
    target_value = models.DecimalField(max_digits=16, decimal_places=4, null=True, blank=True)
    target_date = models.DateField(null=True, blank=True)
    # The values the indicator can take (a count or a duration is never negative, a share stays
    # within 0..100 %): baseline, target and every measurement must lie within (improvement.bounds).
    min_value = models.DecimalField(
        max_digits=16, decimal_places=4, null=True, blank=True, help_text="Lowest possible value"
    )
    max_value = models.DecimalField(
        max_digits=16, decimal_places=4, null=True, blank=True, help_text="Highest possible value"
    )
    # Bound to a tikting metric (filled by the metrics engine; empty for manual indicators).
    metric_key = models.CharField(max_length=60, blank=True)
    metric_scope = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["item", "role", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.unit})" if self.unit else self.name

    @property
    def range_text(self) -> str:
        """The stated range in words: "0 to 100 %", "0 or more h", "" when unbounded."""
        unit = f" {self.unit}" if self.unit else ""
        low, high = self.min_value, self.max_value
        if low is not None and high is not None:
            return f"{display.number(low)} to {display.number(high)}{unit}"
        if low is not None:
            return f"{display.number(low)} or more{unit}"
        if high is not None:
            return f"{display.number(high)} or less{unit}"
        return ""

    def in_range(self, value: Decimal) -> bool:
        return (self.min_value is None or value >= self.min_value) and (
            self.max_value is None or value <= self.max_value
        )

    def meets_target(self, value: Decimal | None) -> bool:
        if value is None or self.target_value is None:
            return False
        if self.direction == C.Direction.LOWER:
            return value <= self.target_value
        return value >= self.target_value

    def improved(self, value: Decimal | None) -> bool:
        """Moved from the baseline towards the target."""
        if value is None or self.baseline_value is None:
            return False
        if self.direction == C.Direction.LOWER:
            return value < self.baseline_value
        return value > self.baseline_value

    @property
    def target_improves(self) -> bool | None:
        """Does the target lie on the better side of the baseline (None while either is unset)?
        A re-computed baseline can overtake an old target: progress is then meaningless."""
        if self.baseline_value is None or self.target_value is None:
            return None
        if self.direction == C.Direction.LOWER:
            return self.target_value < self.baseline_value
        return self.target_value > self.baseline_value

    def progress(self, value: Decimal | None) -> float | None:
        """Share of the way from baseline to target (0..1, may exceed 1), None when unknown or when
        the target does not improve on the baseline."""
        if value is None or self.baseline_value is None or self.target_value is None:
            return None
        if self.target_value != self.baseline_value and not self.target_improves:
            return None
        span = self.target_value - self.baseline_value
        if span == 0:
            return 1.0 if self.meets_target(value) else 0.0
        return float((value - self.baseline_value) / span)

    def evaluate(self, value: Decimal | None) -> str:
        if self.meets_target(value):
            return C.EvaluationResult.ACHIEVED
        if self.improved(value):
            return C.EvaluationResult.PARTLY
        return C.EvaluationResult.NOT_ACHIEVED

    def latest_measurement(self) -> Measurement | None:
        # Prefetched measurements (lists of items with their indicators) are read, not re-queried.
        prefetched = getattr(self, "_prefetched_objects_cache", {}).get("measurements")
        if prefetched is not None:
            return max(prefetched, key=lambda m: (m.measured_at, m.pk), default=None)
        return self.measurements.order_by("-measured_at", "-id").first()


class Measurement(models.Model):
    class Source(models.TextChoices):
        MANUAL = "manual", "Manual"
        COMPUTED = "computed", "Computed from records"
        IMPORTED = "imported", "Imported"

    indicator = models.ForeignKey(Indicator, on_delete=models.CASCADE, related_name="measurements")
    value = models.DecimalField(max_digits=16, decimal_places=4)
    measured_at = models.DateTimeField(default=timezone.now)
    note = models.CharField(max_length=300, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.MANUAL)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["indicator", "measured_at", "id"]
        indexes = [models.Index(fields=["indicator", "-measured_at"])]

    def __str__(self) -> str:
        return f"{display.number(self.value)} at {display.when(self.measured_at, 'date')}"


class Action(models.Model):
    """A step of an item's plan (step 4), done in step 5."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="actions")
    title = models.CharField(max_length=200)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    due_date = models.DateField(null=True, blank=True)
    done = models.BooleanField(default=False)
    done_at = models.DateTimeField(null=True, blank=True)
    # An action that will not be done: it stays in the plan with the reason, and no longer holds
    # the item back (choices.PRECONDITIONS "actions_settled").
    cancelled = models.BooleanField(default=False)
    cancel_reason = models.TextField(blank=True, validators=long_text())
    cancelled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["item", "done", "cancelled", "due_date", "id"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(done=True, cancelled=True), name="action_done_or_cancelled"
            )
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_open(self) -> bool:
        """Neither done nor cancelled."""
        return not (self.done or self.cancelled)

    def is_overdue(self, today: dt.date | None = None) -> bool:
        today = today or timezone.localdate()
        return bool(self.is_open and self.due_date and self.due_date < today)


class Comment(models.Model):
    """A human note on an item (journal entry): comments, escalations, decisions."""

    class Kind(models.TextChoices):
        COMMENT = "comment", "Comment"
        ESCALATION = "escalation", "Escalation"
        LESSON = "lesson", "Lesson learned"

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.COMMENT)
    body = models.TextField(validators=long_text())
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.item.ref}"


class SourceLink(models.Model):
    """A link from an item to the record it came from or touches: any model (incident, problem, CI …).

    The extension point for the ITSM records: a record of any kind can be linked without changing
    the register. `label` keeps a readable name even if the record is later removed.
    """

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="source_links")
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
    object_id = models.CharField(max_length=64)
    record = GenericForeignKey("content_type", "object_id")
    label = models.CharField(max_length=200)
    is_origin = models.BooleanField(default=True, help_text="The record the item came from")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-is_origin", "id"]
        constraints = [
            models.UniqueConstraint(fields=["item", "content_type", "object_id"], name="sourcelink_unique")
        ]
        indexes = [models.Index(fields=["content_type", "object_id"])]

    def __str__(self) -> str:
        return self.label
