"""`{% saved_views_sidebar "register" %}`: the views someone may open, and saving the list as it is."""

from __future__ import annotations

from typing import Any

from django import template

from .. import registry
from .. import services as S

register = template.Library()


@register.inclusion_tag("savedviews/sidebar.html", takes_context=True)
def saved_views_sidebar(context: template.Context, list_key: str) -> dict[str, Any]:
    request = context["request"]
    user = request.user
    saved = registry.get(list_key)
    lists = registry.all_lists()
    views = list(S.visible_to(user).order_by("list_key", "name"))
    current = request.GET.get("view", "")
    groups: dict[str, dict[str, Any]] = {}
    for view in views:
        label = lists[view.list_key].label if view.list_key in lists else view.list_key
        group = groups.setdefault(
            view.list_key, {"label": label, "views": [], "here": view.list_key == list_key}
        )
        view.mine = view.owner_id == user.pk  # type: ignore[attr-defined]
        view.current = str(view.pk) == current  # type: ignore[attr-defined]
        group["views"].append(view)
    ordered = sorted(groups.values(), key=lambda g: (not g["here"], g["label"]))
    return {
        "groups": ordered,
        "list_key": list_key,
        "list_label": saved.label if saved else list_key,
        "query": registry.clean_query(saved, request.GET) if saved else "",
        "next_url": request.get_full_path(),
        "has_team": bool(getattr(user, "team_id", None)),
        "csrf_token": context.get("csrf_token"),
        "here_count": len(groups.get(list_key, {}).get("views", [])),
    }
