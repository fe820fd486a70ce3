"""The intake queue's filters, shared by the page, the API and `tikting signals export`."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from .models import OPEN_STATUSES, Candidate


def filter_candidates(qs: QuerySet[Candidate], data: dict[str, Any]) -> QuerySet[Candidate]:
    """The queue's filters (shared by the page and the API): status (default new), channel,
    detector, service, a search in title and explanation; sorted by score (or newest, magnitude)."""
    status = data.get("status") or "new"
    if status == "open":
        qs = qs.filter(status__in=OPEN_STATUSES)
    elif status != "all":
        qs = qs.filter(status=status)
    if data.get("channel"):
        qs = qs.filter(channel=data["channel"])
    if data.get("detector"):
        qs = qs.filter(detector="" if data["detector"] == "manual" else data["detector"])
    if data.get("service"):
        qs = qs.filter(service=data["service"])
    if data.get("q"):
        qs = qs.filter(Q(title__icontains=data["q"]) | Q(explanation__icontains=data["q"]))
    order = {"newest": ["-created_at", "-id"], "magnitude": ["-magnitude", "-id"]}.get(
        data.get("sort") or "", ["-score", "-id"]
    )
    return qs.order_by(*order)
