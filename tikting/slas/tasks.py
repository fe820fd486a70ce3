"""Background tasks of SLA management (Django's Tasks API, run by `tikting db_worker`)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django_tasks import task

from . import services


@task()
def reapply_slas(scopes: list[dict[str, Any]] | None = None) -> dict[str, int]:
    """Re-apply the SLA definitions to the incidents they may cover after a definition was
    created, changed or deleted. `scopes`: [{"service": id or null, "priority": p}, …] (null =
    every incident). Returns the number of incidents evaluated."""
    return {"incidents": services.reapply(scopes)}


@task()
def apply_slas(source: str | None = None, open_only: bool = True) -> dict[str, int]:
    """The nightly run, as `tikting slas apply --open-only` does it: open incidents past their due
    time become breached."""
    with transaction.atomic():  # all or nothing, as the command does it
        return {"incidents": services.apply_slas(services.incidents(source=source, open_only=open_only))}


def schedule_reapply(scopes: list[dict[str, Any]] | None) -> None:
    """Enqueue reapply_slas once the current transaction commits (the worker must see the
    saved definition; a rolled-back save enqueues nothing)."""
    transaction.on_commit(lambda: reapply_slas.enqueue(scopes))
