"""The CMDB: business services and configuration items. Odysseus (discovery) extends CIs later."""

from django.conf import settings
from django.db import models
from django.urls import reverse

from tikting.core.models import SourcedRecord

__all__ = ["Service", "ConfigurationItem"]


class Service(models.Model):
    """A business or technical service the IT organisation delivers (ITIL: a service in the catalogue)."""

    class Criticality(models.IntegerChoices):
        LOW = 1, "Low"
        MEDIUM = 2, "Medium"
        HIGH = 3, "High"
        CRITICAL = 4, "Critical"

    name = models.CharField(max_length=120, unique=True)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    criticality = models.PositiveSmallIntegerField(choices=Criticality.choices, default=Criticality.MEDIUM)
    active = models.BooleanField(default=True)
    source = models.CharField(max_length=40, blank=True, default="manual")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ConfigurationItem(SourcedRecord):
    """A configuration item: anything managed to deliver a service (server, application, …)."""

    class CIClass(models.TextChoices):
        SERVER = "server", "Server"
        WORKSTATION = "workstation", "Workstation"
        NETWORK = "network", "Network device"
        PRINTER = "printer", "Printer"
        VM = "vm", "Virtual machine"
        APPLICATION = "application", "Application"
        DATABASE = "database", "Database"
        STORAGE = "storage", "Storage"
        OTHER = "other", "Other"

    class Status(models.TextChoices):
        PLANNED = "planned", "Planned"
        ACTIVE = "active", "In service"
        MAINTENANCE = "maintenance", "In maintenance"
        RETIRED = "retired", "Retired"
        UNKNOWN = "unknown", "Unknown"

    name = models.CharField(max_length=200, db_index=True)
    ci_class = models.CharField(max_length=12, choices=CIClass.choices, default=CIClass.OTHER)
    ci_type = models.CharField(max_length=100, blank=True, help_text="The source's own type/subtype")
    service = models.ForeignKey(
        Service, null=True, blank=True, on_delete=models.SET_NULL, related_name="configuration_items"
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ACTIVE)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta(SourcedRecord.Meta):
        ordering = ["name"]
        verbose_name = "configuration item"

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("records:detail", args=["ci", self.pk])
