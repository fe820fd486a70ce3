"""Problems: the causes of one or more incidents, and known errors with their workarounds."""

from django.db import models
from django.urls import reverse

from tikting.core.itsm import Priority, ci_fk, group_fk, service_fk, user_fk
from tikting.core.models import SourcedRecord

__all__ = ["Problem"]


class Problem(SourcedRecord):
    """A cause, or potential cause, of one or more incidents (ITIL problem management)."""

    class Status(models.TextChoices):
        NEW = "new", "New"
        INVESTIGATING = "investigating", "Investigating"
        KNOWN_ERROR = "known_error", "Known error"
        RESOLVED = "resolved", "Resolved"
        CLOSED = "closed", "Closed"

    number = models.CharField(max_length=40, unique=True)
    title = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=14, choices=Status.choices, default=Status.NEW, db_index=True)
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, null=True, blank=True)
    opened_at = models.DateTimeField(db_index=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    root_cause = models.TextField(blank=True)
    known_error = models.BooleanField(default=False)
    workaround = models.TextField(blank=True)
    service = service_fk("problems")
    ci = ci_fk("problems")
    assignment_group = group_fk("problems")
    owner = user_fk("owned_problems")

    class Meta(SourcedRecord.Meta):
        ordering = ["-opened_at", "-id"]

    def __str__(self) -> str:
        return f"{self.number} {self.title}"

    def get_absolute_url(self) -> str:
        return reverse("records:detail", args=["problem", self.pk])
