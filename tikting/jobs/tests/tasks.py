"""Tasks the worker tests run (real django-tasks tasks, importable by their dotted path)."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django_tasks import task

# What the tasks did, in this process (the race tests run workers in threads of one process).
RAN: list[tuple[str, str]] = []
LOCK = threading.Lock()


@task()
def record(tag: str) -> dict[str, Any]:
    """Note that the job ran, and in which thread."""
    with LOCK:
        RAN.append((tag, threading.current_thread().name))
    return {"tag": tag, "ran": 1}


@task()
def add(a: int, b: int) -> dict[str, int]:
    return {"sum": a + b}


@task()
def explode(message: str = "the disk is full") -> None:
    raise RuntimeError(message)


@task()
def sigterm_self(tag: str) -> dict[str, str]:
    """Send this process SIGTERM while the job runs: the worker must finish the job, then stop."""
    signal.raise_signal(signal.SIGTERM)
    with LOCK:
        RAN.append((tag, "after-sigterm"))
    return {"finished": tag}


def not_a_task() -> None:
    return None
