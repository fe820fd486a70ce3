"""Export of the register: one row per item, streamed, with its indicators and actions nested."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from tikting.lib.tabular import FORMATS
from tikting.lib.tabular import csv_cell as _csv_cell

from ..models import Item

if TYPE_CHECKING:
    from _typeshed import SupportsWrite
from .columns import CHUNK_SIZE, CSV_FIELDS, EXPORT_FIELDS, _ref, _text


def export_queryset(qs: QuerySet | None = None, *, nested: bool = True) -> QuerySet:
    qs = Item.objects.all() if qs is None else qs
    qs = qs.select_related("service", "owner").order_by("id")
    if nested:
        qs = qs.prefetch_related("indicators__measurements", "actions__owner")
    return qs


def item_record(item: Item, *, nested: bool = True) -> dict[str, Any]:
    """One item as a plain dict of the export fields (and nested indicators and actions)."""
    special = {
        "ref": item.ref,
        "external_id": item.external_id or "",
        "service": item.service.name if item.service else "",
        "owner": item.owner.username if item.owner else "",
        "parent": _ref(item.parent_id),
    }
    row: dict[str, Any] = {
        name: special[name] if name in special else _text(getattr(item, name)) for name in EXPORT_FIELDS
    }
    if nested:
        row["indicators"] = [
            {
                "name": ind.name,
                "unit": ind.unit,
                "direction": ind.direction,
                "role": ind.role,
                "baseline_value": _text(ind.baseline_value),
                "baseline_date": _text(ind.baseline_date),
                "baseline_method": ind.baseline_method,
                "target_value": _text(ind.target_value),
                "target_date": _text(ind.target_date),
                "min_value": _text(ind.min_value),
                "max_value": _text(ind.max_value),
                "metric_key": ind.metric_key,
                "metric_scope": ind.metric_scope,
                "measurements": [
                    {
                        "value": _text(m.value),
                        "measured_at": _text(m.measured_at),
                        "note": m.note,
                        "source": m.source,
                    }
                    for m in ind.measurements.all()
                ],
            }
            for ind in item.indicators.all()
        ]
        row["actions"] = [
            {
                "title": action.title,
                "owner": action.owner.username if action.owner else "",
                "due_date": _text(action.due_date),
                "done": action.done,
                "done_at": _text(action.done_at),
                "cancelled": action.cancelled,
                "cancel_reason": action.cancel_reason,
                "cancelled_at": _text(action.cancelled_at),
            }
            for action in item.actions.all()
        ]
    return row


def export_items(
    stream: SupportsWrite[str],
    *,
    fmt: str = "csv",
    qs: QuerySet | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write the items of `qs` (default: all) to `stream` in `fmt`; returns the number of rows.

    json is one JSON array with one item per line; jsonl is JSON Lines (one object a line).
    """
    if fmt not in FORMATS:
        raise ValidationError({"format": f"Choose one of: {', '.join(FORMATS)}."})
    count = 0
    rows = export_queryset(qs).iterator(chunk_size=CHUNK_SIZE)
    if fmt == "csv":
        writer = csv.DictWriter(stream, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for item in rows:
            record = item_record(item)
            for key in ("indicators", "actions"):
                record[key] = json.dumps(record[key], ensure_ascii=False) if record[key] else ""
            writer.writerow({k: "" if v is None else _csv_cell(v) for k, v in record.items()})
            count += 1
            if progress:
                progress(count)
        return count
    if fmt == "json":
        stream.write("[")
    for item in rows:
        line = json.dumps(item_record(item), ensure_ascii=False)
        if fmt == "json":
            stream.write(("\n" if count == 0 else ",\n") + line)
        else:
            stream.write(line + "\n")
        count += 1
        if progress:
            progress(count)
    if fmt == "json":
        stream.write("\n]\n")
    return count
