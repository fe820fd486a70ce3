"""Background tasks of Odysseus (Django's Tasks API, run by `tikting worker`)."""

from __future__ import annotations

from django_tasks import task

from . import snapshot


@task()
def take_snapshot() -> dict[str, int]:
    """The day's asset data accuracy snapshot (settings.TIKTING_SCHEDULE "discovery_snapshot"):
    staleness moves with the calendar even on a day without discovery. Rows are written only
    when a figure changed."""
    return {"written": snapshot.take()}
