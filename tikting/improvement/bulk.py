"""Bulk actions on register items: assign an owner, set the service or the practice, move a step,
and whatever apps above register (cadence: add to a sprint). Each item goes through the service
that changes it one by one (the same permission and precondition checks), in its own transaction,
and the result says per item what was done and why the others were refused (tikting/core/bulk.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError

from tikting.accounts.models import Actor, User
from tikting.cmdb.models import Service
from tikting.core.bulk import BulkResult, Outcome, run_each
from tikting.core.exceptions import PermissionDeniedError

from . import choices as C
from . import services as S
from .models import Item


@dataclass(frozen=True)
class BulkAction:
    key: str  # the form's `action` and the name of its value field
    label: str  # the button ("Assign")
    field_label: str  # the value's label ("Owner")
    options: Callable[[Actor], list[tuple[str, str]]]  # (value, label) choices for this user
    # Checks the value once and returns (what to say, a change applied to each item).
    prepare: Callable[[str, Actor], tuple[str, Callable[[Item], Any]]]
    allowed: Callable[[Actor], bool] = lambda user: True  # offered to this user at all


def _owner_options(user: Actor) -> list[tuple[str, str]]:
    owners = User.objects.filter(is_active=True, role__in=("owner", "manager", "admin")).order_by(
        "first_name", "last_name", "username"
    )
    return [("", "Nobody (unassign)")] + [(str(u.pk), str(u)) for u in owners]


def _prepare_owner(value: str, actor: Actor) -> tuple[str, Callable[[Item], Any]]:
    owner = None
    if value:
        owner = User.objects.filter(pk=int(value) if value.isdigit() else 0, is_active=True).first()
        if owner is None:
            raise ValidationError({"owner": "Choose an active user."})
    label = f"Assign to {owner}" if owner else "Unassign"
    return label, lambda item: S.update_item(item, actor=actor, owner=owner)


def _prepare_service(value: str, actor: Actor) -> tuple[str, Callable[[Item], Any]]:
    service = None
    if value:
        service = Service.objects.filter(pk=int(value) if value.isdigit() else 0).first()
        if service is None:
            raise ValidationError({"service": "Choose a service."})
    label = f"Set the service to {service}" if service else "Clear the service"
    return label, lambda item: S.update_item(item, actor=actor, service=service)


def _prepare_practice(value: str, actor: Actor) -> tuple[str, Callable[[Item], Any]]:
    if value not in C.Practice.values:
        raise ValidationError({"practice": "Choose a practice."})
    return (
        f"Set the practice to {C.Practice(value).label}",
        lambda item: S.update_item(item, actor=actor, practice=value),
    )


def _prepare_step(value: str, actor: Actor) -> tuple[str, Callable[[Item], Any]]:
    if value not in C.STEPS:
        raise ValidationError({"step": "Choose a step of the 7-step model."})
    return (
        f"Move to '{C.Status(value).label}'",
        lambda item: S.transition_item(item, actor=actor, to=value, reason="Moved in bulk"),
    )


ACTIONS: dict[str, BulkAction] = {
    a.key: a
    for a in (
        BulkAction("owner", "Assign", "Owner", _owner_options, _prepare_owner),
        BulkAction(
            "service",
            "Set",
            "Service",
            lambda user: (
                [("", "No service")] + [(str(s.pk), s.name) for s in Service.objects.order_by("name")]
            ),
            _prepare_service,
        ),
        BulkAction("practice", "Set", "Practice", lambda user: list(C.Practice.choices), _prepare_practice),
        BulkAction(
            "step", "Move", "Step", lambda user: [(s, C.Status(s).label) for s in C.STEPS], _prepare_step
        ),
    )
}


def register_bulk_action(action: BulkAction) -> None:
    """Apps above the register add their own (cadence: add to a sprint), from AppConfig.ready()."""
    ACTIONS[action.key] = action


def offered(user: Actor) -> list[dict[str, Any]]:
    return [
        {"key": a.key, "label": a.label, "field_label": a.field_label, "options": a.options(user)}
        for a in ACTIONS.values()
        if a.allowed(user)
    ]


def run(action_key: str, ids: list[int], value: str, *, actor: Actor) -> BulkResult:
    """Apply one action to the items `ids` (those the actor may see), item by item."""
    action = ACTIONS.get(action_key)
    if action is None:
        raise ValidationError({"action": "Choose one of the bulk actions offered."})
    if not action.allowed(actor):
        raise PermissionDeniedError(
            f"You may not {action.label.lower()} items to a {action.field_label.lower()}."
        )
    label, change = action.prepare(value, actor)
    items = Item.objects.visible_to(actor).in_bulk(ids)
    ordered = [items[i] for i in ids if i in items]
    missing = [i for i in ids if i not in items]
    result = run_each(
        ordered,
        change,
        action=label,
        describe=lambda item: (item.ref, item.title, item.get_absolute_url()),
    )
    for pk in missing:
        result.outcomes.append(Outcome(f"#{pk}", "", "", False, "No such item (removed meanwhile?)."))
    return result
