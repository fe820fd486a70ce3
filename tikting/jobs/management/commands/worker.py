"""`tikting worker`: run the background jobs (django-tasks, database backend) and the schedule.

    tikting worker                       # until stopped (SIGTERM / Ctrl-C finish the current job first)
    tikting worker --once                # enqueue what is due, run the queue until empty, exit
    tikting worker --queue default,slow  # only these queues ('*': every queue)
    tikting worker --max-tasks 100       # exit after 100 jobs (a supervisor starts a fresh one)
    tikting worker --no-schedule         # the queue only; other workers enqueue the schedule

Run one on SQLite, as many as you like on PostgreSQL (docs/deployment.md). The schedule is
settings.TIKTING_SCHEDULE (docs/signals.md, "The schedule"); each due entry is enqueued once
however many workers run it.
"""

from __future__ import annotations

import logging
from argparse import ArgumentTypeError
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.crypto import get_random_string
from django_tasks_db.backend import DatabaseBackend
from django_tasks_db.compat import DEFAULT_TASK_QUEUE_NAME, task_backends

from tikting.jobs import schedule
from tikting.jobs.worker import Worker


def positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise ArgumentTypeError("must be a whole number greater than zero")
    return number


def interval(value: str) -> float:
    number = float(value)
    if not 0 <= number <= 3600:
        raise ArgumentTypeError("must be between 0 and 3600 seconds")
    return number


class Command(BaseCommand):
    help = "Run background jobs and the schedule (SIGTERM or Ctrl-C: finish the current job, then stop)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--once", action="store_true", help="Enqueue what is due, run the queue until it is empty, exit."
        )
        parser.add_argument(
            "--queue",
            default=DEFAULT_TASK_QUEUE_NAME,
            help="Queues to run, comma-separated; '*' for every queue (default: %(default)s).",
        )
        parser.add_argument("--max-tasks", type=positive_int, help="Exit after running this many jobs.")
        parser.add_argument(
            "--interval",
            type=interval,
            default=1.0,
            help="Seconds to wait when nothing is queued before looking again (default: %(default)s).",
        )
        parser.add_argument(
            "--no-schedule", action="store_true", help="Run the queue only; do not enqueue the schedule."
        )
        parser.add_argument("--worker-id", help="A name unique across workers (default: generated).")

    def handle(self, *args: Any, **options: Any) -> None:
        if not isinstance(task_backends["default"], DatabaseBackend):
            raise CommandError(
                "tikting worker runs the database task backend; TASKS['default'] is "
                f"{type(task_backends['default']).__name__} (unset TIKTING_TASKS_BACKEND)."
            )
        try:
            entries = schedule.entries() if not options["no_schedule"] else []
            for entry in entries:
                entry.load_task()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        worker = Worker(
            queue_names=[q.strip() for q in options["queue"].split(",") if q.strip()]
            or [DEFAULT_TASK_QUEUE_NAME],
            worker_id=options["worker_id"] or get_random_string(16),
            interval=options["interval"],
            once=options["once"],
            max_tasks=options["max_tasks"],
            run_schedule=not options["no_schedule"],
        )
        logger = logging.getLogger("tikting.jobs")
        handler = logging.StreamHandler(self.stdout)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
        level, propagate = logger.level, logger.propagate
        logger.addHandler(handler)
        logger.setLevel(logging.WARNING if options["verbosity"] == 0 else logging.INFO)
        logger.propagate = False
        worker.configure_signals()
        try:
            worker.run()
        finally:
            worker.reset_signals()
            logger.removeHandler(handler)
            logger.setLevel(level)
            logger.propagate = propagate
        failed = sum(1 for job in worker.ran if job.status == "FAILED")
        if options["once"] or options["max_tasks"]:
            self.stdout.write(f"Ran {len(worker.ran)} job(s), {failed} failed.")
