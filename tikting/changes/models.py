"""Changes: additions, modifications or removals of anything that could affect services."""

from django.db import models
from django.urls import reverse

from tikting.core.itsm import ci_fk, group_fk, service_fk, user_fk
from tikting.core.models import SourcedRecord

__all__ = ["Change"]


class Change(SourcedRecord):
    """A change to a service or CI (ITIL change enablement), with its outcome and its review."""

    class Type(models.TextChoices):
        STANDARD = "standard", "Standard"
        NORMAL = "normal", "Normal"
        EMERGENCY = "emergency", "Emergency"

    class Status(models.TextChoices):
        NEW = "new", "New"
        ASSESSMENT = "assessment", "Assessment"
        AUTHORIZED = "authorized", "Authorised"
        SCHEDULED = "scheduled", "Scheduled"
        IMPLEMENTING = "implementing", "Implementing"
        REVIEW = "review", "Review"
        CLOSED = "closed", "Closed"
        CANCELLED = "cancelled", "Cancelled"

    class Outcome(models.TextChoices):
        SUCCESSFUL = "successful", "Successful"
        FAILED = "failed", "Failed"
        BACKED_OUT = "backed_out", "Backed out"
        CAUSED_INCIDENT = "caused_incident", "Caused an incident"

    number = models.CharField(max_length=40, unique=True)
    title = models.CharField(max_length=300, blank=True)
    description = models.TextField(blank=True)
    change_type = models.CharField(max_length=10, choices=Type.choices, default=Type.NORMAL, db_index=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.NEW, db_index=True)
    risk = models.CharField(max_length=40, blank=True)
    opened_at = models.DateTimeField(db_index=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    planned_start = models.DateTimeField(null=True, blank=True)
    planned_end = models.DateTimeField(null=True, blank=True)
    actual_start = models.DateTimeField(null=True, blank=True)
    actual_end = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True, db_index=True)
    unplanned = models.BooleanField(default=False, help_text="Made without being planned in advance")
    unauthorized = models.BooleanField(default=False, help_text="Made without authorisation")
    # Post-implementation review: did the change deliver its intended outcome?
    pir_done = models.BooleanField(default=False)
    pir_delivered_outcome = models.BooleanField(null=True, blank=True)
    pir_notes = models.TextField(blank=True)
    service = service_fk("changes")
    ci = ci_fk("changes")
    affected_cis = models.ManyToManyField(
        "cmdb.ConfigurationItem", blank=True, related_name="affecting_changes"
    )
    assignment_group = group_fk("changes")
    owner = user_fk("owned_changes")

    class Meta(SourcedRecord.Meta):
        ordering = ["-opened_at", "-id"]
        indexes = [
            models.Index(fields=["assignment_group", "opened_at"]),
            models.Index(fields=["service", "opened_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.title}".strip()

    def get_absolute_url(self) -> str:
        return reverse("records:detail", args=["change", self.pk])
