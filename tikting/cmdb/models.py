"""The CMDB: business services and configuration items, with the identity attributes Odysseus
(tikting/discovery) reconciles against what discovery finds on the network."""

from django.conf import settings
from django.db import models
from django.db.models import Value
from django.db.models.functions import Lower, Replace, Upper
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
        # Found by discovery and not in the register yet: never counted as registered until a
        # person registers it (docs/discovery.md, "Outcomes").
        DISCOVERED = "discovered", "Discovered, unregistered"

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
    # Identity and inventory attributes (docs/discovery.md). Empty = unknown. Discovery writes them
    # by source precedence; a person may too (a value nobody's discovery wrote counts as "manual").
    fqdn = models.CharField("FQDN", max_length=255, blank=True, default="")
    hostname = models.CharField(max_length=100, blank=True, default="")
    serial_number = models.CharField(max_length=100, blank=True, default="")
    manufacturer = models.CharField(max_length=100, blank=True, default="")
    model_name = models.CharField("model", max_length=100, blank=True, default="")
    system_uuid = models.CharField("system UUID", max_length=36, blank=True, default="")
    asset_tag = models.CharField(max_length=100, blank=True, default="")
    mac_address = models.CharField("MAC address", max_length=17, blank=True, default="")
    ip_address = models.CharField("IP address", max_length=45, blank=True, default="")
    os_name = models.CharField("OS", max_length=100, blank=True, default="")
    os_version = models.CharField("OS version", max_length=100, blank=True, default="")
    location = models.CharField(max_length=200, blank=True, default="")
    # Kept by discovery: when a source first and last saw the CI, which source saw it last, and
    # for each attribute the source whose value it holds ({attribute: [source, value]}).
    first_seen_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True, db_index=True)
    discovery_source = models.CharField(max_length=40, blank=True, default="")
    attribute_sources = models.JSONField(default=dict, blank=True)

    class Meta(SourcedRecord.Meta):
        ordering = ["name"]
        verbose_name = "configuration item"
        # Identification (tikting/discovery/reconcile.py) joins on these, case-insensitively.
        indexes = [
            models.Index(Upper("serial_number"), name="cmdb_ci_serial_upper"),
            models.Index(Lower("system_uuid"), name="cmdb_ci_uuid_lower"),
            # "AA-BB-…" (as Windows writes it) and "aa:bb:…" alike
            models.Index(Replace(Lower("mac_address"), Value("-"), Value(":")), name="cmdb_ci_mac_lower"),
            models.Index(Lower("fqdn"), name="cmdb_ci_fqdn_lower"),
            models.Index(Lower("hostname"), name="cmdb_ci_hostname_lower"),
            models.Index(Lower("name"), name="cmdb_ci_name_lower"),
            models.Index(fields=["ip_address"], name="cmdb_ci_ip"),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("records:detail", args=["ci", self.pk])
