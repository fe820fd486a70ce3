"""Audit findings: gaps in governance and controls found by asset audits or compliance reviews."""

from django.db import models
from django.urls import reverse

from tikting.core.itsm import service_fk, user_fk
from tikting.core.models import SourcedRecord

__all__ = ["AuditFinding"]


class AuditFinding(SourcedRecord):
    """One finding of an audit, which lands in the register as an improvement opportunity."""

    class Severity(models.TextChoices):
        LOW = "low", "Low"
        MEDIUM = "medium", "Medium"
        HIGH = "high", "High"
        CRITICAL = "critical", "Critical"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ADDRESSED = "addressed", "Addressed"
        ACCEPTED = "accepted", "Risk accepted"
        CLOSED = "closed", "Closed"

    number = models.CharField(max_length=40, unique=True)
    title = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    audit = models.CharField(max_length=200, blank=True, help_text="Which audit or review found it")
    practice = models.CharField(max_length=20, blank=True)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.MEDIUM)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    found_at = models.DateField(db_index=True)
    due_date = models.DateField(null=True, blank=True)
    service = service_fk("audit_findings")
    auditor = user_fk("+")

    class Meta(SourcedRecord.Meta):
        ordering = ["-found_at", "-id"]

    def __str__(self) -> str:
        return f"{self.number} {self.title}"

    def get_absolute_url(self) -> str:
        return reverse("records:detail", args=["audit-finding", self.pk])
