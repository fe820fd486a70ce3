"""A file attached to a register item, an ITSM record, a comment or a review minute."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils import timezone


def stored_path(instance: Attachment, filename: str) -> str:
    """Where the storage keeps the bytes: a random name (never the uploader's) under the month."""
    return f"attachments/{timezone.now():%Y/%m}/{uuid.uuid4().hex}"


class Attachment(models.Model):
    # The target: any model a higher app registered (tikting/attachments/registry.py).
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
    object_id = models.CharField(max_length=64)
    target = GenericForeignKey("content_type", "object_id")

    file = models.FileField(upload_to=stored_path, max_length=200)
    name = models.CharField(max_length=200, help_text="The file name shown and sent (sanitised)")
    mime_type = models.CharField(max_length=120, help_text="The type the file is served as")
    size = models.BigIntegerField(help_text="Bytes")
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    uploaded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["uploaded_at", "id"]
        indexes = [models.Index(fields=["content_type", "object_id"], name="attachment_target")]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("attachments:download", args=[self.pk])
