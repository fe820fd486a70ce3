"""`{% attachments_panel obj %}`: the files of an object, the drop zone and the file input."""

from __future__ import annotations

from typing import Any

from django import template
from django.conf import settings
from django.db import models

from tikting.accounts.models import Actor
from tikting.lib import display

from .. import registry
from .. import services as S

register = template.Library()


def panel_context(
    user: Actor,
    obj: models.Model,
    *,
    next_url: str = "",
    errors: list[str] | None = None,
    files: list[Any] | None = None,
    compact: bool = False,
) -> dict[str, Any]:
    items = list(S.for_target(obj)) if files is None else files
    for attachment in items:
        attachment.removable = S.can_remove(user, attachment)  # type: ignore[union-attr]
    return {
        "obj": obj,
        "target_key": registry.key_of(obj),
        "panel_id": f"attachments-{obj._meta.model_name}-{obj.pk}",
        "attachments": items,
        "can_attach": S.can_attach(user, obj),
        "next_url": next_url,
        "errors": errors or [],
        "compact": compact,
        "limit": display.size(settings.TIKTING_ATTACHMENT_MAX_BYTES),
        "accept": ",".join("." + ext for ext in S.allowed_extensions()),
        "extensions": ", ".join(S.allowed_extensions()),
    }


@register.inclusion_tag("attachments/panel.html", takes_context=True)
def attachments_panel(context: template.Context, obj: models.Model, compact: bool = False) -> dict[str, Any]:
    request = context["request"]
    # A page listing many objects (comments, minutes) sets `attachment_list` on each, read once.
    files = getattr(obj, "attachment_list", None)
    return {
        **panel_context(request.user, obj, next_url=request.get_full_path(), files=files, compact=compact),
        "csrf_token": context.get("csrf_token"),
        "request": request,
    }


@register.filter
def file_size(count: int) -> str:
    return display.size(count)
