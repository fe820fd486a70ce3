"""Background tasks of the intake queue (Django's Tasks API, run by `tikting worker`; scheduled in
settings.TIKTING_SCHEDULE)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django_tasks import task

from . import services
from .proposals import Window


@task()
def run_detectors(
    detectors: list[str] | None = None, start: str | None = None, end: str | None = None
) -> dict[str, Any]:
    """Run the detectors (default: every configured one) over the window from `start` to `end`
    (ISO dates, both inclusive; default: the last TIKTING_SIGNALS_WINDOW_DAYS days). Returns each
    detector's counts, or its error; a failing detector does not stop the others (its run is
    recorded as failed)."""
    window: Window | None = None
    if start or end:
        window = services.window_for(
            dt.date.fromisoformat(start) if start else None, dt.date.fromisoformat(end) if end else None
        )
    runs = services.run_detectors(detectors or None, window, trigger="task")
    failed = [run.detector for run in runs if run.status == "failed"]
    result: dict[str, Any] = {
        run.detector: (
            {"raised": run.raised, "merged": run.merged, "suppressed": run.suppressed}
            if run.status != "failed"
            else {"error": run.error.strip().splitlines()[-1] if run.error.strip() else "failed"}
        )
        for run in runs
    }
    if failed:
        # The job fails too, so the jobs page shows it (and offers a retry); the runs are recorded.
        raise RuntimeError(f"Detector(s) failed: {', '.join(failed)}. Counts: {result}")
    return result


@task()
def housekeeping(as_of: str | None = None) -> dict[str, int]:
    """Daily: deferred candidates whose date has come are back in the queue."""
    return {"woken": services.wake_deferred(as_of=dt.date.fromisoformat(as_of) if as_of else None)}
