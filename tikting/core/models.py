"""History kept by every service: the audit trail, status-change events and journal entries."""

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models

__all__ = ["AuditEntry", "StatusChange", "SourcedRecord"]


class AuditEntry(models.Model):
    """One change of one record: before/after values of the fields that changed (NetBox's ObjectChange).

    `root` is the aggregate the change belongs to (an indicator's item, say), so an item's timeline
    is one indexed query whatever child record changed.
    """

    class Action(models.TextChoices):
        CREATE = "create", "Created"
        UPDATE = "update", "Updated"
        DELETE = "delete", "Deleted"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    request_id = models.CharField(max_length=64, blank=True)
    action = models.CharField(max_length=10, choices=Action.choices)
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=200)
    obj = GenericForeignKey("content_type", "object_id")
    root_content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
    root_object_id = models.CharField(max_length=64)
    changes = models.JSONField(default=dict, help_text="{field: [old, new]}")
    message = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["root_content_type", "root_object_id", "-at"]),
            models.Index(fields=["content_type", "object_id"]),
        ]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.object_repr} at {self.at:%Y-%m-%d %H:%M}"


class StatusChange(models.Model):
    """One row per status transition of a record (healthchecks' Flip): cycle times come from these."""

    at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
    object_id = models.CharField(max_length=64)
    obj = GenericForeignKey("content_type", "object_id")
    old_status = models.CharField(max_length=32, blank=True)
    new_status = models.CharField(max_length=32)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["content_type", "object_id", "at"])]

    def __str__(self) -> str:
        return f"{self.old_status or '∅'} → {self.new_status}"


class SourcedRecord(models.Model):
    """Base of every ITSM record: where it came from, its key there, and the raw source fields.

    `source` names the data set or channel ("bpic2014", "servicenow-uci", "demo", "manual", a CSV
    file's label); `external_key` is the record's key in that source, unique per source, so imports
    are idempotent; `raw` keeps the source row as it was read. `version` guards concurrent edits.
    """

    source = models.CharField(max_length=40, blank=True, default="manual", db_index=True)
    external_key = models.CharField(max_length=120, blank=True, default="")
    raw = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        abstract = True
        constraints = [
            models.UniqueConstraint(
                fields=["source", "external_key"],
                condition=~models.Q(external_key=""),
                name="%(app_label)s_%(class)s_source_key",
            )
        ]
