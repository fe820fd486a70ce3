"""Jobs over HTTP, mounted at /api/jobs/ by tikting/api.py: what the jobs page shows (the queue's
jobs, the schedule) and does (run now, retry a failed job). Improvement managers and
administrators only (403 for everyone else)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django_tasks_db.models import DBTaskResult
from ninja import Field, Query, Router, Schema, Status

from tikting.accounts.requests import api_actor
from tikting.core.api import StrictBody, errors
from tikting.core.exceptions import PermissionDeniedError

from . import schedule, services
from .models import ScheduleEntry
from .views import STATUS_FILTERS, duration, error_line

router = Router(tags=["jobs"])
MAX_PAGE = 500


def _require(request: HttpRequest) -> Any:
    actor = api_actor(request)
    if not services.can_manage_jobs(actor):
        raise PermissionDeniedError(
            "You may not read or run jobs: improvement managers and administrators do."
        )
    return actor


class JobOut(Schema):
    id: str
    task_path: str
    status: str = Field(description="READY (queued), RUNNING, SUCCESSFUL (finished) or FAILED")
    queue_name: str
    args: list[Any]
    kwargs: dict[str, Any]
    enqueued_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    duration_seconds: float | None
    return_value: Any = Field(description="The task's result (its counts)")
    error: str = Field(description="A failed job: the exception and its message")
    traceback: str
    origin: str = Field(description="schedule, manual (run now), retry; empty: queued by the application")
    label: str
    retry_of: str | None


class JobPage(Schema):
    count: int
    items: list[JobOut]


class ScheduleOut(Schema):
    name: str
    task: str
    every: str = Field(description="In words: 'every 30 min', 'daily at 03:00'")
    args: list[Any]
    kwargs: dict[str, Any]
    next_run_at: dt.datetime | None = Field(description="Null until a worker has synced the entry")
    last_run_at: dt.datetime | None
    last_job_id: str | None


class RunNowIn(StrictBody):
    name: str = Field(
        description="'schedule:<entry>' or a registered action ('detector:<name>'); see /actions"
    )


class RunnableOut(Schema):
    """Something that may be run now (not a register action: the names of OpenAPI components are
    shared by every router, and `ActionOut` is the register's)."""

    key: str
    title: str
    group: str
    task: str


def _job(job: DBTaskResult) -> dict[str, Any]:
    launch = getattr(job, "launch", None)
    args_kwargs = job.args_kwargs or {}
    return {
        "id": str(job.pk),
        "task_path": job.task_path,
        "status": job.status,
        "queue_name": job.queue_name,
        "args": args_kwargs.get("args", []),
        "kwargs": args_kwargs.get("kwargs", {}),
        "enqueued_at": job.enqueued_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "duration_seconds": duration(job),
        "return_value": job.return_value,
        "error": error_line(job) if job.status == "FAILED" else "",
        "traceback": job.traceback,
        "origin": launch.origin if launch else "",
        "label": launch.label if launch else "",
        "retry_of": str(launch.retry_of_id) if launch and launch.retry_of_id else None,
    }


@router.get("", response={200: JobPage, **errors(403, 422)}, summary="Jobs, newest first")
def list_jobs(
    request: HttpRequest,
    status: Literal["queued", "running", "finished", "failed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
):
    _require(request)
    qs = DBTaskResult.objects.select_related("launch").order_by("-enqueued_at", "-id")
    if status:
        qs = qs.filter(status=STATUS_FILTERS[status])
    return {"count": qs.count(), "items": [_job(j) for j in qs[offset : offset + limit]]}


@router.get("/schedule", response={200: list[ScheduleOut], **errors(403)}, summary="The schedule")
def list_schedule(request: HttpRequest):
    _require(request)
    rows = {row.name: row for row in ScheduleEntry.objects.all()}
    result = []
    for entry in schedule.entries():
        row = rows.get(entry.name)
        synced = row is not None and row.definition == entry.definition()
        result.append(
            {
                "name": entry.name,
                "task": entry.task,
                "every": entry.every,
                "args": entry.args,
                "kwargs": entry.kwargs,
                "next_run_at": row.next_run_at if synced and row else None,
                "last_run_at": row.last_run_at if synced and row else None,
                "last_job_id": str(row.last_job_id) if synced and row and row.last_job_id else None,
            }
        )
    return result


@router.get("/actions", response={200: list[RunnableOut], **errors(403)}, summary="What may be run now")
def list_actions(request: HttpRequest):
    _require(request)
    return [
        {"key": a.key, "title": a.title, "group": a.group, "task": a.task}
        for a in services.actions().values()
    ]


@router.post("/run", response={202: JobOut, **errors(403, 422)}, summary="Run a schedule entry or action now")
def run_now(request: HttpRequest, payload: RunNowIn):
    actor = _require(request)
    try:
        job = services.run_now(payload.name, actor=actor)
    except ImproperlyConfigured as exc:
        raise ValidationError({"name": str(exc)}) from exc
    return Status(202, _job(job))


@router.get("/{job_id}", response={200: JobOut, **errors(403, 404)}, summary="A job, with its traceback")
def get_job(request: HttpRequest, job_id: uuid.UUID):
    _require(request)
    return _job(get_object_or_404(DBTaskResult.objects.select_related("launch"), pk=job_id))


@router.post("/{job_id}/retry", response={202: JobOut, **errors(403, 404, 422)}, summary="Retry a failed job")
def retry_job(request: HttpRequest, job_id: uuid.UUID):
    """The same task with the same arguments, queue and priority, as a new job."""
    actor = _require(request)
    job = get_object_or_404(DBTaskResult, pk=job_id)
    return Status(202, _job(services.retry_job(job, actor=actor)))
