"""What the workers share beside the task queue (django_tasks_db's DBTaskResult rows): the schedule's
state, and where each job came from."""

from __future__ import annotations

from django.conf import settings
from django.db import models

__all__ = ["JobLaunch", "ScheduleEntry"]


class ScheduleEntry(models.Model):
    """One entry of the schedule (settings.TIKTING_SCHEDULE) as every worker sees it: when it last ran
    and when it is next due.

    A worker enqueues a due entry only if its conditional UPDATE (`next_run_at` still the value it
    read) changes the row: of several workers ticking at the same moment exactly one wins, whatever
    the database (healthchecks' sendalerts claims its checks the same way).
    """

    name = models.CharField(max_length=100, unique=True)
    definition = models.JSONField(default=dict, help_text="The declaration it was synced from")
    next_run_at = models.DateTimeField(db_index=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_job = models.ForeignKey(
        "django_tasks_database.DBTaskResult",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "schedule entries"

    def __str__(self) -> str:
        return self.name


class JobLaunch(models.Model):
    """Who or what put a job in the queue: the schedule, a person ("run now"), or a retry of a failed
    job. Jobs enqueued by code (an SLA definition saved, say) have none."""

    class Origin(models.TextChoices):
        SCHEDULE = "schedule", "Schedule"
        MANUAL = "manual", "Run now"
        RETRY = "retry", "Retry"

    job = models.OneToOneField(
        "django_tasks_database.DBTaskResult", on_delete=models.CASCADE, related_name="launch"
    )
    origin = models.CharField(max_length=10, choices=Origin.choices)
    label = models.CharField(max_length=200, blank=True, help_text="The schedule entry or action run")
    retry_of = models.ForeignKey(
        "django_tasks_database.DBTaskResult",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_origin_display()}: {self.label or self.job_id}"
