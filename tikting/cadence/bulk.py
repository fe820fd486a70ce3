"""The register's bulk action "add to sprint" (tikting/improvement/bulk.py): each item through
services.add_sprint_item, with its checks (open item, in no other open sprint, the scope limit)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError

from tikting.accounts.models import Actor
from tikting.improvement.bulk import BulkAction, register_bulk_action

from . import permissions as P
from . import services as S
from .models import Sprint, SprintStatus


def _open_sprints() -> Any:
    return Sprint.objects.exclude(status=SprintStatus.CLOSED).select_related("team").order_by("start", "name")


def _options(user: Actor) -> list[tuple[str, str]]:
    return [(str(s.pk), f"{s.name} · {s.team} ({s.get_status_display().lower()})") for s in _open_sprints()]


def _prepare(value: str, actor: Actor) -> tuple[str, Callable[[Any], Any]]:
    sprint = _open_sprints().filter(pk=int(value) if value.isdigit() else 0).first()
    if sprint is None:
        raise ValidationError({"sprint": "Choose a sprint that is planned or under way."})
    return f"Add to {sprint.name}", lambda item: S.add_sprint_item(sprint, actor=actor, item=item)


def register() -> None:
    register_bulk_action(BulkAction("sprint", "Add", "Sprint", _options, _prepare, allowed=P.can_plan))
