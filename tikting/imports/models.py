"""An import started from the UI (docs/import-records.md): the uploaded file kept until it is
imported or discarded, the dry run's report, then the import's progress and report."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse


class Upload(models.Model):
    class Status(models.TextChoices):
        CHECKING = "checking", "Checking (dry run)"
        CHECKED = "checked", "Checked: ready to import"
        IMPORTING = "importing", "Importing"
        DONE = "done", "Imported"
        FAILED = "failed", "Failed"
        DISCARDED = "discarded", "Discarded"

    kind = models.CharField(max_length=40)  # a record kind's slug (records.registry.KINDS)
    file_name = models.CharField(max_length=200)  # as uploaded, sanitised: shown and used in errors
    stored_as = models.CharField(max_length=300)  # name in the upload storage; "" once removed
    fmt = models.CharField(max_length=8)
    size = models.PositiveBigIntegerField()
    lines = models.PositiveIntegerField(null=True, blank=True)  # rows in the file, where countable
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.CHECKING, db_index=True)
    rows_done = models.PositiveIntegerField(default=0)  # progress of the import (rows read)
    check_report = models.JSONField(null=True, blank=True)  # ImportReport.as_dict() of the dry run
    report = models.JSONField(null=True, blank=True)  # ImportReport.as_dict() of the import
    error = models.TextField(blank=True)  # why a run failed (an unexpected error, not a bad row)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.file_name} → {self.kind}"

    def get_absolute_url(self) -> str:
        return reverse("imports:detail", args=[self.pk])

    @property
    def running(self) -> bool:
        return self.status in (self.Status.CHECKING, self.Status.IMPORTING)

    @property
    def percent(self) -> int | None:
        """How far the import is, where the file's rows could be counted."""
        if self.status == self.Status.DONE:
            return 100
        if self.status != self.Status.IMPORTING or not self.lines:
            return None
        return min(99, int(self.rows_done * 100 / self.lines))
