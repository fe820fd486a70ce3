"""Import and export of the register (CSV, JSON, JSON Lines): the services behind
`tikting register export|import` (and, later, the API's import/export endpoints).

Formats, columns and matching rules are documented in docs/import-formats.md; keep them in step.

Export streams (`QuerySet.iterator()`), one row per item. Import streams too (csv.DictReader over
the file; JSON Lines line by line; a JSON array object by object), validates every row with cheap
explicit checks instead of `full_clean()` (measured: it dominated the import time), and writes in
chunks: lookups (services, users, existing refs and external ids) are loaded once, new items are
`bulk_create`d with their audit rows and status-change rows, and only rows that differ from the
database are updated. A chunk is written in one transaction; if it fails as a whole (an integrity
error the checks did not foresee) it is replayed row by row, each row in its own savepoint, so
good rows are always kept.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import IO, Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.core.management.color import no_style
from django.db import DatabaseError, connection, transaction
from django.db.models import QuerySet, Value
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from tikting.accounts.models import User
from tikting.cmdb.models import Service
from tikting.core.audit import diff, plain, snapshot
from tikting.core.middleware import current_request_id
from tikting.core.models import AuditEntry, StatusChange
from tikting.lib.tabular import FORMATS, ChunkedImport, FileFormatError, format_for, read_csv, read_json
from tikting.lib.tabular import csv_cell as _csv_cell

from . import choices as C
from . import permissions as P
from . import services as S
from .models import Action, Indicator, Item, Measurement

__all__ = [
    "EXPORT_FIELDS",
    "FORMATS",
    "ImportResult",
    "RowError",
    "export_items",
    "format_for",
    "import_items",
    "item_record",
]

# The register's columns, in export order. quadrant and priority_score are derived from impact
# and effort: exported for reading, ignored on import.
EXPORT_FIELDS: tuple[str, ...] = (
    "ref",
    "external_id",
    "title",
    "description",
    "practice",
    "service",
    "justification",
    "justification_type",
    "vision",
    "expected_outcome",
    "impact",
    "effort",
    "quadrant",
    "priority_score",
    "rank",
    "owner",
    "target_date",
    "review_milestone",
    "status",
    "blocked",
    "blocker",
    "source_channel",
    "source_reference",
    "assessment_reason",
    "revisit_date",
    "outcome",
    "benefit_category",
    "realised_delta",
    "lessons",
    "identified_at",
    "closed_at",
    "parent",
)
# In CSV, an item's indicators (with their measurements) and its actions are one cell each,
# holding the same JSON as the nested lists of the JSON format.
CSV_FIELDS: tuple[str, ...] = (*EXPORT_FIELDS, "indicators", "actions")
DERIVED_FIELDS = frozenset({"quadrant", "priority_score"})
# Attributes an import may change besides the row's own values: derived, or implied by the status.
IMPLIED_ATTRS = ("quadrant", "priority_score", "due_soon_from", "closed_at", "blocked_since", "escalated_at")

CHUNK_SIZE = 500
REF_RE = re.compile(r"^(?:CI-)?0*(\d+)$", re.IGNORECASE)  # the ref column: CI-00012 or 12
PARENT_REF_RE = re.compile(r"^CI-0*(\d+)$", re.IGNORECASE)  # the parent column: a ref, else an external id


# --- Export ----------------------------------------------------------------------------------


def _text(value: Any) -> Any:
    """A JSON/CSV-safe value: dates ISO 8601, decimals without trailing zeros, None kept."""
    if isinstance(value, dt.datetime):
        return timezone.localtime(value).isoformat() if timezone.is_aware(value) else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return value


def _ref(pk: int | None) -> str:
    return f"CI-{pk:05d}" if pk else ""


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
        "service": item.service.name if item.service_id else "",
        "owner": item.owner.username if item.owner_id else "",
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
                "owner": action.owner.username if action.owner_id else "",
                "due_date": _text(action.due_date),
                "done": action.done,
                "done_at": _text(action.done_at),
            }
            for action in item.actions.all()
        ]
    return row


def export_items(
    stream: IO[str],
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


# --- Reading files ---------------------------------------------------------------------------


def read_rows(stream: IO[str], fmt: str) -> Iterator[tuple[int, Any]]:
    """(line number, raw row) pairs, streamed. A row is a dict, or an Exception for a bad line."""
    if fmt == "csv":
        yield from read_csv(stream, CSV_FIELDS)
    elif fmt in {"json", "jsonl"}:
        yield from read_json(stream)
    else:
        raise ValidationError({"format": f"Choose one of: {', '.join(FORMATS)}."})


# --- Import: parsing and validating one row --------------------------------------------------


@dataclass
class RowError:
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}, {self.field}: {self.message}"


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    errors: list[RowError] = field(default_factory=list)
    dry_run: bool = False

    @property
    def rows(self) -> int:
        return self.created + self.updated + self.unchanged + self.failed

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "dry_run": self.dry_run,
            "errors": [{"line": e.line, "field": e.field, "message": e.message} for e in self.errors],
        }


class RowInvalid(Exception):
    def __init__(self, errors: dict[str, str]):
        super().__init__(errors)
        self.errors = errors


TEXT_LIMITS = {
    "title": 200,
    "review_milestone": 120,
    "source_reference": 300,
    "external_id": 100,
}
TEXT_FIELDS = (
    "title",
    "description",
    "justification",
    "vision",
    "expected_outcome",
    "review_milestone",
    "blocker",
    "source_reference",
    "assessment_reason",
    "lessons",
)
# Choice fields that may be blank, and those that fall back to the model's default when blank.
BLANK_CHOICES = {
    "practice": C.Practice.values,
    "outcome": C.Outcome.values,
    "benefit_category": C.BenefitCategory.values,
}
DEFAULT_CHOICES = {
    "justification_type": C.JustificationType.values,
    "source_channel": C.SourceChannel.values,
    "status": C.Status.values,
}
TRUE = {"1", "true", "yes", "y", "on", "x"}
FALSE = {"0", "false", "no", "n", "off", ""}


def _s(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


def _parse_date(value: Any) -> dt.date | None:
    text = _s(value)
    if not text:
        return None
    try:
        parsed = parse_date(text)
    except ValueError:
        parsed = None
    if parsed is None:
        raise ValueError(f"'{text}' is not a date (YYYY-MM-DD).")
    return parsed


def _parse_datetime(value: Any) -> dt.datetime | None:
    text = _s(value)
    if not text:
        return None
    try:
        parsed = parse_datetime(text)
        if parsed is None:
            day = parse_date(text)
            parsed = dt.datetime.combine(day, dt.time()) if day else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise ValueError(f"'{text}' is not a date-time (ISO 8601, e.g. 2025-03-01T09:30:00+00:00).")
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed)
    return parsed


def _parse_decimal(value: Any, digits: int = 16, places: int = 4) -> Decimal | None:
    text = _s(value)
    if not text:
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        raise ValueError(f"'{text}' is not a number.")
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)
    if -exponent > places:
        raise ValueError(f"'{text}' has more than {places} decimal places.")
    if abs(number) >= Decimal(10) ** (digits - places):
        raise ValueError(f"'{text}' is too large.")
    # Stored with `places` decimals: quantized, it compares equal to what the database gives back.
    return number.quantize(Decimal(1).scaleb(-places))


def _parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = _s(value).lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ValueError(f"'{value}' is not true or false.")


def _parse_int(value: Any, low: int, high: int | None) -> int | None:
    text = _s(value)
    if not text:
        return None
    if isinstance(value, float) and value.is_integer():
        text = str(int(value))
    if not re.fullmatch(r"[+-]?\d+", text):
        raise ValueError(f"'{text}' is not a whole number.")
    number = int(text)
    if number < low or (high is not None and number > high):
        raise ValueError(
            f"'{text}' is not between {low} and {high}." if high else f"'{text}' must be {low} or more."
        )
    return number


def _parse_ref(value: Any) -> int | None:
    text = _s(value)
    if not text or text.lower() == "ci-new":
        return None
    match = REF_RE.match(text)
    if not match:
        raise ValueError(f"'{text}' is not a register reference like CI-00012.")
    return int(match.group(1))


@dataclass
class Plan:
    """What one valid row will do: create or update an item, and its nested records."""

    line: int
    item: Item
    is_new: bool
    changes: dict[str, list[Any]]
    old_status: str = ""
    indicators: list[dict[str, Any]] | None = None
    actions: list[dict[str, Any]] | None = None
    parent_token: str = ""  # a parent not known yet (later in the file): resolved at the end
    explicit_pk: bool = False  # a new item keeping the ref given in the file
    version: int = 1
    saved_versions: list[tuple[Any, int]] = field(default_factory=list)
    changed_attrs: set[str] = field(default_factory=set)
    nested_changes: bool = False
    new_indicators: list[Indicator] = field(default_factory=list)
    new_measurements: list[tuple[Indicator, Measurement]] = field(default_factory=list)
    changed_indicators: list[tuple[Indicator, dict[str, list[Any]]]] = field(default_factory=list)
    new_actions: list[Action] = field(default_factory=list)
    changed_actions: list[tuple[Action, dict[str, list[Any]]]] = field(default_factory=list)

    def nested_versions(self) -> list[tuple[Indicator | Action, int]]:
        return [(obj, obj.version) for obj, _c in (*self.changed_indicators, *self.changed_actions)]


class Importer(ChunkedImport):
    chunk_size = CHUNK_SIZE

    """One import run. Use `import_items()`."""

    def __init__(self, *, actor, create_services: bool, dry_run: bool):
        self.actor = actor if getattr(actor, "pk", None) else None
        self.create_services = create_services
        self.dry_run = dry_run
        self.result = ImportResult(dry_run=dry_run)
        self.now = timezone.now()
        self.request_id = current_request_id() or ""
        self.services = dict(Service.objects.values_list("name", "id"))
        self.services_folded = {name.casefold(): pk for name, pk in self.services.items()}
        self.users = dict(User.objects.values_list("username", "id"))
        self.ids: set[int] = set(Item.objects.values_list("id", flat=True))
        self.external_ids: dict[str, int] = dict(
            Item.objects.exclude(external_id=None).exclude(external_id="").values_list("external_id", "id")
        )
        self.ct = {
            model: ContentType.objects.get_for_model(model)
            for model in (Item, Indicator, Measurement, Action)
        }
        self.pending: list[tuple[int, dict[str, Any]]] = []
        self.pending_keys: set[Any] = set()
        self.deferred_parents: list[tuple[int, int, str]] = []  # (line, item pk, token)
        self.unchanged_lines: dict[int, int] = {}  # item pk → line, for rows counted unchanged
        self.nested_indicators: dict[int, dict[str, Indicator]] = {}  # item pk → name → indicator
        self.nested_times: dict[int, set[dt.datetime]] = {}  # indicator pk → measurement times
        self.nested_actions: dict[int, dict[str, Action]] = {}  # item pk → title → action

    # -- errors --

    def fail(self, line: int, errors: dict[str, str]) -> None:
        self.result.failed += 1
        for name, message in errors.items():
            self.result.errors.append(RowError(line, name, message))

    # -- the run --

    @staticmethod
    def row_keys(raw: dict[str, Any]) -> set[Any]:
        keys: set[Any] = set()
        with contextlib.suppress(ValueError):
            ref = _parse_ref(raw.get("ref"))
            if ref:
                keys.add(("ref", ref))
        ext = _s(raw.get("external_id"))
        if ext:
            keys.add(("ext", ext))
        return keys

    def flush(self) -> None:
        rows, self.pending, self.pending_keys = self.pending, [], set()
        if not rows:
            return
        existing = self._load_existing(rows)
        plans: list[Plan] = []
        for line, raw in rows:
            try:
                plan = self.plan(line, raw, existing)
            except RowInvalid as exc:
                self.fail(line, exc.errors)
                continue
            if plan is None:
                continue
            plans.append(plan)
        if not plans:
            return
        try:
            with transaction.atomic():
                self.write(plans)
        except (DatabaseError, ValidationError):
            # Something the checks did not foresee: keep the good rows, one savepoint each.
            for plan in plans:
                self._reset(plan)
                try:
                    with transaction.atomic():
                        self.write([plan])
                except (DatabaseError, ValidationError) as exc:
                    self.fail(plan.line, {"row": f"Not saved: {exc}"})
                    continue
                self._count(plan)
        else:
            for plan in plans:
                self._count(plan)

    def _reset(self, plan: Plan) -> None:
        """Undo what a failed write left on the objects, so the row can be written again alone."""
        plan.item.version = plan.version
        if plan.is_new:
            plan.item._state.adding = True
            if not plan.explicit_pk:
                plan.item.pk = None
        for ind in plan.new_indicators:
            ind.pk = None
        for _ind, m in plan.new_measurements:
            m.pk = None
        for action in plan.new_actions:
            action.pk = None
        for obj, version in plan.saved_versions:
            obj.version = version

    def _count(self, plan: Plan) -> None:
        item = plan.item
        self.ids.add(item.pk)
        if item.external_id:
            self.external_ids[item.external_id] = item.pk
        if plan.is_new:
            self.result.created += 1
        elif plan.changed_attrs or plan.nested_changes:
            self.result.updated += 1
        else:
            self.result.unchanged += 1
            self.unchanged_lines[item.pk] = plan.line
        if plan.parent_token:
            self.deferred_parents.append((plan.line, item.pk, plan.parent_token))

    def _load_existing(self, rows: list[tuple[int, dict[str, Any]]]) -> dict[int, Item]:
        """The items the rows of a chunk match, by pk (and their nested records, see _load_nested)."""
        self.nested_indicators, self.nested_times, self.nested_actions = {}, {}, {}
        pks: set[int] = set()
        for _line, raw in rows:
            with contextlib.suppress(ValueError):
                ref = _parse_ref(raw.get("ref"))
                if ref in self.ids:
                    pks.add(ref)
                    continue
            ext = _s(raw.get("external_id"))
            if ext in self.external_ids:
                pks.add(self.external_ids[ext])
        if not pks:
            return {}
        items = {item.pk: item for item in Item.objects.filter(pk__in=pks)}
        self._load_nested(rows, items)
        return items

    def _load_nested(self, rows: list[tuple[int, dict[str, Any]]], items: dict[int, Item]) -> None:
        """Indicators (with measurement times) and actions of the matched items whose rows carry them.

        Loaded by hand in three queries: prefetch_related clones a queryset per item, which
        dominated the time of a re-import.
        """
        wanted: set[int] = set()
        for _line, raw in rows:
            if not (raw.get("indicators") or raw.get("actions")):
                continue
            with contextlib.suppress(ValueError):
                ref = _parse_ref(raw.get("ref"))
                if ref in items:
                    wanted.add(ref)
                    continue
            ext = _s(raw.get("external_id"))
            if self.external_ids.get(ext) in items:
                wanted.add(self.external_ids[ext])
        if not wanted:
            return
        for ind in Indicator.objects.filter(item_id__in=wanted).order_by("id"):
            self.nested_indicators.setdefault(ind.item_id, {}).setdefault(ind.name, ind)
            self.nested_times[ind.pk] = set()
        for indicator_id, at in Measurement.objects.filter(indicator__item_id__in=wanted).values_list(
            "indicator_id", "measured_at"
        ):
            self.nested_times[indicator_id].add(at)
        for action in Action.objects.filter(item_id__in=wanted).order_by("id"):
            self.nested_actions.setdefault(action.item_id, {}).setdefault(action.title, action)

    # -- planning one row --

    def plan(self, line: int, raw: dict[str, Any], existing: dict[int, Item]) -> Plan | None:
        errors: dict[str, str] = {}
        unknown = [k for k in raw if k not in CSV_FIELDS]
        if unknown:
            errors["row"] = f"Unknown field(s): {', '.join(sorted(unknown))}."
        try:
            ref = _parse_ref(raw.get("ref"))
        except ValueError as exc:
            raise RowInvalid({"ref": str(exc)}) from exc
        ext = _s(raw.get("external_id"))
        if len(ext) > TEXT_LIMITS["external_id"]:
            raise RowInvalid({"external_id": f"At most {TEXT_LIMITS['external_id']} characters."})
        item: Item | None = None
        if ref is not None and ref in self.ids:
            item = existing[ref]
            if ext and item.external_id and item.external_id != ext:
                raise RowInvalid(
                    {
                        "external_id": f"{item.ref} has external_id '{item.external_id}', the row says "
                        f"'{ext}': refusing to guess which item is meant."
                    }
                )
            if ext and self.external_ids.get(ext, item.pk) != item.pk:
                raise RowInvalid(
                    {"external_id": f"'{ext}' already belongs to {_ref(self.external_ids[ext])}."}
                )
        elif ref is not None:
            if ext and ext in self.external_ids:
                raise RowInvalid(
                    {
                        "ref": f"{_ref(ref)} does not exist, but external_id '{ext}' belongs to "
                        f"{_ref(self.external_ids[ext])}."
                    }
                )
        elif ext:
            if ext in self.external_ids:
                item = existing[self.external_ids[ext]]
        else:
            raise RowInvalid({"ref": "Give a ref (CI-00012) or an external_id to match the row on."})

        is_new = item is None
        if is_new:
            item = Item(pk=ref) if ref is not None else Item()
            item.submitted_by_id = self.actor.pk if self.actor else None
        assert item is not None
        old_status = "" if is_new else item.status
        values = self._values(raw, errors, item, is_new)
        if ext:  # a blank external_id never clears one
            values["external_id"] = ext
        parent_token = values.pop("_parent_token", "")
        if errors:
            raise RowInvalid(errors)

        # Only the attributes a row can touch are compared (a full snapshot per row is slow).
        touched = {*values, *IMPLIED_ATTRS}
        before = {} if is_new else {attr: getattr(item, attr) for attr in touched}
        previously_closed_at = item.closed_at
        for name, value in values.items():
            setattr(item, name, value)
        # State the status implies, for rows migrated from a spreadsheet.
        if item.status == C.Status.CLOSED and not item.closed_at:
            item.closed_at = previously_closed_at or self.now
        if item.blocked and not item.blocker.strip():
            raise RowInvalid({"blocker": "Say what blocks the item (blocked is true)."})
        if item.blocked and not item.blocked_since:
            item.blocked_since = self.now
        if not item.blocked:
            item.blocked_since = None
            item.escalated_at = None
        if not item.title.strip():
            raise RowInvalid({"title": "A title is required."})
        if item.pk and item.parent_id == item.pk:
            raise RowInvalid({"parent": "An item cannot be its own parent."})
        item.derive()
        changed_attrs: set[str] = set()
        changes: dict[str, list[Any]] = {}
        if not is_new:
            for attr in touched:
                old, new = before[attr], getattr(item, attr)
                if old != new:
                    changed_attrs.add(attr)
                    if attr != "due_soon_from":  # derived from the target date: noise in the history
                        changes[attr.removesuffix("_id")] = [plain(old), plain(new)]
        if not is_new and item.status != old_status:
            changed_attrs.add("status_changed_at")
            item.status_changed_at = item.closed_at if item.status == C.Status.CLOSED else self.now
        plan = Plan(
            line=line,
            item=item,
            is_new=is_new,
            changes=changes,
            old_status=old_status,
            parent_token=parent_token,
            explicit_pk=is_new and ref is not None,
            version=item.version,
            changed_attrs=changed_attrs,
        )
        if is_new:
            item.status_changed_at = (
                item.closed_at if item.status == C.Status.CLOSED and item.closed_at else item.identified_at
            )
            item.last_activity_at = self.now
        self._plan_nested(plan, raw)
        return plan

    def _values(
        self, raw: dict[str, Any], errors: dict[str, str], item: Item, is_new: bool
    ) -> dict[str, Any]:
        values: dict[str, Any] = {}

        def has(name: str) -> bool:
            return name in raw

        for name in TEXT_FIELDS:
            if not has(name):
                continue
            text = "" if raw[name] is None else str(raw[name])
            text = text.strip() if name in TEXT_LIMITS else text
            limit = TEXT_LIMITS.get(name)
            if limit and len(text) > limit:
                errors[name] = f"At most {limit} characters ({len(text)} given)."
                continue
            values[name] = text
        if is_new and not _s(raw.get("title")):
            errors["title"] = "A title is required."
        elif has("title") and not _s(raw.get("title")):
            errors["title"] = "A title cannot be blank."
        for name, allowed in BLANK_CHOICES.items():
            if has(name):
                value = _s(raw[name])
                if value and value not in allowed:
                    errors[name] = f"'{value}' is not one of: {', '.join(allowed)}."
                else:
                    values[name] = value
        for name, allowed in DEFAULT_CHOICES.items():
            if has(name):
                value = _s(raw[name])
                if not value:
                    continue  # blank: the default (new) or the current value (update)
                if value not in allowed:
                    errors[name] = f"'{value}' is not one of: {', '.join(allowed)}."
                else:
                    values[name] = value
        for name in ("impact", "effort"):
            if has(name) and _s(raw[name]):
                try:
                    values[name] = _parse_int(raw[name], 1, 5)
                except ValueError as exc:
                    errors[name] = str(exc)
        if has("rank"):
            try:
                values["rank"] = _parse_int(raw["rank"], 1, None)
            except ValueError as exc:
                errors["rank"] = str(exc)
        for name in ("target_date", "revisit_date"):
            if has(name):
                try:
                    values[name] = _parse_date(raw[name])
                except ValueError as exc:
                    errors[name] = str(exc)
        if has("identified_at") and _s(raw["identified_at"]):
            try:
                values["identified_at"] = _parse_datetime(raw["identified_at"])
            except ValueError as exc:
                errors["identified_at"] = str(exc)
        if has("closed_at"):
            try:
                values["closed_at"] = _parse_datetime(raw["closed_at"])
            except ValueError as exc:
                errors["closed_at"] = str(exc)
        if has("realised_delta"):
            try:
                values["realised_delta"] = _parse_decimal(raw["realised_delta"])
            except ValueError as exc:
                errors["realised_delta"] = str(exc)
        if has("blocked"):
            try:
                values["blocked"] = _parse_bool(raw["blocked"])
            except ValueError as exc:
                errors["blocked"] = str(exc)
        if has("owner"):
            username = _s(raw["owner"])
            if not username:
                values["owner_id"] = None
            elif username in self.users:
                values["owner_id"] = self.users[username]
            else:
                errors["owner"] = f"No user '{username}'."
        if has("service"):
            name = _s(raw["service"])
            if not name:
                values["service_id"] = None
            else:
                pk = self.services.get(name) or self.services_folded.get(name.casefold())
                if pk is None and self.create_services and not errors:
                    service = Service.objects.create(name=name[:120])
                    self.services[service.name] = service.pk
                    self.services_folded[service.name.casefold()] = service.pk
                    pk = service.pk
                if pk is None:
                    errors["service"] = f"No service '{name}' (use --create-services to create it)."
                else:
                    values["service_id"] = pk
        if has("parent"):
            token = _s(raw["parent"])
            if not token:
                values["parent_id"] = None
            else:
                pk = None
                if PARENT_REF_RE.match(token):
                    candidate = _parse_ref(token)
                    if candidate in self.ids:
                        pk = candidate
                elif token in self.external_ids:
                    pk = self.external_ids[token]
                if pk is not None:
                    values["parent_id"] = pk
                elif not is_new and item.parent_id and _ref(item.parent_id) == token:
                    pass
                else:
                    values["_parent_token"] = token  # later in the file, perhaps
        return values

    # -- nested indicators, measurements, actions --

    def _nested_list(self, raw: dict[str, Any], name: str) -> list[dict[str, Any]] | None:
        if name not in raw:
            return None
        value = raw[name]
        if value in (None, ""):
            return []
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise RowInvalid({name: f"Not valid JSON: {exc.msg}."}) from exc
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise RowInvalid({name: "Give a list of objects."})
        return value

    def _plan_nested(self, plan: Plan, raw: dict[str, Any]) -> None:
        indicators = self._nested_list(raw, "indicators")
        actions = self._nested_list(raw, "actions")
        item = plan.item
        errors: dict[str, str] = {}
        if indicators:
            current = {} if plan.is_new else self.nested_indicators.get(item.pk, {})
            seen: set[str] = set()
            for n, data in enumerate(indicators, start=1):
                prefix = f"indicators[{n}]"
                name = _s(data.get("name"))
                if not name:
                    errors[f"{prefix}.name"] = "An indicator needs a name."
                    continue
                if name in seen:
                    errors[f"{prefix}.name"] = f"Indicator '{name}' is given twice."
                    continue
                seen.add(name)
                values = self._indicator_values(data, prefix, errors)
                indicator = current.get(name)
                if indicator is None:
                    indicator = Indicator(name=name, **values)
                    plan.new_indicators.append(indicator)
                    existing_times: set[dt.datetime] = set()
                else:
                    before = snapshot(indicator)
                    for key, value in values.items():
                        setattr(indicator, key, value)
                    changes = diff(before, snapshot(indicator))
                    changes.pop("updated_at", None)
                    if changes:
                        plan.changed_indicators.append((indicator, changes))
                    existing_times = self.nested_times.setdefault(indicator.pk, set())
                for k, m in enumerate(data.get("measurements") or [], start=1):
                    mprefix = f"{prefix}.measurements[{k}]"
                    if not isinstance(m, dict):
                        errors[mprefix] = "Give an object."
                        continue
                    try:
                        value = _parse_decimal(m.get("value"))
                        at = _parse_datetime(m.get("measured_at"))
                    except ValueError as exc:
                        errors[mprefix] = str(exc)
                        continue
                    if value is None or at is None:
                        errors[mprefix] = "A measurement needs a value and measured_at."
                        continue
                    source = _s(m.get("source")) or Measurement.Source.IMPORTED
                    if source not in Measurement.Source.values:
                        errors[f"{mprefix}.source"] = (
                            f"'{source}' is not one of: {', '.join(Measurement.Source.values)}."
                        )
                        continue
                    if at in existing_times:
                        continue  # measurements are matched on their time: never duplicated
                    existing_times.add(at)
                    plan.new_measurements.append(
                        (
                            indicator,
                            Measurement(
                                value=value,
                                measured_at=at,
                                note=_s(m.get("note"))[:300],
                                source=source,
                                recorded_by_id=self.actor.pk if self.actor else None,
                            ),
                        )
                    )
        if actions:
            current_actions = {} if plan.is_new else self.nested_actions.get(item.pk, {})
            for n, data in enumerate(actions, start=1):
                prefix = f"actions[{n}]"
                title = _s(data.get("title"))
                if not title or len(title) > 200:
                    errors[f"{prefix}.title"] = "An action needs a title (at most 200 characters)."
                    continue
                values = {}
                owner = _s(data.get("owner"))
                if owner and owner not in self.users:
                    errors[f"{prefix}.owner"] = f"No user '{owner}'."
                    continue
                values["owner_id"] = self.users.get(owner) if owner else None
                try:
                    values["due_date"] = _parse_date(data.get("due_date"))
                    values["done"] = _parse_bool(data.get("done", False))
                    values["done_at"] = _parse_datetime(data.get("done_at"))
                except ValueError as exc:
                    errors[prefix] = str(exc)
                    continue
                if values["done"] and not values["done_at"]:
                    values["done_at"] = self.now
                action = current_actions.get(title)
                if action is None:
                    action = Action(title=title, **values)
                    plan.new_actions.append(action)
                    current_actions[title] = action
                else:
                    before = snapshot(action)
                    for key, value in values.items():
                        setattr(action, key, value)
                    changes = diff(before, snapshot(action))
                    if changes:
                        plan.changed_actions.append((action, changes))
        if errors:
            raise RowInvalid(errors)
        plan.saved_versions = plan.nested_versions()
        plan.nested_changes = bool(
            plan.new_indicators
            or plan.new_measurements
            or plan.changed_indicators
            or plan.new_actions
            or plan.changed_actions
        )

    @staticmethod
    def _indicator_values(data: dict[str, Any], prefix: str, errors: dict[str, str]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, limit in (("unit", 30), ("baseline_method", 300), ("metric_key", 60)):
            if name in data:
                text = _s(data[name])
                if len(text) > limit:
                    errors[f"{prefix}.{name}"] = f"At most {limit} characters."
                values[name] = text
        for name, allowed in (("direction", C.Direction.values), ("role", C.IndicatorRole.values)):
            if _s(data.get(name)):
                if data[name] not in allowed:
                    errors[f"{prefix}.{name}"] = f"'{data[name]}' is not one of: {', '.join(allowed)}."
                else:
                    values[name] = data[name]
        try:
            for name in ("baseline_value", "target_value"):
                if name in data:
                    values[name] = _parse_decimal(data[name])
            for name in ("baseline_date", "target_date"):
                if name in data:
                    values[name] = _parse_date(data[name])
        except ValueError as exc:
            errors[f"{prefix}.{name}"] = str(exc)
        if "metric_scope" in data:
            scope = data["metric_scope"] or {}
            if not isinstance(scope, dict):
                errors[f"{prefix}.metric_scope"] = "Give an object."
            else:
                values["metric_scope"] = scope
        return values

    # -- writing a chunk --

    def write(self, plans: list[Plan]) -> None:
        now = timezone.now()
        new_explicit = [p.item for p in plans if p.is_new and p.item.pk is not None]
        new_auto = [p.item for p in plans if p.is_new and p.item.pk is None]
        if new_explicit:
            _bulk_create(new_explicit)
            self._reset_sequence(Item)
        if new_auto:
            _bulk_create(new_auto)
        updated = [p for p in plans if not p.is_new and p.changed_attrs]
        # One UPDATE per set of changed columns: a bulk_update of every column is slow on PostgreSQL.
        groups: dict[frozenset[str], list[Item]] = {}
        for p in updated:
            p.item.version += 1
            p.item.updated_at = now
            p.item.last_activity_at = now
            names = frozenset({*p.changed_attrs, "version", "updated_at", "last_activity_at"})
            groups.setdefault(names, []).append(p.item)
        for names, items in groups.items():
            Item.objects.bulk_update(items, sorted(names))

        entries: list[AuditEntry] = []
        status_rows: list[StatusChange] = []
        for p in plans:
            item = p.item
            if p.is_new:
                changes = diff({}, snapshot(item))
                entries.append(self._entry(item, item, "create", changes, "Imported"))
                status_rows.append(self._status(item, "", item.status, item.status_changed_at))
            elif p.changes:
                entries.append(self._entry(item, item, "update", p.changes, "Imported"))
                if item.status != p.old_status:
                    status_rows.append(self._status(item, p.old_status, item.status, item.status_changed_at))

        for p in plans:
            for ind in p.new_indicators:
                ind.item_id = p.item.pk
        new_indicators = [ind for p in plans for ind in p.new_indicators]
        if new_indicators:
            _bulk_create(new_indicators)
        measurements = []
        for p in plans:
            for ind, m in p.new_measurements:
                m.indicator_id = ind.pk
                measurements.append(m)
        if measurements:
            _bulk_create(measurements)
        for p in plans:
            for action in p.new_actions:
                action.item_id = p.item.pk
        new_actions = [a for p in plans for a in p.new_actions]
        if new_actions:
            _bulk_create(new_actions)
        changed_indicators = [ind for p in plans for ind, _c in p.changed_indicators]
        if changed_indicators:
            for ind in changed_indicators:
                ind.version += 1
                ind.updated_at = now
            Indicator.objects.bulk_update(
                changed_indicators, sorted(Importer.INDICATOR_UPDATE_FIELDS | {"version", "updated_at"})
            )
        changed_actions = [a for p in plans for a, _c in p.changed_actions]
        if changed_actions:
            for action in changed_actions:
                action.version += 1
            Action.objects.bulk_update(
                changed_actions, ["owner_id", "due_date", "done", "done_at", "version"]
            )
        for p in plans:
            item = p.item
            for ind in p.new_indicators:
                entries.append(self._entry(ind, item, "create", diff({}, snapshot(ind)), "Imported"))
            for ind, changes in p.changed_indicators:
                entries.append(self._entry(ind, item, "update", changes, "Imported"))
            for ind, m in p.new_measurements:
                entries.append(
                    self._entry(
                        m,
                        item,
                        "create",
                        {"value": [None, _text(m.value)], "indicator": [None, ind.name]},
                        f"Imported measurement of {ind.name}",
                    )
                )
            for action in p.new_actions:
                entries.append(self._entry(action, item, "create", diff({}, snapshot(action)), "Imported"))
            for action, changes in p.changed_actions:
                entries.append(self._entry(action, item, "update", changes, "Imported"))
            if p.nested_changes and not p.is_new and not p.changed_attrs:
                Item.objects.filter(pk=item.pk).update(last_activity_at=now)
        _bulk_create(entries, via="object_repr")
        _bulk_create(status_rows)

    # Indicators match on name; every other field a service may set is updated.
    INDICATOR_UPDATE_FIELDS = S.INDICATOR_FIELDS - {"name"}

    @staticmethod
    def _reset_sequence(model: type[Item]) -> None:
        # Rows inserted with explicit ids (refs of items that came from another database): move
        # PostgreSQL's sequence past them so the next automatic id does not collide.
        statements = connection.ops.sequence_reset_sql(no_style(), [model])
        if statements:
            with connection.cursor() as cursor:
                for sql in statements:
                    cursor.execute(sql)

    def _entry(self, obj, root: Item, action: str, changes: dict[str, Any], message: str) -> AuditEntry:
        return AuditEntry(
            actor_id=self.actor.pk if self.actor else None,
            request_id=self.request_id,
            action=action,
            content_type=self.ct[type(obj)],
            object_id=str(obj.pk),
            object_repr=str(obj)[:200],
            root_content_type=self.ct[Item],
            root_object_id=str(root.pk),
            changes=changes,
            message=message[:300],
        )

    def _status(self, item: Item, old: str, new: str, at: dt.datetime | None) -> StatusChange:
        return StatusChange(
            at=at or self.now,
            actor_id=self.actor.pk if self.actor else None,
            content_type=self.ct[Item],
            object_id=str(item.pk),
            old_status=old,
            new_status=new,
            reason="imported",
        )

    # -- parents that came later in the file --

    def resolve_parents(self) -> None:
        for line, pk, token in self.deferred_parents:
            parent_pk = None
            if PARENT_REF_RE.match(token):
                candidate = _parse_ref(token)
                if candidate in self.ids:
                    parent_pk = candidate
            else:
                parent_pk = self.external_ids.get(token)
            if parent_pk is None:
                self.result.errors.append(
                    RowError(line, "parent", f"No item '{token}' (the row was saved without its parent).")
                )
                continue
            if parent_pk == pk:
                self.result.errors.append(RowError(line, "parent", "An item cannot be its own parent."))
                continue
            with transaction.atomic():
                item = Item.objects.select_for_update().get(pk=pk)
                if item.parent_id == parent_pk:
                    continue
                changes = {"parent": [item.parent_id, parent_pk]}
                Item.objects.filter(pk=pk).update(parent_id=parent_pk, version=item.version + 1)
                AuditEntry.objects.bulk_create([self._entry(item, item, "update", changes, "Imported")])
            if pk in self.unchanged_lines:
                self.result.unchanged -= 1
                self.result.updated += 1
                del self.unchanged_lines[pk]


def _bulk_create(objs: list[Any], *, via: str | None = None, batch: int = 1000) -> None:
    """bulk_create in batches; with `via`, through a multi-row VALUES insert on PostgreSQL.

    Django 5.2 inserts many rows on PostgreSQL with INSERT … SELECT FROM UNNEST(arrays), and
    psycopg builds the arrays by escaping every text value in Python: for audit rows (large JSON)
    that measured 2.5 times slower than VALUES. One value given as an expression (field `via`,
    wrapped in Value()) makes Django use VALUES for the batch; the attribute is put back after.
    For items UNNEST is faster (planning a VALUES list of 500 × 50 parameters is not free).
    """
    if not objs:
        return
    model = type(objs[0])
    wrap = via is not None and connection.vendor == "postgresql"
    for start in range(0, len(objs), batch):
        part = objs[start : start + batch]
        if not (wrap and via and len(part) > 1):
            model._default_manager.bulk_create(part)
            continue
        first = part[0]
        plain = getattr(first, via)
        setattr(first, via, Value(plain, output_field=model._meta.get_field(via)))
        try:
            model._default_manager.bulk_create(part)
        finally:
            setattr(first, via, plain)


def import_items(
    stream: IO[str],
    *,
    fmt: str = "csv",
    actor=None,
    dry_run: bool = False,
    create_services: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Create or update register items from a CSV / JSON / JSON Lines stream.

    Rows match an item on `ref`, else on `external_id` (see docs/import-formats.md). Writes audit
    rows (actor: `actor`, None for the system) and a status-change row for each new item's status
    and each status a row changes. Bad rows are reported by line and field and skipped; good rows
    are kept. With `dry_run` everything is done and then rolled back. Raises PermissionDeniedError
    unless the actor may manage the register, FileFormatError when the file cannot be read on.
    """
    P.check(actor, P.can_manage, what="import register items")
    importer = Importer(actor=actor, create_services=create_services, dry_run=dry_run)
    outer = transaction.atomic() if dry_run else contextlib.nullcontext()
    with outer:
        rows = 0
        try:
            for line, raw in read_rows(stream, fmt):
                importer.feed(line, raw)
                rows += 1
                if progress:
                    progress(rows)
        except FileFormatError as exc:
            importer.flush()
            importer.fail(exc.line, {"file": exc.message})
        else:
            importer.flush()
        importer.resolve_parents()
        if dry_run:
            transaction.set_rollback(True)
    return importer.result
