"""The worker behind `tikting worker`: django_tasks_db's queue and tikting's schedule in one loop.

Claiming and running a job are django_tasks_db's own (`DBTaskResult.objects.ready().get_locked()`
= SELECT … FOR UPDATE SKIP LOCKED on PostgreSQL, an exclusive transaction on SQLite; `claim()`;
`Worker.run_task`): several workers on PostgreSQL share the queue, each job runs once. What this
class adds: each turn of the loop first enqueues the schedule's due entries (services.enqueue_due,
exactly once across workers), `once` mode (run what is due and the queue until empty, then exit)
and a stop that never interrupts a job (SIGTERM or Ctrl-C finish the current job, then exit; a
second signal ends the process at once).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType
from typing import Any

from django.db import close_old_connections, connection
from django.db.utils import OperationalError
from django_tasks_db.management.commands.db_worker import Worker as DBWorker
from django_tasks_db.models import DBTaskResult
from django_tasks_db.utils import exclusive_transaction, is_locked_database_exception

from . import services

logger = logging.getLogger("tikting.jobs")

STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGQUIT") if hasattr(signal, name)
)


class Worker(DBWorker):
    def __init__(
        self,
        *,
        queue_names: list[str],
        worker_id: str,
        interval: float = 1.0,
        once: bool = False,
        max_tasks: int | None = None,
        run_schedule: bool = True,
        backend_name: str = "default",
    ) -> None:
        super().__init__(
            queue_names=queue_names,
            interval=interval,
            batch=once,
            backend_name=backend_name,
            startup_delay=False,
            max_tasks=max_tasks,
            worker_id=worker_id,
            excluded_queue_names=[],
        )
        self.run_schedule = run_schedule
        self.ran: list[DBTaskResult] = []
        self._wake = threading.Event()
        self._previous: dict[int, Any] = {}

    # -- Stopping --

    def shutdown(self, signum: int, frame: FrameType | None) -> None:
        """First signal: finish the current job, then stop. Second: stop now (exit status 1)."""
        if not self.running:
            logger.warning("Received %s again: stopping now.", signal.strsignal(signum))
            self.reset_signals()
            raise SystemExit(1)
        logger.warning(
            "Received %s: stopping after the current job (send it again to stop now).",
            signal.strsignal(signum),
        )
        self.stop()

    def stop(self) -> None:
        self.running = False
        self._wake.set()

    def configure_signals(self) -> None:
        """Stop gracefully on SIGTERM, SIGINT, SIGQUIT, except a signal the process was started
        ignoring: `make demo` runs the worker in the background, where Ctrl-C is meant for the web
        server and the Makefile sends the worker SIGTERM."""
        if threading.current_thread() is not threading.main_thread():
            return  # signals reach the main thread only (tests run workers in threads)
        for signum in STOP_SIGNALS:
            previous = signal.getsignal(signum)
            if previous is signal.SIG_IGN:
                continue
            self._previous[signum] = previous
            signal.signal(signum, self.shutdown)

    def reset_signals(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}

    # -- The loop --

    @staticmethod
    def refresh_connections() -> None:
        """Drop expired or broken connections between jobs, as Django does between requests; not
        inside a caller's transaction (a test, a worker run from code), which must keep its own."""
        if not connection.in_atomic_block:
            close_old_connections()

    def claim_next(self) -> tuple[DBTaskResult | None, bool]:
        """The next ready job, claimed for this worker; and whether the queue could be read (False
        when SQLite's database was locked by another writer: try again later)."""
        tasks = DBTaskResult.objects.ready().filter(backend_name=self.backend_name)
        if not self.process_all_queues:
            tasks = tasks.filter(queue_name__in=self.queue_names)
        try:
            with exclusive_transaction(tasks.db):
                job = tasks.get_locked()
                if job is not None:
                    job.claim(self.worker_id)
        except OperationalError as exc:
            if is_locked_database_exception(exc):
                return None, False
            raise
        return job, True

    def tick(self) -> None:
        """Enqueue the schedule's due entries (a locked SQLite database: next turn)."""
        try:
            services.enqueue_due()
        except OperationalError as exc:
            if not is_locked_database_exception(exc):
                raise

    def run(self) -> None:
        logger.info(
            "Worker %s started: queues %s, schedule %s.",
            self.worker_id,
            ",".join(self.queue_names),
            "on" if self.run_schedule else "off",
        )
        if self.run_schedule:
            services.sync_schedule()
        while self.running:
            self.refresh_connections()
            if self.run_schedule:
                self.tick()
            job, readable = self.claim_next()
            if job is not None:
                started = time.monotonic()
                self.run_task(job)
                job.refresh_from_db(fields=["status"])
                self.ran.append(job)
                logger.info(
                    "Job %s %s: %s in %.1f s.",
                    job.pk,
                    job.task_path,
                    job.status.lower(),
                    time.monotonic() - started,
                )
            elif self.batch and readable:
                logger.info("Worker %s: nothing due and the queue is empty; exiting.", self.worker_id)
                break
            if self.max_tasks is not None and self._run_tasks >= self.max_tasks:
                logger.info("Worker %s ran %d job(s), its maximum; exiting.", self.worker_id, self._run_tasks)
                break
            self.refresh_connections()
            if self.running and job is None:
                self._wake.wait(self.interval)
        logger.info("Worker %s stopped.", self.worker_id)
