"""The intake queue: candidates for the register, the records behind them, and the detector runs."""

from __future__ import annotations

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse

from tikting.core.itsm import Practice
from tikting.improvement.choices import SourceChannel
from tikting.lib.display import when

__all__ = ["Candidate", "CandidateEvidence", "CandidateStatus", "DetectorRun", "Proposes", "RunStatus"]

RATING = [MinValueValidator(1), MaxValueValidator(5)]


class CandidateStatus(models.TextChoices):
    NEW = "new", "New: to triage"
    ACCEPTED = "accepted", "Accepted into the register"
    MERGED = "merged", "Merged into an item"
    DEFERRED = "deferred", "Deferred"
    DISMISSED = "dismissed", "Dismissed"


# Statuses a detector's finding is merged into (evidence and figures updated) rather than raised anew.
OPEN_STATUSES = frozenset({CandidateStatus.NEW, CandidateStatus.DEFERRED})
# Statuses that keep the pattern from being raised again unless its evidence grows materially.
SUPPRESSING_STATUSES = frozenset(
    {CandidateStatus.ACCEPTED, CandidateStatus.MERGED, CandidateStatus.DISMISSED}
)


class Proposes(models.TextChoices):
    IMPROVEMENT = "improvement", "An improvement"
    PROBLEM = "problem", "A problem record"


class Candidate(models.Model):
    """A proposed improvement waiting in the intake queue for an improvement manager's triage.

    Raised by a detector from the records (with the evidence, the figures and the period they cover,
    and an explanation of the rule that raised it), or submitted by a person through a manual channel
    (post-incident review finding, audit finding, staff feedback). Never enters the register without
    a human decision: accepted (it became `item`), merged into an existing `item`, deferred until a
    date, or dismissed with a reason.
    """

    # What
    channel = models.CharField(max_length=24, choices=SourceChannel.choices, db_index=True)
    title = models.CharField(max_length=200)
    explanation = models.TextField(help_text="Why it was raised: the rule and the figures that decided it")
    detector = models.CharField(max_length=60, blank=True, db_index=True, help_text="Empty: a manual channel")
    fingerprint = models.CharField(max_length=300, blank=True, db_index=True)
    proposes = models.CharField(max_length=12, choices=Proposes.choices, default=Proposes.IMPROVEMENT)
    score = models.FloatField(default=0, db_index=True)
    magnitude = models.FloatField(default=0)
    period_start = models.DateField(null=True, blank=True)
    period_end = models.DateField(null=True, blank=True)
    figures = models.JSONField(default=dict, blank=True)

    # Suggested ratings, with the reasoning
    practice = models.CharField(max_length=20, choices=Practice.choices, default=Practice.OTHER)
    service = models.ForeignKey(
        "cmdb.Service", null=True, blank=True, on_delete=models.SET_NULL, related_name="candidates"
    )
    impact = models.PositiveSmallIntegerField(default=3, validators=RATING)
    effort = models.PositiveSmallIntegerField(default=3, validators=RATING)
    rating_reason = models.TextField(blank=True)

    # Triage
    status = models.CharField(
        max_length=10, choices=CandidateStatus.choices, default=CandidateStatus.NEW, db_index=True
    )
    status_reason = models.TextField(blank=True, help_text="Why it was dismissed or deferred")
    deferred_until = models.DateField(null=True, blank=True, db_index=True)
    triaged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    triaged_at = models.DateTimeField(null=True, blank=True)
    item = models.ForeignKey(
        "improvement.Item",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="candidates",
        help_text="The item it became (accepted) or was merged into",
    )
    magnitude_at_triage = models.FloatField(
        null=True, blank=True, help_text="Its magnitude when dismissed, merged or accepted"
    )
    previous = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The earlier candidate of the pattern whose evidence grew past the threshold",
    )

    # Who reported it (manual channels)
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    anonymous = models.BooleanField(
        default=False,
        help_text="The reporter's name is shown to improvement managers and administrators only",
    )

    # Detector bookkeeping
    run = models.ForeignKey(
        "signals.DetectorRun",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="raised_candidates",
    )
    last_seen_at = models.DateTimeField(
        null=True, blank=True, help_text="When a detector last found the pattern"
    )
    last_seen_magnitude = models.FloatField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["-score", "-id"]
        indexes = [
            models.Index(fields=["status", "-score"]),
            models.Index(fields=["fingerprint", "-id"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(impact__gte=1, impact__lte=5), name="candidate_impact_1_5"
            ),
            models.CheckConstraint(
                condition=models.Q(effort__gte=1, effort__lte=5), name="candidate_effort_1_5"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.ref} {self.title}"

    @property
    def ref(self) -> str:
        return f"SIG-{self.pk:05d}" if self.pk else "SIG-new"

    def get_absolute_url(self) -> str:
        return reverse("signals:candidate", args=[self.pk])

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def is_manual(self) -> bool:
        return not self.detector

    def comes_back_above(self, regrowth: float | None = None) -> float | None:
        """The magnitude past which a dismissed, merged or accepted candidate's pattern is raised
        again (TIKTING_SIGNALS_REGROWTH over its magnitude then); None for open or manual ones."""
        if self.status not in SUPPRESSING_STATUSES or self.is_manual:
            return None
        share = settings.TIKTING_SIGNALS_REGROWTH if regrowth is None else regrowth
        base = self.magnitude_at_triage if self.magnitude_at_triage is not None else self.magnitude
        return base * (1 + share)


class CandidateEvidence(models.Model):
    """One record behind a candidate (any kind: incident, change, problem, survey …), and its role
    in the pattern ("member", "cause", "breach", …). Accepted or merged, it becomes a SourceLink."""

    candidate = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="evidence")
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
    object_id = models.CharField(max_length=64)
    record = GenericForeignKey("content_type", "object_id")
    kind = models.CharField(max_length=30, help_text="The record registry's slug (incident, change, …)")
    key = models.CharField(max_length=120, help_text="The record's key as it was imported")
    role = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["candidate", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["candidate", "content_type", "object_id", "role"], name="candidate_evidence_unique"
            )
        ]
        indexes = [models.Index(fields=["content_type", "object_id"])]
        verbose_name_plural = "candidate evidence"

    def __str__(self) -> str:
        return f"{self.kind} {self.key}" + (f" ({self.role})" if self.role else "")

    def get_record_url(self) -> str:
        return reverse("records:detail", args=[self.kind, self.object_id])


class RunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class DetectorRun(models.Model):
    """One run of one detector over a window: how long it took, what it raised, merged into open
    candidates and kept suppressed, or the error it failed with."""

    detector = models.CharField(max_length=60, db_index=True)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    started_at = models.DateTimeField(db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.RUNNING)
    proposals = models.PositiveIntegerField(default=0)
    raised = models.PositiveIntegerField(default=0)
    merged = models.PositiveIntegerField(default=0)
    suppressed = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    thresholds = models.JSONField(default=dict, blank=True)
    trigger = models.CharField(max_length=60, blank=True, help_text="cli, schedule, api, …")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"{self.detector} at {when(self.started_at)}"
