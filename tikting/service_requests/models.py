"""Service requests and the catalogue items they are raised for."""

from django.db import models
from django.urls import reverse

from tikting.core.itsm import Channel, group_fk, service_fk, user_fk
from tikting.core.models import SourcedRecord

__all__ = ["CatalogItem", "ServiceRequest"]


class CatalogItem(SourcedRecord):
    """Something users can request from the service catalogue (a laptop, an account, access …)."""

    name = models.CharField(max_length=200, unique=True)
    service = service_fk("catalog_items")
    automated = models.BooleanField(default=False, help_text="Fulfilled without manual steps")
    manual_minutes = models.PositiveIntegerField(null=True, blank=True, help_text="Manual effort per request")

    class Meta(SourcedRecord.Meta):
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("records:detail", args=["catalog-item", self.pk])


class ServiceRequest(SourcedRecord):
    """A user's request for something provided (ITIL service request management)."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        IN_PROGRESS = "in_progress", "In progress"
        FULFILLED = "fulfilled", "Fulfilled"
        CLOSED = "closed", "Closed"
        CANCELLED = "cancelled", "Cancelled"

    number = models.CharField(max_length=40, unique=True)
    catalog_item = models.ForeignKey(
        CatalogItem, null=True, blank=True, on_delete=models.SET_NULL, related_name="requests"
    )
    short_description = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN, db_index=True)
    opened_at = models.DateTimeField(db_index=True)
    fulfilled_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    channel = models.CharField(max_length=12, choices=Channel.choices, blank=True)
    manual_steps = models.PositiveIntegerField(default=0)
    automated_steps = models.PositiveIntegerField(default=0)
    service = service_fk("service_requests")
    assignment_group = group_fk("service_requests")
    requested_by = user_fk("+")

    class Meta(SourcedRecord.Meta):
        ordering = ["-opened_at", "-id"]

    def __str__(self) -> str:
        return f"{self.number} {self.short_description}".strip()

    def get_absolute_url(self) -> str:
        return reverse("records:detail", args=["request", self.pk])
