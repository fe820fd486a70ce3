"""Figures of sprints: the measured result of an item and velocity (items and hours per sprint)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db.models import QuerySet, Sum

from tikting.improvement import choices as IC
from tikting.improvement.models import Item

from .models import Column, Sprint, SprintItem, SprintStatus, TimeLog


def measured_result(item: Item) -> dict[str, Any]:
    """The item's measured result from its indicators: the first primary indicator with a baseline,
    its latest measurement against baseline and target. {} when nothing is measured yet. Values
    are decimal text at full precision (JSON-safe)."""
    for indicator in item.indicators.all():
        if indicator.role != IC.IndicatorRole.PRIMARY or indicator.baseline_value is None:
            continue
        latest = indicator.latest_measurement()
        result: dict[str, Any] = {
            "indicator": indicator.name,
            "unit": indicator.unit,
            "direction": indicator.direction,
            "baseline": str(indicator.baseline_value),
            "target": None if indicator.target_value is None else str(indicator.target_value),
            "latest": None,
            "measured_at": None,
            "delta": None,
            "met": False,
            "improved": False,
        }
        if latest is not None:
            result.update(
                latest=str(latest.value),
                measured_at=latest.measured_at.isoformat(),
                delta=str(latest.value - indicator.baseline_value),
                met=indicator.meets_target(latest.value),
                improved=indicator.improved(latest.value),
            )
        return result
    return {}


def velocity(sprints: QuerySet[Sprint]) -> dict[str, Any]:
    """Velocity over the reviewed sprints among `sprints`: items done (cards in Done at the review)
    and hours logged, in total and per sprint. Open sprints are left out: their figures still move."""
    closed = sprints.filter(status=SprintStatus.CLOSED)
    count = closed.count()
    items = SprintItem.objects.filter(sprint__in=closed, column=Column.DONE).count()
    hours = TimeLog.objects.filter(card__sprint__in=closed).aggregate(total=Sum("hours"))["total"] or Decimal(
        0
    )
    return {
        "sprints": count,
        "items_done": items,
        "hours_logged": hours,
        "items_per_sprint": (Decimal(items) / count) if count else None,
        "hours_per_sprint": (hours / count) if count else None,
    }
