"""`tikting worker`: the queue and the schedule, each job and each due entry run exactly once."""

from __future__ import annotations

import datetime as dt
import io
import signal
import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from tikting.jobs import services
from tikting.jobs.models import JobLaunch, ScheduleEntry
from tikting.jobs.tests import tasks
from tikting.jobs.worker import Worker

pytestmark = pytest.mark.django_db

RECORD = "tikting.jobs.tests.tasks.record"


@pytest.fixture(autouse=True)
def fresh_log():
    tasks.RAN.clear()
    yield
    tasks.RAN.clear()


@pytest.fixture
def schedule(settings):
    """One entry: record('tick') every hour."""
    settings.TIKTING_SCHEDULE = {"tick": {"task": RECORD, "every": 3600, "args": ["tick"]}}
    return settings.TIKTING_SCHEDULE


def worker(*args: str) -> str:
    out = io.StringIO()
    call_command("worker", *args, stdout=out)
    return out.getvalue()


def test_once_runs_the_queue_until_empty_and_exits(settings):
    settings.TIKTING_SCHEDULE = {}
    tasks.add.enqueue(2, 3)
    tasks.record.enqueue("queued")
    output = worker("--once")
    assert "Ran 2 job(s), 0 failed." in output
    done = DBTaskResult.objects.get(task_path="tikting.jobs.tests.tasks.add")
    assert done.status == "SUCCESSFUL"
    assert done.return_value == {"sum": 5}
    assert [("queued", threading.current_thread().name)] == tasks.RAN


def test_a_due_entry_is_enqueued_once_per_due_time(schedule):
    started = timezone.now()
    worker("--once")  # a new entry is due at once
    worker("--once")  # an hour has not passed: not due again
    assert [tag for tag, _ in tasks.RAN] == ["tick"]
    entry = ScheduleEntry.objects.get(name="tick")
    assert started + dt.timedelta(hours=1) <= entry.next_run_at <= timezone.now() + dt.timedelta(hours=1)
    assert entry.last_job is not None and entry.last_job.status == "SUCCESSFUL"
    assert entry.last_job.launch.origin == JobLaunch.Origin.SCHEDULE
    # The hour has passed (its next run time is now in the past): due once more.
    ScheduleEntry.objects.filter(pk=entry.pk).update(next_run_at=timezone.now() - dt.timedelta(seconds=1))
    worker("--once")
    assert [tag for tag, _ in tasks.RAN] == ["tick", "tick"]


def test_a_worker_that_read_a_due_entry_too_late_enqueues_nothing(schedule):
    """The interleaving of two workers, step by step: A reads the due entry, B claims and enqueues
    it, then A tries to claim the row as it read it and loses (the conditional UPDATE)."""
    now = timezone.now()
    services.sync_schedule(now)
    read_by_a = services.due_entries(now)
    assert [row.name for row, _ in read_by_a] == ["tick"]
    assert len(services.enqueue_due(now)) == 1  # worker B
    row, entry = read_by_a[0]
    assert services.claim_entry(row, entry, now) is None  # worker A
    assert DBTaskResult.objects.filter(task_path=RECORD).count() == 1


def test_a_redeclared_entry_gets_its_new_timing(schedule, settings):
    now = timezone.now()
    services.sync_schedule(now)
    services.enqueue_due(now)
    settings.TIKTING_SCHEDULE = {"tick": {"task": RECORD, "every": 60, "args": ["tick"]}}
    rows = services.sync_schedule(now)
    assert rows["tick"].next_run_at == now + dt.timedelta(seconds=60)
    settings.TIKTING_SCHEDULE = {}
    assert services.sync_schedule(now) == {}
    assert not ScheduleEntry.objects.exists()  # entries no longer declared are dropped


def test_a_failing_job_is_recorded_with_its_traceback_and_the_worker_goes_on(settings):
    settings.TIKTING_SCHEDULE = {}
    tasks.explode.enqueue("the disk is full")
    tasks.record.enqueue("after")
    output = worker("--once")
    assert "Ran 2 job(s), 1 failed." in output
    failed = DBTaskResult.objects.get(task_path="tikting.jobs.tests.tasks.explode")
    assert failed.status == "FAILED"
    assert failed.exception_class_path == "builtins.RuntimeError"
    assert "RuntimeError: the disk is full" in failed.traceback
    assert [tag for tag, _ in tasks.RAN] == ["after"]


def test_max_tasks_stops_after_that_many_jobs(settings):
    settings.TIKTING_SCHEDULE = {}
    for n in range(3):
        tasks.record.enqueue(f"job{n}")
    assert "Ran 2 job(s)" in worker("--once", "--max-tasks", "2")
    assert len(tasks.RAN) == 2
    assert DBTaskResult.objects.filter(status="READY").count() == 1


def test_queue_names_which_jobs_it_runs(settings):
    settings.TIKTING_SCHEDULE = {}
    settings.TASKS = {
        "default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default", "slow"]}
    }
    tasks.record.using(queue_name="slow").enqueue("slow")
    tasks.record.enqueue("default")
    worker("--once")
    assert [tag for tag, _ in tasks.RAN] == ["default"]
    worker("--once", "--queue", "slow")
    assert [tag for tag, _ in tasks.RAN] == ["default", "slow"]


def test_no_schedule_leaves_the_schedule_to_other_workers(schedule):
    worker("--once", "--no-schedule")
    assert tasks.RAN == []
    assert not ScheduleEntry.objects.exists()


def test_sigterm_finishes_the_current_job_then_stops(settings):
    """A real SIGTERM, delivered to the worker's handler while a job runs: the job completes and
    is recorded as successful, the next queued job is left for another worker, and the command
    restores the process's own handlers."""
    settings.TIKTING_SCHEDULE = {}
    tasks.sigterm_self.enqueue("first")
    tasks.record.enqueue("second")
    before = signal.getsignal(signal.SIGTERM)
    output = worker()  # not --once: only the signal stops it
    assert "stopping after the current job" in output
    assert tasks.RAN == [("first", "after-sigterm")]
    assert DBTaskResult.objects.get(task_path="tikting.jobs.tests.tasks.sigterm_self").status == "SUCCESSFUL"
    assert DBTaskResult.objects.get(task_path=RECORD).status == "READY"
    assert signal.getsignal(signal.SIGTERM) == before


def test_a_second_signal_stops_at_once():
    w = Worker(queue_names=["default"], worker_id="w")
    w.shutdown(signal.SIGTERM, None)
    assert not w.running
    with pytest.raises(SystemExit) as exc:
        w.shutdown(signal.SIGTERM, None)
    assert exc.value.code == 1


def test_a_bad_schedule_stops_the_worker_before_it_starts(settings):
    settings.TIKTING_SCHEDULE = {"ghost": {"task": "tikting.jobs.tests.tasks.nope", "every": 60}}
    with pytest.raises(CommandError, match="TIKTING_SCHEDULE\\['ghost'\\]\\['task'\\]: cannot import"):
        worker("--once")


def test_the_worker_refuses_a_backend_that_is_not_the_database(settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    with pytest.raises(CommandError, match="database task backend"):
        worker("--once")


# --- Several workers on one PostgreSQL database --------------------------------------------------

RACERS = 2


def _race(target, *, barrier: threading.Barrier) -> list[BaseException]:
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            target(n)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(n,), name=f"worker-{n}") for n in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


@pytest.mark.django_db(transaction=True)
def test_two_workers_share_the_queue_and_the_schedule_without_doubles(settings):
    """Two workers, each in its own thread and connection, start at the same moment on one
    PostgreSQL database with 40 queued jobs and one due schedule entry: every job runs exactly
    once, and the entry is enqueued exactly once (SELECT … FOR UPDATE SKIP LOCKED for the jobs,
    the conditional UPDATE for the schedule)."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers on one database lock: run one worker on SQLite")
    settings.TIKTING_SCHEDULE = {"tick": {"task": RECORD, "every": 3600, "args": ["tick"]}}
    for n in range(40):
        tasks.record.enqueue(f"job{n}")
    services.sync_schedule()
    barrier = threading.Barrier(RACERS)

    def run_worker(n: int) -> None:
        Worker(queue_names=["default"], worker_id=f"racer-{n}", once=True, interval=0).run()

    assert _race(run_worker, barrier=barrier) == []
    tags = [tag for tag, _ in tasks.RAN]
    assert sorted(tags) == sorted([f"job{n}" for n in range(40)] + ["tick"])  # each once
    assert {thread for _, thread in tasks.RAN} == {"worker-0", "worker-1"}  # both took part
    assert DBTaskResult.objects.filter(task_path=RECORD).count() == 41
    assert not DBTaskResult.objects.exclude(status="SUCCESSFUL").exists()
    assert all(len(job.worker_ids) == 1 for job in DBTaskResult.objects.all())


@pytest.mark.django_db(transaction=True)
def test_two_schedulers_ticking_at_the_same_moment_enqueue_once(settings):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers on one database lock: run one worker on SQLite")
    settings.TIKTING_SCHEDULE = {
        name: {"task": RECORD, "every": 60, "args": [name]} for name in ("a", "b", "c", "d", "e")
    }
    now = timezone.now()
    services.sync_schedule(now)
    barrier = threading.Barrier(RACERS)
    for round_ in range(5):  # five rounds, each a fresh race on the five due entries
        at = now + dt.timedelta(seconds=61 * round_)
        results: list[int] = []

        def tick(n: int, at: dt.datetime = at, results: list[int] = results) -> None:
            results.append(len(services.enqueue_due(at)))

        assert _race(tick, barrier=barrier) == []
        assert sum(results) == 5
    assert DBTaskResult.objects.filter(task_path=RECORD).count() == 25
