"""Background tasks of the metrics engine (Django's Tasks API, run by `tikting db_worker`)."""

from __future__ import annotations

from django_tasks import task

from . import cache, engine


@task()
def warm_metrics(metrics: list[str] | None = None) -> dict[str, int]:
    """As `tikting metrics warm` does it: compute the metrics page's default views so they are
    ready for the next visitor, and delete answers too old to be used."""
    purged = cache.purge()
    return {"computed": engine.warm(metrics or None), "purged": purged}
