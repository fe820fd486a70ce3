"""Putting jobs in the queue: the schedule's due entries, "run now", and retries of failed jobs.

Jobs are django_tasks_db's DBTaskResult rows; each one enqueued here gets a JobLaunch saying where
it came from. "Run now" and retries are for improvement managers and administrators, are written
in the audit trail, and take `actor=` like every service (None: the system).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_tasks_db.compat import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from tikting.accounts.models import Actor, Role, User
from tikting.core import audit
from tikting.core.exceptions import PermissionDeniedError

from . import registry
from . import schedule as sched
from .models import JobLaunch, ScheduleEntry

logger = logging.getLogger("tikting.jobs")


def can_manage_jobs(user: Actor) -> bool:
    """Read the jobs page, run a job now, retry a failed one: improvement managers and administrators."""
    return bool(user is not None and user.is_authenticated and user.has_role(Role.MANAGER))


def _require(actor: Actor, what: str) -> None:
    if actor is not None and not can_manage_jobs(actor):
        raise PermissionDeniedError(f"You may not {what}.")


def _user(actor: Actor) -> User | None:
    return actor if isinstance(actor, User) and actor.pk else None


# --- Enqueueing ---------------------------------------------------------------------------------


def enqueue(
    task_path: str,
    args: list[Any] | None = None,
    kwargs: dict[str, Any] | None = None,
    *,
    origin: str,
    label: str = "",
    actor: Actor = None,
    retry_of: DBTaskResult | None = None,
    queue_name: str | None = None,
    priority: int | None = None,
) -> DBTaskResult:
    """Enqueue `task_path(*args, **kwargs)` on the database backend with its JobLaunch, in the
    caller's transaction (a rolled-back caller enqueues nothing)."""
    task = sched.load_task(task_path).using(queue_name=queue_name, priority=priority)
    result = task.enqueue(*(args or []), **(kwargs or {}))
    db_result = getattr(result, "db_result", None)
    if not isinstance(db_result, DBTaskResult):
        raise ImproperlyConfigured(
            "Jobs need the database task backend (TASKS['default']['BACKEND'] = "
            "'django_tasks_db.DatabaseBackend'): the worker runs its queue."
        )
    JobLaunch.objects.create(
        job=db_result, origin=origin, label=label[:200], retry_of=retry_of, actor=_user(actor)
    )
    return db_result


def actions() -> dict[str, registry.Runnable]:
    """What may be run now, by key: every schedule entry ("schedule:<name>") and every action an app
    registered (registry.register_runnables)."""
    found = {
        f"schedule:{entry.name}": registry.Runnable(
            key=f"schedule:{entry.name}",
            title=entry.name,
            task=entry.task,
            group="Schedule",
            args=entry.args,
            kwargs=entry.kwargs,
        )
        for entry in sched.entries()
    }
    runnables, _ = registry.runnables()
    found.update({r.key: r for r in runnables})
    return found


@transaction.atomic
def enqueue_task(
    task_path: str,
    *,
    args: list[Any] | None = None,
    kwargs: dict[str, Any] | None = None,
    label: str = "",
    actor: Actor,
) -> DBTaskResult:
    """Queue a task at once on a person's behalf ("run now"), written in the audit trail."""
    _require(actor, "run jobs")
    job = enqueue(task_path, args, kwargs, origin=JobLaunch.Origin.MANUAL, label=label, actor=actor)
    audit.record(
        job.launch, action="create", actor=actor, message=f"Run now: {label or task_path} ({task_path})"
    )
    return job


def run_now(key: str, *, actor: Actor) -> DBTaskResult:
    """Enqueue a schedule entry or a registered action at once (its schedule is unchanged)."""
    _require(actor, "run jobs")
    action = actions().get(key)
    if action is None:
        raise ValidationError({"name": f"Nothing to run is called '{key}'."})
    return enqueue_task(action.task, args=action.args, kwargs=action.kwargs, label=key, actor=actor)


@transaction.atomic
def retry_job(job: DBTaskResult, *, actor: Actor) -> DBTaskResult:
    """Enqueue a failed job's task again with the same arguments, queue and priority."""
    _require(actor, "retry jobs")
    if job.status != TaskResultStatus.FAILED:
        raise ValidationError({"job": f"Only a failed job can be retried; this one is {job.status.lower()}."})
    label = getattr(getattr(job, "launch", None), "label", "") or job.task_path
    args_kwargs = job.args_kwargs or {}
    new = enqueue(
        job.task_path,
        list(args_kwargs.get("args", [])),
        dict(args_kwargs.get("kwargs", {})),
        origin=JobLaunch.Origin.RETRY,
        label=label,
        actor=actor,
        retry_of=job,
        queue_name=job.queue_name,
        priority=job.priority,
    )
    audit.record(new.launch, action="create", actor=actor, message=f"Retry of job {job.pk} ({job.task_path})")
    return new


# --- The schedule -------------------------------------------------------------------------------


def sync_schedule(now: dt.datetime | None = None) -> dict[str, ScheduleEntry]:
    """The rows of the declared entries, created or re-declared as settings say.

    A new entry is due at once (a fresh installation runs each job once when its first worker
    starts); a re-declared one (its task, timing or arguments changed) is due at its new next time.
    Rows of entries no longer declared are deleted. Safe with several workers doing it at once."""
    now = now or timezone.now()
    declared = {entry.name: entry for entry in sched.entries()}
    rows = {row.name: row for row in ScheduleEntry.objects.all()}
    missing = [
        ScheduleEntry(name=name, definition=entry.definition(), next_run_at=now)
        for name, entry in declared.items()
        if name not in rows
    ]
    if missing:
        try:
            with transaction.atomic():
                ScheduleEntry.objects.bulk_create(missing, ignore_conflicts=True)
        except IntegrityError:  # another worker created them in between
            pass
    for name, row in rows.items():
        entry = declared.get(name)
        if entry is None:
            ScheduleEntry.objects.filter(pk=row.pk).delete()
        elif row.definition != entry.definition():
            ScheduleEntry.objects.filter(pk=row.pk, definition=row.definition).update(
                definition=entry.definition(), next_run_at=entry.next_run(now), updated_at=now
            )
    return {row.name: row for row in ScheduleEntry.objects.filter(name__in=declared)}


def due_entries(now: dt.datetime) -> list[tuple[ScheduleEntry, sched.Entry]]:
    """The rows due at `now` with their declarations, as a worker reads them before claiming."""
    declared = {entry.name: entry for entry in sched.entries()}
    rows = ScheduleEntry.objects.filter(next_run_at__lte=now, name__in=declared).order_by("next_run_at")
    # A row re-declared since the last sync waits for sync_schedule to set its next time.
    return [(row, declared[row.name]) for row in rows if row.definition == declared[row.name].definition()]


def claim_entry(row: ScheduleEntry, entry: sched.Entry, now: dt.datetime) -> DBTaskResult | None:
    """Enqueue a due entry if this worker wins it: one transaction moves `next_run_at` on with a
    conditional UPDATE (WHERE it is still the value this worker read) and, only if that UPDATE
    changed the row, enqueues the job. A worker that lost the race (another moved the row since it
    read it) changes nothing and enqueues nothing; a crash between the two rolls both back."""
    with transaction.atomic():
        won = ScheduleEntry.objects.filter(pk=row.pk, next_run_at=row.next_run_at).update(
            next_run_at=entry.next_run(now), last_run_at=now, updated_at=now
        )
        if not won:
            return None
        job = enqueue(
            entry.task, entry.args, entry.kwargs, origin=JobLaunch.Origin.SCHEDULE, label=entry.name
        )
        ScheduleEntry.objects.filter(pk=row.pk).update(last_job=job)
    logger.info("Schedule: enqueued %s (%s), job %s", entry.name, entry.task, job.pk)
    return job


def enqueue_due(now: dt.datetime | None = None) -> list[DBTaskResult]:
    """Enqueue every entry that is due, each exactly once however many workers call this at once."""
    now = now or timezone.now()
    return [job for row, entry in due_entries(now) if (job := claim_entry(row, entry, now)) is not None]
