"""Bulk actions on the records of one kind: assign a group or a person, set the service, set the
status, each record through registry.update_record in its own transaction (the same checks as one
by one, a history row on each), reported record by record (tikting/core/bulk.py)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models

from tikting.accounts.models import Actor
from tikting.core.bulk import BulkResult, Outcome, run_each

from . import forms as F
from .registry import RecordKind, related_model, update_record

# The fields a bulk action may set, where a kind has them: (field, button, what the value is).
BULK_FIELDS = (
    ("assignment_group", "Assign", "Group"),
    ("assigned_to", "Assign", "Assignee"),
    ("service", "Set", "Service"),
    ("status", "Set", "Status"),
)
OPTIONS_CAP = 300


def _field(kind: RecordKind, name: str) -> models.Field | None:
    try:
        f = kind.model._meta.get_field(name)
    except Exception:
        return None
    return f if isinstance(f, models.Field) and f.editable and name not in kind.derived else None


def _options(f: models.Field) -> list[tuple[str, str]]:
    if f.is_relation:
        model = related_model(f)
        manager: Any = model._default_manager
        if hasattr(model, "is_active"):
            manager = manager.filter(is_active=True)
        rows = [(str(o.pk), F.name_of(o)) for o in manager.all()[:OPTIONS_CAP]]
        rows.sort(key=lambda r: r[1].lower())
        return ([("", "Nobody / none")] if f.null else []) + rows
    return [(str(v), str(label)) for v, label in f.choices or []]


def offered(kind: RecordKind) -> list[dict[str, Any]]:
    actions = []
    for name, button, label in BULK_FIELDS:
        f = _field(kind, name)
        if f is not None:
            actions.append({"key": name, "label": button, "field_label": label, "options": _options(f)})
    return actions


def _prepare(kind: RecordKind, name: str, raw: str) -> tuple[str, Any]:
    f = _field(kind, name)
    if f is None:
        raise ValidationError({"action": "Choose one of the bulk actions offered."})
    if f.is_relation:
        if not raw:
            if not f.null:
                raise ValidationError({name: "Choose a value."})
            return f"Clear the {F.label_of(kind.model, name).lower()}", None
        target = related_model(f)._default_manager.filter(pk=int(raw) if raw.isdigit() else 0).first()
        if target is None:
            raise ValidationError({name: "Choose one of the values offered."})
        return f"Set the {F.label_of(kind.model, name).lower()} to {F.name_of(target)}", target
    labels = {str(v): str(label) for v, label in f.choices or []}
    if raw not in labels:
        raise ValidationError({name: "Choose one of the values offered."})
    return f"Set the {F.label_of(kind.model, name).lower()} to {labels[raw]}", raw


def run(kind: RecordKind, name: str, ids: list[int], raw: str, *, actor: Actor) -> BulkResult:
    label, value = _prepare(kind, name, raw)
    found = kind.model._default_manager.in_bulk(ids)

    def change(obj: models.Model) -> Any:
        return update_record(obj, actor=actor, **{name: value})

    def describe(obj: models.Model) -> tuple[str, str, str]:
        key, title = kind.key_of(obj), kind.title_of(obj)
        return key, title if title != key else "", F.record_url(obj)

    result = run_each([found[i] for i in ids if i in found], change, action=label, describe=describe)
    for pk in (i for i in ids if i not in found):
        result.outcomes.append(Outcome(f"#{pk}", "", "", False, f"No such {kind.label.lower()}."))
    return result
