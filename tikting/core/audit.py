"""Writing history: snapshots of records and audit rows, used by every service function."""

from __future__ import annotations

import datetime as dt
import decimal
import functools
from collections.abc import Iterable
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils import timezone

from tikting.lib import display

from . import writes
from .middleware import current_request_id
from .models import AuditEntry, StatusChange

# The columns of a core.AuditEntry row, in the order bulk writers (importers, reconciliation) give
# them when they write history rows in bulk, as record() would one by one.
BULK_COLUMNS = (
    "at",
    "actor_id",
    "request_id",
    "action",
    "content_type_id",
    "object_id",
    "object_repr",
    "root_content_type_id",
    "root_object_id",
    "changes",
    "message",
)


def plain(value: Any) -> Any:
    """A JSON-safe form of a field value."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return display.number(value)  # 3.2600 and 3.26 alike, 100 not 1E+2
    if isinstance(value, models.Model):
        return value.pk
    return value


# Values that are JSON already (plain() returns them as they are).
_AS_THEY_ARE = frozenset({str, int, bool, float, type(None)})


@functools.cache
def _snapshot_fields(model: type[models.Model]) -> tuple[tuple[str, str], ...]:
    """(name, attname) of the fields a snapshot holds: every concrete field but id and version."""
    return tuple(
        (field.name, field.attname)
        for field in model._meta.concrete_fields
        if field.name not in {"id", "version"}
    )


def snapshot(obj: models.Model, fields: Iterable[str] | None = None) -> dict[str, Any]:
    """Field values of a record, by attribute name (foreign keys by id)."""
    result: dict[str, Any] = {}
    for name, attname in _snapshot_fields(type(obj)):
        if fields is not None and name not in fields and attname not in fields:
            continue
        value = getattr(obj, attname)
        result[name] = value if type(value) in _AS_THEY_ARE else plain(value)
    return result


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    return {k: [before.get(k), v] for k, v in after.items() if before.get(k) != v}


def record(
    obj: models.Model,
    *,
    action: str,
    actor,
    changes: dict[str, Any] | None = None,
    root: models.Model | None = None,
    message: str = "",
) -> AuditEntry:
    root = root or obj
    entry = AuditEntry(
        actor=actor if getattr(actor, "pk", None) else None,
        request_id=current_request_id() or "",
        action=action,
        content_type=ContentType.objects.get_for_model(obj, for_concrete_model=False),
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        root_content_type=ContentType.objects.get_for_model(root, for_concrete_model=False),
        root_object_id=str(root.pk),
        changes=changes or {},
        message=message[:300],
    )
    return writes.insert(entry)


def record_status(
    obj: models.Model, *, old: str, new: str, actor, reason: str = "", at: dt.datetime | None = None
) -> StatusChange:
    return StatusChange.objects.create(
        at=at or timezone.now(),
        actor=actor if getattr(actor, "pk", None) else None,
        content_type=ContentType.objects.get_for_model(obj, for_concrete_model=False),
        object_id=str(obj.pk),
        old_status=old,
        new_status=new,
        reason=reason,
    )


def history_for(root: models.Model):
    """The audit rows of a record and its children, newest first."""
    return AuditEntry.objects.filter(
        root_content_type=ContentType.objects.get_for_model(root, for_concrete_model=False),
        root_object_id=str(root.pk),
    ).select_related("actor", "content_type")
