"""Keeping the incidents' SLA due times and met flags current (tikting.slas.verdicts.apply_slas).

- an incident saved through the record service: evaluated in the same transaction
  (tikting/core/records.py);
- an import that writes incidents: applied to the incidents it wrote (tikting/imports/*);
- an SLA definition created, changed or deleted: re-applied, by a background task, to the
  incidents it may cover (signals.py, tasks.schedule_reapply);
- nightly (`tikting slas apply --open-only` or tasks.apply_slas): open incidents past due become
  breached as time passes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import Q, QuerySet

from tikting.slas.verdicts import OPEN_STATUSES, Progress, apply_slas

if TYPE_CHECKING:
    from tikting.incidents.models import Incident

__all__ = ["incidents", "reapply", "scope_of"]


def incidents(*, source: str | None = None, open_only: bool = False) -> QuerySet[Incident]:
    """The incidents of a source (all when None), only the open ones (new, in progress, on hold)
    when `open_only`."""
    from tikting.incidents.models import Incident

    qs = Incident.objects.all()
    if source is not None:
        qs = qs.filter(source=source)
    if open_only:
        qs = qs.filter(status__in=OPEN_STATUSES)
    return qs


def scope_of(service_id: int | None, priority: int | None) -> dict[str, Any]:
    """The incidents an SLA definition may cover, as JSON for a task: its priority, and its
    service unless it is a general one (service empty: every service of that priority)."""
    return {"service": service_id, "priority": priority}


def _scope_filter(scopes: list[dict[str, Any]] | None) -> Q | None:
    if scopes is None:
        return None
    q = Q(pk__in=[])
    for scope in scopes:
        if scope.get("priority") is None:
            return None  # cannot narrow: everything
        part = Q(priority=scope["priority"])
        if scope.get("service") is not None:
            part &= Q(service_id=scope["service"])
        q |= part
    return q


@transaction.atomic
def reapply(scopes: list[dict[str, Any]] | None = None, *, progress: Progress | None = None) -> int:
    """apply_slas over the incidents of the scopes (None: all incidents), all or nothing."""
    q = _scope_filter(scopes)
    qs = incidents() if q is None else incidents().filter(q)
    return apply_slas(qs, progress=progress)
