"""Computed metric results kept for reuse until the records behind them change (see cache.py)."""

from __future__ import annotations

from django.db import models


class CachedResult(models.Model):
    """One compute() answer, valid while the data stamp it was computed at is the current one."""

    key = models.CharField(max_length=64, primary_key=True)  # sha256 of the question asked
    stamp = models.BigIntegerField()
    computed_at = models.DateTimeField(db_index=True)
    expires_at = models.DateTimeField(null=True, blank=True)  # answers that depend on the time only
    payload = models.JSONField()

    def __str__(self) -> str:
        return f"{self.key[:12]}… @{self.stamp}"


class DataStamp(models.Model):
    """SQLite's data stamp: one row, bumped by triggers on every write to a table metrics read.
    (PostgreSQL uses the sequence metrics_data_stamp instead, which never blocks writers.)"""

    id = models.PositiveSmallIntegerField(primary_key=True)
    n = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return str(self.n)
