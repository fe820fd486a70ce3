"""Odysseus: discovery runs, what each source last saw of each device, and the gaps between
discovery and the CMDB (attribute drift, duplicate candidates), with the daily accuracy history.

A discovered device is always bound to a configuration item: a device the CMDB lacks becomes a CI
in status "discovered, unregistered" (cmdb.ConfigurationItem.Status.DISCOVERED), so every source's
last values can be held against one record and precedence recomputed at any time.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.urls import reverse

from tikting.cmdb.models import ConfigurationItem

from .agent_models import AgentToken  # noqa: F401 (the agent endpoint's tokens, tikting/discovery/agent/)

__all__ = [
    "AccuracySnapshot",
    "DiscoveredDevice",
    "DiscoveryRun",
    "DriftItem",
    "DuplicateCandidate",
    "MacAddress",
]


# --- Runs -----------------------------------------------------------------------------------------


class DiscoveryRun(models.Model):
    """One discovery run: a file imported or a scan made by one source, reconciled against the CMDB
    in one transaction, with the count of each outcome (docs/discovery.md, "Outcomes")."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        FINISHED = "finished", "Finished"
        FAILED = "failed", "Failed"

    source_name = models.CharField(
        max_length=80, db_index=True, help_text="The source as configured or named"
    )
    format = models.CharField(max_length=40, blank=True)
    file_name = models.CharField(max_length=255, blank=True)
    scan_range = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    observed = models.PositiveIntegerField(default=0, help_text="Devices in the input")
    down = models.PositiveIntegerField(default=0, help_text="Hosts the source reported down (not evidence)")
    unidentified = models.PositiveIntegerField(
        default=0, help_text="Devices with no identity the rules can use (not reconciled)"
    )
    confirmed = models.PositiveIntegerField(default=0, help_text="CIs identified, attributes unchanged")
    updated = models.PositiveIntegerField(default=0, help_text="CIs identified whose attributes changed")
    created_unregistered = models.PositiveIntegerField(
        default=0, help_text="New CIs, discovered and unregistered"
    )
    duplicate_candidates = models.PositiveIntegerField(default=0, help_text="New duplicate candidates")
    drifts = models.PositiveIntegerField(default=0, help_text="New or changed attribute drifts")
    stale = models.PositiveIntegerField(
        default=0, help_text="In-scope CIs not seen for N days, after the run"
    )
    errors = models.PositiveIntegerField(default=0)
    error_details = models.JSONField(default=list, blank=True, help_text='[{"where": …, "message": …}]')

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"Discovery run {self.pk} ({self.source_name})"

    def get_absolute_url(self) -> str:
        return reverse("discovery:run_detail", args=[self.pk])

    @property
    def duration(self) -> dt.timedelta | None:
        return None if self.finished_at is None else self.finished_at - self.started_at


# --- What the sources saw -------------------------------------------------------------------------


class DiscoveredDevice(models.Model):
    """A device as one discovery source (nmap, glpi-agent, …) last saw it, bound to the CI it was
    identified as. One row per CI and source: the last value of every attribute per source is kept,
    so precedence can be recomputed when a source changes its mind or the precedence does."""

    # No index of its own: the unique (ci, source) constraint's index serves lookups by CI (one
    # index less to maintain on every bulk insert of a run).
    ci = models.ForeignKey(
        "cmdb.ConfigurationItem", on_delete=models.CASCADE, related_name="discovered_devices", db_index=False
    )
    source = models.CharField(max_length=40)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    last_run = models.ForeignKey(
        DiscoveryRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    rule = models.CharField(max_length=30, blank=True, help_text="The identification rule that bound it")
    kind = models.CharField(max_length=30, blank=True)
    hostname = models.CharField(max_length=100, blank=True)
    fqdn = models.CharField(max_length=255, blank=True)
    serial = models.CharField(max_length=100, blank=True)
    manufacturer = models.CharField(max_length=100, blank=True)
    model = models.CharField(max_length=100, blank=True)
    uuid = models.CharField(max_length=36, blank=True)
    os_name = models.CharField(max_length=100, blank=True)
    os_version = models.CharField(max_length=100, blank=True)
    ip = models.CharField(max_length=45, blank=True)
    mac = models.CharField(max_length=17, blank=True)
    location = models.CharField(max_length=200, blank=True)
    addresses = models.JSONField(default=dict, blank=True, help_text='{"macs": [], "ipv4": [], "ipv6": []}')
    details = models.JSONField(
        default=dict, blank=True, help_text="Ports, software, CPUs, memory, VMs, extra"
    )
    fingerprint = models.CharField(max_length=64, help_text="Hash of every value above but the times")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["ci", "source"], name="discovery_device_ci_source")]
        indexes = [models.Index(fields=["source", "last_seen_at"], name="discovery_device_source_seen")]

    def __str__(self) -> str:
        return f"{self.source}: {self.hostname or self.fqdn or self.ip or self.mac or self.serial or self.pk}"


class MacAddress(models.Model):
    """A MAC address some source reported for a CI (real interfaces only: no virtual or randomised
    MAC). The MAC identification rule looks here as well as at the CI's own MAC address."""

    ci = models.ForeignKey(
        "cmdb.ConfigurationItem", on_delete=models.CASCADE, related_name="mac_addresses", db_index=False
    )  # indexed once, by discovery_mac_by_ci below
    mac = models.CharField(max_length=17)
    first_seen_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["mac", "ci"], name="discovery_mac_ci")]
        indexes = [models.Index(fields=["ci"], name="discovery_mac_by_ci")]

    def __str__(self) -> str:
        return self.mac


# --- Gaps -----------------------------------------------------------------------------------------


class Decision(models.TextChoices):
    OPEN = "open", "Open"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"
    RESOLVED = "resolved", "Resolved"  # the values agree again (the CI or the source changed)
    MERGED = "merged", "Merged"
    DISMISSED = "dismissed", "Dismissed"


class Decided(models.Model):
    """A gap discovery found and a person decides on: its state, when and by which run it was found,
    who decided and when, and the version a decision was read at (a stale one conflicts)."""

    status = models.CharField(max_length=10, choices=Decision.choices, default=Decision.OPEN)
    found_at = models.DateTimeField()
    run = models.ForeignKey(DiscoveryRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    version = models.PositiveIntegerField(default=1)

    class Meta:
        abstract = True
        ordering = ["-found_at", "-id"]


class DriftItem(Decided):
    """A CI attribute whose value differs from what discovery found, where the CI's value comes
    from a source that outranks the discovering one (a person, for a location): not overwritten,
    but shown for a decision. Accept takes the discovered value; reject keeps the CI's and is not
    asked again until the discovered value changes."""

    ci = models.ForeignKey("cmdb.ConfigurationItem", on_delete=models.CASCADE, related_name="drift_items")
    attribute = models.CharField(max_length=30)
    ci_value = models.CharField(max_length=255, blank=True)
    discovered_value = models.CharField(max_length=255, blank=True)
    source = models.CharField(max_length=40, help_text="The source that found the discovered value")
    ci_source = models.CharField(
        max_length=40, blank=True, help_text="Whose value the CI holds (manual: a person)"
    )

    class Meta(Decided.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["ci", "attribute"], condition=models.Q(status="open"), name="discovery_drift_one_open"
            )
        ]
        indexes = [models.Index(fields=["status", "ci"], name="discovery_drift_status_ci")]

    def __str__(self) -> str:
        return f"{self.ci}: {self.attribute} {self.ci_value!r} ≠ {self.discovered_value!r}"

    @property
    def attribute_label(self) -> str:
        """The attribute as the CI's form names it ("OS", "serial number"), not its field name."""
        try:
            field = ConfigurationItem._meta.get_field(self.attribute)
        except FieldDoesNotExist:
            return self.attribute
        return str(getattr(field, "verbose_name", self.attribute))


# The identification rules (reconcile.RULES) in words, for a duplicate one device matched.
RULE_LABELS = {
    "serial_manufacturer": "serial number and manufacturer",
    "uuid": "system UUID",
    "mac": "MAC address",
    "fqdn": "FQDN",
    "hostname": "host name",
    "ip": "IP address",
}


class DuplicateCandidate(Decided):
    """Two CIs that look like one device: they share an identity value (serial number, UUID, MAC,
    FQDN, host name), or one discovered device matched both. `ci` is the older, kept on a merge."""

    ci = models.ForeignKey("cmdb.ConfigurationItem", on_delete=models.CASCADE, related_name="+")
    other = models.ForeignKey("cmdb.ConfigurationItem", on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=30, help_text="The attribute or rule they share")
    value = models.CharField(max_length=255, blank=True)

    class Meta(Decided.Meta):
        constraints = [
            models.UniqueConstraint(fields=["ci", "other"], name="discovery_duplicate_pair"),
            models.CheckConstraint(
                condition=models.Q(ci__lt=models.F("other")), name="discovery_duplicate_order"
            ),
        ]
        indexes = [models.Index(fields=["status"], name="discovery_duplicate_status")]

    def __str__(self) -> str:
        return f"{self.ci} ≈ {self.other} ({self.reason})"

    @property
    def reason_label(self) -> str:
        """What the two CIs share, in words."""
        if self.reason.startswith("rule:"):
            rule = self.reason[5:]
            return f"one device matched both (by {RULE_LABELS.get(rule, rule.replace('_', ' '))})"
        names = {"serial_number": "serial number", "system_uuid": "system UUID", "mac_address": "MAC address"}
        return f"the same {names.get(self.reason, self.reason.replace('_', ' '))}"


# --- History --------------------------------------------------------------------------------------


class AccuracySnapshot(models.Model):
    """The CMDB's accuracy figures of one day, per CI class (the metrics of docs/metrics.md, "Asset
    data accuracy", sum these rows). Taken after each discovery run and daily; one row per day and
    class, rewritten only when a figure changed."""

    day = models.DateField()
    ci_class = models.CharField(max_length=12, choices=ConfigurationItem.CIClass.choices)
    taken_at = models.DateTimeField(db_index=True)
    in_scope = models.PositiveIntegerField(default=0, help_text="Registered CIs discovery should see")
    seen = models.PositiveIntegerField(default=0, help_text="In scope and seen within N days")
    never_seen = models.PositiveIntegerField(default=0)
    stale = models.PositiveIntegerField(default=0, help_text="In scope, seen before, not within N days")
    accurate = models.PositiveIntegerField(default=0, help_text="Seen, and no open drift on a key attribute")
    drifted = models.PositiveIntegerField(default=0, help_text="CIs with an open drift on a key attribute")
    unregistered = models.PositiveIntegerField(default=0, help_text="CIs discovered and not registered")
    duplicates = models.PositiveIntegerField(default=0, help_text="Open duplicate candidates")
    required = models.PositiveIntegerField(default=0, help_text="Required attributes of the in-scope CIs")
    filled = models.PositiveIntegerField(default=0, help_text="… of which filled")

    class Meta:
        ordering = ["day", "ci_class"]
        constraints = [
            models.UniqueConstraint(fields=["day", "ci_class"], name="discovery_snapshot_day_class")
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.ci_class}"
