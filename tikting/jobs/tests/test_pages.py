"""The jobs page and its API: who may see them, a failed job's error and its retry, "run now"."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.test import Client
from django_tasks_db.models import DBTaskResult

from tikting.accounts.models import ApiToken
from tikting.core.models import AuditEntry
from tikting.jobs.models import JobLaunch
from tikting.jobs.tests import tasks

pytestmark = pytest.mark.django_db

EXPLODE = "tikting.jobs.tests.tasks.explode"


@pytest.fixture(autouse=True)
def small_schedule(settings):
    settings.TIKTING_SCHEDULE = {
        "tick": {"task": "tikting.jobs.tests.tasks.record", "every": 600, "args": ["tick"]}
    }
    tasks.RAN.clear()


def run_worker() -> None:
    call_command("worker", "--once", stdout=io.StringIO())


def failed_job() -> DBTaskResult:
    tasks.explode.enqueue("the disk is full")
    run_worker()
    return DBTaskResult.objects.get(task_path=EXPLODE, status="FAILED")


@pytest.mark.parametrize(
    ("role", "status"),
    [("viewer", 403), ("contributor", 403), ("owner", 403), ("manager", 200), ("admin", 200)],
)
def test_the_jobs_pages_are_for_managers_and_administrators(cast, role, status):
    job = DBTaskResult.objects.get(pk=tasks.add.enqueue(1, 2).id)
    client = Client()
    client.force_login(getattr(cast, role))
    assert client.get("/jobs/").status_code == status
    assert client.get(f"/jobs/{job.pk}/").status_code == status
    assert client.post("/jobs/run/", {"name": "schedule:tick"}).status_code == (403 if status == 403 else 302)
    assert client.post(f"/jobs/{job.pk}/retry/").status_code == (403 if status == 403 else 302)
    _, raw = ApiToken.issue(getattr(cast, role), "script")
    api = Client(headers={"Authorization": f"Bearer {raw}"})
    assert api.get("/api/jobs").status_code == status
    assert api.get("/api/jobs/schedule").status_code == status


def test_the_nav_links_the_jobs_page_for_managers_only(cast):
    client = Client()
    client.force_login(cast.manager)
    assert 'href="/jobs/"' in client.get("/register/").content.decode()
    client.force_login(cast.owner)
    assert 'href="/jobs/"' not in client.get("/register/").content.decode()


def test_a_failed_job_shows_its_error_and_traceback(cast):
    job = failed_job()
    client = Client()
    client.force_login(cast.manager)
    page = client.get("/jobs/?status=failed").content.decode()
    assert "explode" in page
    assert "RuntimeError: the disk is full" in page
    detail = client.get(f"/jobs/{job.pk}/").content.decode()
    assert 'id="job-traceback"' in detail
    assert "raise RuntimeError(message)" in detail  # the traceback, not only its last line
    assert "Retry with the same arguments" in detail


def test_a_failed_job_is_retried_with_the_same_arguments(cast):
    job = failed_job()
    client = Client()
    client.force_login(cast.manager)
    response = client.post(f"/jobs/{job.pk}/retry/")
    retry = DBTaskResult.objects.exclude(pk=job.pk).get(task_path=EXPLODE)
    assert response.status_code == 302
    assert response["Location"] == f"/jobs/{retry.pk}/"
    assert retry.status == "READY"
    assert retry.args_kwargs == job.args_kwargs == {"args": ["the disk is full"], "kwargs": {}}
    assert retry.launch.origin == JobLaunch.Origin.RETRY
    assert retry.launch.retry_of_id == job.pk
    assert retry.launch.actor == cast.manager
    assert AuditEntry.objects.filter(object_id=str(retry.launch.pk), actor=cast.manager).exists()
    run_worker()
    retry.refresh_from_db()
    assert retry.status == "FAILED"  # the disk is still full: it fails again, visibly
    assert f'retry of <a href="/jobs/{job.pk}/">' in client.get(f"/jobs/{retry.pk}/").content.decode()


def test_only_a_failed_job_can_be_retried(cast):
    job = DBTaskResult.objects.get(pk=tasks.add.enqueue(1, 2).id)
    run_worker()
    client = Client()
    client.force_login(cast.manager)
    client.post(f"/jobs/{job.pk}/retry/")
    assert DBTaskResult.objects.filter(task_path="tikting.jobs.tests.tasks.add").count() == 1
    _, raw = ApiToken.issue(cast.manager, "script")
    api = Client(headers={"Authorization": f"Bearer {raw}"})
    response = api.post(f"/api/jobs/{job.pk}/retry")
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "job"


def test_run_now_queues_a_schedule_entry_without_moving_its_schedule(cast):
    run_worker()  # the entry ran once and is next due in 10 minutes
    client = Client()
    client.force_login(cast.manager)
    response = client.post("/jobs/run/", {"name": "schedule:tick"})
    assert response.status_code == 302
    job = DBTaskResult.objects.filter(launch__origin=JobLaunch.Origin.MANUAL).get()
    assert job.args_kwargs == {"args": ["tick"], "kwargs": {}}
    assert job.launch.actor == cast.manager
    run_worker()
    assert [tag for tag, _ in tasks.RAN] == ["tick", "tick"]
    page = client.get("/jobs/").content.decode()
    assert "Run now: schedule:tick" in page or "Run now" in page
    assert "every 10 min" in page


def test_run_now_of_an_unknown_name_says_so(cast):
    client = Client()
    client.force_login(cast.manager)
    response = client.post("/jobs/run/", {"name": "schedule:nope"}, follow=True)
    assert "Nothing to run is called" in response.content.decode()
    assert not DBTaskResult.objects.exists()


def test_the_jobs_page_lists_newest_first_with_duration_and_counts(cast, settings):
    settings.TIKTING_SCHEDULE = {}
    settings.TIKTING_PAGE_SIZE = 2
    for n in range(3):
        tasks.add.enqueue(n, 10)
    run_worker()
    client = Client()
    client.force_login(cast.manager)
    page = client.get("/jobs/").content.decode()
    assert "<strong>3</strong> jobs" in page
    assert "sum 12" in page and "sum 11" in page and "sum 10" not in page  # newest first, 2 a page
    assert " s</td>" in page  # a duration
    assert "sum 10" in client.get("/jobs/?page=2").content.decode()


def test_the_api_lists_jobs_and_the_schedule_and_runs_actions(cast):
    job = failed_job()
    _, raw = ApiToken.issue(cast.admin, "script")
    api = Client(headers={"Authorization": f"Bearer {raw}"})
    listed = api.get("/api/jobs?status=failed").json()
    assert listed["count"] == 1
    assert listed["items"][0]["error"] == "RuntimeError: the disk is full"
    assert api.get(f"/api/jobs/{job.pk}").json()["traceback"].startswith("Traceback")
    schedule = api.get("/api/jobs/schedule").json()
    assert schedule[0]["name"] == "tick" and schedule[0]["every"] == "every 10 min"
    assert schedule[0]["next_run_at"] is not None
    keys = {a["key"] for a in api.get("/api/jobs/actions").json()}
    assert {"schedule:tick", "detectors:all", "detector:major_incidents"} <= keys
    ran = api.post("/api/jobs/run", {"name": "detector:major_incidents"}, content_type="application/json")
    assert ran.status_code == 202
    assert ran.json()["kwargs"] == {"detectors": ["major_incidents"]}
    retried = api.post(f"/api/jobs/{job.pk}/retry")
    assert retried.status_code == 202 and retried.json()["retry_of"] == str(job.pk)
