"""Incidents, service-desk interactions and incident activities (the incident's event log)."""

from django.db import models
from django.urls import reverse

from tikting.core.itsm import Channel, Priority, ci_fk, group_fk, service_fk, user_fk
from tikting.core.models import SourcedRecord
from tikting.lib.display import when

__all__ = ["Incident", "Interaction", "IncidentActivity"]


# Every column a metric of tikting.metrics reads from an incident (filters, slicers, figures).
METRIC_COLUMNS = (
    "opened_at",
    "resolved_at",
    "closed_at",
    "status",
    "priority",
    "category",
    "reopen_count",
    "reassignment_count",
    "first_contact_resolution",
    "response_met",
    "resolution_met",
    "source_sla_met",
    "source",
    "service",
    "assignment_group",
    "ci",
)


def _covering(slicer: str, *, name: str = "") -> models.Index:
    """(slicer, opened_at) INCLUDE (every other metric column)."""
    keys = [slicer, "opened_at"]
    return models.Index(
        fields=keys,
        name=name or f"inc_{slicer}_cover",
        include=[c for c in METRIC_COLUMNS if c not in keys],
    )


class Incident(SourcedRecord):
    """An unplanned interruption or reduction in quality of a service (ITIL incident management)."""

    class Status(models.TextChoices):
        NEW = "new", "New"
        IN_PROGRESS = "in_progress", "In progress"
        ON_HOLD = "on_hold", "On hold"
        RESOLVED = "resolved", "Resolved"
        CLOSED = "closed", "Closed"
        CANCELLED = "cancelled", "Cancelled"

    number = models.CharField(max_length=40, unique=True)
    short_description = models.CharField(max_length=300, blank=True)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.NEW, db_index=True)
    opened_at = models.DateTimeField(db_index=True)
    responded_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True, db_index=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    priority = models.PositiveSmallIntegerField(
        choices=Priority.choices, null=True, blank=True, db_index=True
    )
    impact = models.PositiveSmallIntegerField(null=True, blank=True)
    urgency = models.PositiveSmallIntegerField(null=True, blank=True)
    category = models.CharField(max_length=100, blank=True, db_index=True)
    subcategory = models.CharField(max_length=100, blank=True)
    service = service_fk("incidents")
    ci = ci_fk("incidents")
    caused_by_ci = ci_fk("caused_incidents")
    assignment_group = group_fk("incidents")
    assigned_to = user_fk("assigned_incidents")
    reassignment_count = models.PositiveIntegerField(null=True, blank=True)
    reopen_count = models.PositiveIntegerField(default=0)
    contact_channel = models.CharField(max_length=12, choices=Channel.choices, blank=True)
    first_contact_resolution = models.BooleanField(null=True, blank=True)
    major = models.BooleanField(default=False, db_index=True)
    post_incident_review = models.TextField(blank=True)
    closure_code = models.CharField(max_length=100, blank=True)
    problem = models.ForeignKey(
        "problems.Problem", null=True, blank=True, on_delete=models.SET_NULL, related_name="incidents"
    )
    related_change = models.ForeignKey(
        "changes.Change", null=True, blank=True, on_delete=models.SET_NULL, related_name="related_incidents"
    )
    caused_by_change = models.ForeignKey(
        "changes.Change", null=True, blank=True, on_delete=models.SET_NULL, related_name="caused_incidents"
    )
    knowledge_article = models.ForeignKey(
        "knowledge.Article", null=True, blank=True, on_delete=models.SET_NULL, related_name="incidents"
    )
    # SLA: due times computed from the SLA definitions; met flags computed, or the source's own flag.
    response_due_at = models.DateTimeField(null=True, blank=True)
    resolution_due_at = models.DateTimeField(null=True, blank=True)
    response_met = models.BooleanField(null=True, blank=True)
    resolution_met = models.BooleanField(null=True, blank=True)
    source_sla_met = models.BooleanField(null=True, blank=True, help_text="The source's own flag (made_sla)")

    class Meta(SourcedRecord.Meta):
        ordering = ["-opened_at", "-id"]
        # The metrics engine's scans: for the slicers that filter most (service, group, priority),
        # an index led by the slicer and opened_at carrying every column a metric reads (INCLUDE),
        # so that PostgreSQL answers a one-slicer series from the index alone (index-only scan)
        # instead of visiting the heap. Not for source (one data set is usually most of the table)
        # nor for opened_at alone (a whole-table series is a sequential scan either way): each
        # covering index costs about 0.6 s per 46k incidents imported. SQLite has no INCLUDE: there
        # they are plain (slicer, opened_at) indexes (models.W040 is silenced in settings).
        # docs/metrics.md, "Performance", has the figures.
        indexes = [
            _covering("service"),
            _covering("assignment_group", name="inc_group_cover"),
            _covering("priority"),
            models.Index(fields=["ci", "opened_at"]),
            models.Index(fields=["source", "opened_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.short_description}".strip()

    def get_absolute_url(self) -> str:
        return reverse("records:detail", args=["incident", self.pk])


class Interaction(SourcedRecord):
    """A contact with the service desk (call, mail, chat …), which may open or update an incident."""

    number = models.CharField(max_length=40, unique=True)
    channel = models.CharField(max_length=12, choices=Channel.choices, blank=True)
    opened_at = models.DateTimeField(db_index=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    handle_time_seconds = models.PositiveIntegerField(null=True, blank=True)
    first_contact_resolution = models.BooleanField(null=True, blank=True)
    category = models.CharField(max_length=100, blank=True)
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, null=True, blank=True)
    service = service_fk("interactions")
    ci = ci_fk("interactions")
    incident = models.ForeignKey(
        Incident, null=True, blank=True, on_delete=models.SET_NULL, related_name="interactions"
    )
    service_request = models.ForeignKey(
        "service_requests.ServiceRequest",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="interactions",
    )
    knowledge_article = models.ForeignKey(
        "knowledge.Article", null=True, blank=True, on_delete=models.SET_NULL, related_name="interactions"
    )

    class Meta(SourcedRecord.Meta):
        ordering = ["-opened_at", "-id"]

    def __str__(self) -> str:
        return self.number

    def get_absolute_url(self) -> str:
        return reverse("records:detail", args=["interaction", self.pk])


class IncidentActivity(SourcedRecord):
    """One event in an incident's life as the source recorded it (assignment, update, reopen …)."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="activities")
    at = models.DateTimeField(db_index=True)
    activity_type = models.CharField(max_length=100)
    assignment_group = group_fk("+")
    note = models.CharField(max_length=300, blank=True)

    class Meta(SourcedRecord.Meta):
        ordering = ["incident", "at", "id"]
        verbose_name_plural = "incident activities"

    def __str__(self) -> str:
        return f"{self.activity_type} at {when(self.at)}"
