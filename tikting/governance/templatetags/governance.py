"""Template helpers of the governance pages, and the minutes shown on an item's page."""

from __future__ import annotations

from django import template

from tikting.governance.models import Minute

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
def minute_badge(kind: str) -> str:
    return KIND_BADGES.get(kind, "secondary")


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if hasattr(mapping, "get") else None
