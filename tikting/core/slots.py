"""Places on a page that apps above fill: a lower app's template asks for `{% slot "name" obj %}`,
and whatever an app registered for that name renders there (the notifications app's Follow button
on an item's and a record's page). The page's app imports nothing of the app filling the slot.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest
from django.utils.html import format_html_join
from django.utils.safestring import SafeString, mark_safe

Renderer = Callable[[HttpRequest, Any], str]
_renderers: dict[str, list[Renderer]] = {}


def register_slot(name: str, renderer: Renderer) -> None:
    """`renderer(request, obj)` returns HTML (safe, escaped by the renderer) for slot `name`."""
    found = _renderers.setdefault(name, [])
    if renderer not in found:
        found.append(renderer)


def render_slot(name: str, request: HttpRequest | None, obj: Any) -> SafeString:
    if request is None:
        return mark_safe("")
    parts = [renderer(request, obj) for renderer in _renderers.get(name, [])]
    return format_html_join("", "{}", ((mark_safe(part),) for part in parts if part))  # noqa: S308
