"""The jobs page: the queue's jobs (queued, running, finished, failed) newest first, the schedule with
each entry's next run, "run now", and a failed job's error with a retry. For improvement managers
and administrators (403 for everyone else)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ImproperlyConfigured, PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe
from django_tasks_db.compat import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from tikting.core.exceptions import PermissionDeniedError
from tikting.core.paging import page_of

from . import registry, schedule, services
from .models import JobLaunch, ScheduleEntry

STATUS_LABELS = {
    TaskResultStatus.READY: ("Queued", "text-bg-secondary"),
    TaskResultStatus.RUNNING: ("Running", "text-bg-primary"),
    TaskResultStatus.SUCCESSFUL: ("Finished", "text-bg-success"),
    TaskResultStatus.FAILED: ("Failed", "text-bg-danger"),
}
STATUS_FILTERS = {
    "queued": TaskResultStatus.READY,
    "running": TaskResultStatus.RUNNING,
    "finished": TaskResultStatus.SUCCESSFUL,
    "failed": TaskResultStatus.FAILED,
}


def _require(request: HttpRequest) -> None:
    if not services.can_manage_jobs(request.user):
        raise PermissionDenied("The jobs page is for improvement managers and administrators.")


def duration(job: DBTaskResult) -> float | None:
    """Seconds from start to finish (a running job: to now); None before it starts."""
    if job.started_at is None:
        return None
    end = job.finished_at or timezone.now()
    return max((end - job.started_at).total_seconds(), 0.0)


def counts(value: Any) -> str:
    """A task's return value in one line: "raised 3 · merged 1" for a flat dict, JSON otherwise."""
    if value is None:
        return ""
    if isinstance(value, dict) and all(isinstance(v, int | float | str | None) for v in value.values()):
        return " · ".join(f"{k} {v}" for k, v in value.items())
    return json.dumps(value, ensure_ascii=False, sort_keys=True)[:300]


def error_line(job: DBTaskResult) -> str:
    """The last line of a failed job's traceback: the exception and its message."""
    lines = [line for line in (job.traceback or "").strip().splitlines() if line.strip()]
    return lines[-1] if lines else job.exception_class_path


def describe(job: DBTaskResult) -> dict[str, Any]:
    label, badge = STATUS_LABELS.get(job.status, (job.status.title(), "text-bg-light"))
    launch: JobLaunch | None = getattr(job, "launch", None)
    return {
        "job": job,
        "name": job.task_path.removeprefix("tikting."),
        "status_label": label,
        "badge": badge,
        "duration": duration(job),
        "counts": counts(job.return_value),
        "error": error_line(job) if job.status == TaskResultStatus.FAILED else "",
        "launch": launch,
        "args": job.args_kwargs,
    }


def _schedule_rows(now: dt.datetime) -> tuple[list[dict[str, Any]], str]:
    try:
        entries = schedule.entries()
    except ImproperlyConfigured as exc:
        return [], str(exc)
    rows = {row.name: row for row in ScheduleEntry.objects.select_related("last_job")}
    result = []
    for entry in entries:
        row = rows.get(entry.name)
        synced = row is not None and row.definition == entry.definition()
        result.append(
            {
                "entry": entry,
                "row": row if synced else None,
                "next_run": row.next_run_at if synced and row else None,
                "overdue": bool(synced and row and row.next_run_at < now - dt.timedelta(minutes=5)),
                "last_job": describe(row.last_job) if synced and row and row.last_job else None,
                "key": f"schedule:{entry.name}",
            }
        )
    return result, ""


def _safe_next(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, {request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


@login_required
@require_safe
def job_list(request: HttpRequest) -> HttpResponse:
    _require(request)
    now = timezone.now()
    status = request.GET.get("status", "")
    qs = DBTaskResult.objects.select_related("launch", "launch__actor").order_by("-enqueued_at", "-id")
    if status in STATUS_FILTERS:
        qs = qs.filter(status=STATUS_FILTERS[status])
    paging = page_of(request, qs)
    schedule_rows, schedule_error = _schedule_rows(now)
    actions, action_problems = registry.runnables()
    totals = {key: DBTaskResult.objects.filter(status=value).count() for key, value in STATUS_FILTERS.items()}
    context = {
        **paging,
        "jobs": [describe(job) for job in paging["page"].object_list],
        "status": status,
        "status_filters": list(STATUS_FILTERS),
        "totals": totals,
        "schedule_rows": schedule_rows,
        "schedule_error": schedule_error,
        "actions": actions,
        "action_problems": action_problems,
        "now": now,
        "time_zone": settings.TIME_ZONE,
    }
    return render(request, "jobs/list.html", context)


@login_required
@require_safe
def job_detail(request: HttpRequest, job_id: Any) -> HttpResponse:
    _require(request)
    job = get_object_or_404(
        DBTaskResult.objects.select_related("launch", "launch__actor", "launch__retry_of"), pk=job_id
    )
    retries = DBTaskResult.objects.filter(launch__retry_of=job).order_by("-enqueued_at")
    return render(
        request,
        "jobs/detail.html",
        {
            "j": describe(job),
            "retries": [describe(r) for r in retries],
            "can_retry": job.status == TaskResultStatus.FAILED,
        },
    )


@login_required
@require_POST
def job_retry(request: HttpRequest, job_id: Any) -> HttpResponse:
    _require(request)
    job = get_object_or_404(DBTaskResult, pk=job_id)
    try:
        new = services.retry_job(job, actor=request.user)
    except PermissionDeniedError as exc:
        raise PermissionDenied(str(exc)) from exc
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("jobs:detail", job_id=job.pk)
    messages.success(request, f"Retry queued: job {new.pk}. A worker (tikting worker) runs it.")
    return redirect("jobs:detail", job_id=new.pk)


@login_required
@require_POST
def run_now(request: HttpRequest) -> HttpResponse:
    _require(request)
    key = request.POST.get("name", "")
    try:
        job = services.run_now(key, actor=request.user)
    except PermissionDeniedError as exc:
        raise PermissionDenied(str(exc)) from exc
    except (ValidationError, ImproperlyConfigured) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
        return redirect(_safe_next(request, reverse("jobs:list")))
    messages.success(request, f"Queued {key}: job {job.pk}. A worker (tikting worker) runs it.")
    return redirect(_safe_next(request, reverse("jobs:list")))


urlpatterns = [
    path("", job_list, name="list"),
    path("run/", run_now, name="run"),
    path("<uuid:job_id>/", job_detail, name="detail"),
    path("<uuid:job_id>/retry/", job_retry, name="retry"),
]
