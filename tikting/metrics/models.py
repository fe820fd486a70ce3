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


class RollupCell(models.Model):
    """The columns both incident rollups share: the local month of opening (opened_at, local
    midnight of its first day), the incident attributes the engine filters and slices on (under
    the incident's names), the count of the cell's incidents and the sum of their opening instants
    since 1970 UTC in whole seconds and microseconds (the backlog's ages)."""

    opened_at = models.DateTimeField(db_index=True)
    source = models.CharField(max_length=40)
    status = models.CharField(max_length=12)
    priority = models.PositiveSmallIntegerField(null=True)
    category = models.CharField(max_length=100)
    # No database constraint: a rollup row follows its incidents, rebuilt when they change.
    service = models.ForeignKey(
        "cmdb.Service", null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    assignment_group = models.ForeignKey(
        "accounts.Team", null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    ci = models.ForeignKey(
        "cmdb.ConfigurationItem",
        null=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    n = models.IntegerField(default=0)
    opened_secs = models.BigIntegerField(default=0)
    opened_micros = models.BigIntegerField(default=0)

    class Meta:
        abstract = True


class IncidentMonth(RollupCell):
    """The monthly rollup of incidents (rollups.py): for each week segment of a local month of
    opening (rollups.segments) and each combination of the attributes metrics filter and slice by,
    the counts the ratio and mean metrics add up and the times to resolve. Rebuilt month by month
    from the incidents whenever a write touched the month (RollupDirty), so it always equals a
    direct computation; never edited by hand.

    The attribute columns carry the incident's names (opened_at is the segment's first local
    midnight), so the engine's filters and slicers, by month and by week, apply to it unchanged."""

    # Counts (and two sums) of the cell's incidents, besides n; rollups.MEASURES defines each.
    unresolved = models.IntegerField(default=0)
    resolved_once = models.IntegerField(default=0)
    reopened = models.IntegerField(default=0)
    reopens = models.IntegerField(default=0)
    reassign_known = models.IntegerField(default=0)
    reassigned = models.IntegerField(default=0)
    reassign_sum = models.IntegerField(default=0)
    fcr_known = models.IntegerField(default=0)
    fcr_yes = models.IntegerField(default=0)
    resp_known = models.IntegerField(default=0)
    resp_met = models.IntegerField(default=0)
    res_known = models.IntegerField(default=0)
    res_met = models.IntegerField(default=0)
    src_known = models.IntegerField(default=0)
    src_met = models.IntegerField(default=0)
    # The time to resolve of each of the cell's resolved incidents (rollups.TTR_MEASURES), in µs,
    # as 16 hex digits each (unordered): the engine counts and sums them exactly and picks the
    # median and the 90th percentile from them.
    ttrs = models.TextField(default="", blank=True)

    def __str__(self) -> str:
        return f"{self.opened_at:%Y-%m} {self.source} ×{self.n}"


class IncidentEnd(RollupCell):
    """The backlog's second rollup shape (rollups.py): the incidents that stopped being open, by
    local month of opening (opened_at, whose rebuild writes them), week segment of their end
    (ended_at: resolved, else closed; never before the opening) and the attributes, with their
    count and the sum of their opening instants. Rebuilt with their opening month (RollupDirty),
    never edited by hand."""

    ended_at = models.DateTimeField()  # local midnight of the end's week segment's first day
    # of which ended by closed_at, without resolved_at (the engine must then look for them)
    closed_only = models.IntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.opened_at:%Y-%m} → {self.ended_at:%Y-%m} ×{self.n}"


# SQLite's row triggers on incidents_incident that insert into RollupDirty (rollups.trigger_sql):
# named here, with the table they fill, so that metrics.apps can name them at start-up without
# importing the rollups module.
ROLLUP_SQLITE_TRIGGERS: tuple[str, ...] = (
    "metrics_rollup_insert",
    "metrics_rollup_update",
    "metrics_rollup_delete",
)


class RollupDirty(models.Model):
    """A UTC month ("YYYY-MM") of incident openings written since the rollup was last brought up to
    date, or "*" for all of them; inserted by database triggers on incidents_incident, drained by
    rollups.refresh(). PostgreSQL may hold a month several times (no unique key, so that writers
    never wait on each other); SQLite keeps one row per month (INSERT OR IGNORE)."""

    month = models.CharField(max_length=7, db_index=True)

    def __str__(self) -> str:
        return self.month


class RollupZone(models.Model):
    """The time zone whose local months the rollup holds (one row). A site moved to another
    TIME_ZONE has its rollup rebuilt whole on the next read (rollups.refresh)."""

    zone = models.CharField(max_length=64)

    def __str__(self) -> str:
        return self.zone
