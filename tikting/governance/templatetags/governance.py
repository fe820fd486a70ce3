"""Template helpers of the governance pages, and the minutes shown on an item's page."""

from __future__ import annotations

from functools import cache

from django import template
from django.urls import reverse
from django.utils import timezone

from tikting.governance.models import Minute
from tikting.improvement import choices as IC

# Choice labels by field, for rows rendered by the hundred (get_FOO_display flattens the
# choices on every call).
LABELS = {
    "status": dict(IC.Status.choices),
    "practice": dict(IC.Practice.choices),
    "quadrant": dict(IC.Quadrant.choices),
    "outcome": dict(IC.Outcome.choices),
    "benefit_category": dict(IC.BenefitCategory.choices),
}
_SENTINEL = 987654321

register = template.Library()

KIND_BADGES = {
    "note": "secondary",
    "accept": "success",
    "defer": "warning",
    "reject": "danger",
    "continue": "primary",
    "adjust": "info",
    "escalate": "danger",
    "close": "dark",
    "assign": "primary",
}


@register.simple_tag
def item_minutes(item) -> list[Minute]:
    """The review minutes about an item, oldest first, with their meeting and author (one query)."""
    if item is None or not getattr(item, "pk", None):
        return []
    return list(Minute.objects.filter(item=item).select_related("meeting", "actor").order_by("at", "id"))


@register.filter
def label(value: str, field: str) -> str:
    """The display label of a register choice value: {{ item.status|label:"status" }}."""
    return str(LABELS.get(field, {}).get(value, value))


@cache
def _item_url_pattern() -> str:
    return reverse("improvement:detail", args=[_SENTINEL]).replace(str(_SENTINEL), "{}")


@register.filter
def item_url(item) -> str:
    """Item.get_absolute_url without a reverse() per row (the agenda shows up to 200 rows)."""
    return _item_url_pattern().format(item.pk)


@register.filter
def minute_badge(kind: str) -> str:
    return KIND_BADGES.get(kind, "secondary")


@register.filter
def days_from_today(day) -> int | None:
    """Whole days from today to `day` (negative: in the past), in the site's time zone."""
    if not day:
        return None
    return (day - timezone.localdate()).days


@register.filter
def absolute(value):
    return abs(value) if value is not None else None


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if hasattr(mapping, "get") else None
