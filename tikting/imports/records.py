"""Import and export of any registered record kind (tikting/core/records.py) as CSV, JSON or JSON Lines.

    import_records("incident", stream, fmt="csv", source="csv")
    export_records("incident", stream, "jsonl")

Columns are the model's field names (docs/import-records.md). Foreign keys are written and read by
natural key: services, CIs, groups and catalogue items by name, incidents, problems, changes,
requests and articles by number, users by username. `raw` is a JSON object (a JSON text in CSV).
Many-to-many fields (a change's affected CIs) are the last columns: a list of natural keys in
JSON, the keys joined by ";" in CSV (join_keys / split_keys); a row's list replaces the set.

Import streams the file and works in chunks of CHUNK rows: the chunk's existing records and
foreign keys are loaded in a few queries, each row is validated field by field with the model
fields' own `clean()` (to_python, choices, blank/null, validators: no per-row queries, unlike
`full_clean()`, whose unique checks cost a query per field), new records are `bulk_create`d and
changed ones `bulk_update`d, with one audit row each. A chunk is one transaction; if the database
refuses it (a unique constraint the checks cannot see) it is replayed row by row in savepoints, so
good rows are always kept. Rows match an existing record on (source, external_key) when the row
has an external_key, else on the kind's key field (number or name; id for survey responses).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import json
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import IO, Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import DatabaseError, models, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from tikting.accounts.models import Actor
from tikting.core import audit
from tikting.core.bounds import long_text
from tikting.core.middleware import current_request_id
from tikting.core.models import AuditEntry, StatusChange
from tikting.lib import untrusted
from tikting.lib.tabular import FORMATS, ChunkedImport, FileFormatError, format_for, read_csv, read_json
from tikting.lib.tabular import csv_cell as _csv_cell
from tikting.records.registry import RecordKind, can_edit_records, get_kind, related_model

from .base import ImportReport, Progress, no_progress

__all__ = ["FORMATS", "columns_for", "export_records", "format_for", "import_records"]


# A record of the kind being imported: an instance of its model, whose fields (source, external_key,
# version, status) vary by kind, hence Any (as registry.update_record's `locked`).
Record = Any
# One valid row, ready to write: (line, record, is new, audit changes, status before).
Plan = tuple[int, Record, bool, dict[str, Any], str]

CHUNK = 1000
SKIPPED = frozenset({"created_at", "updated_at", "version"})  # exported by nobody, ignored on import

# The natural key of each model a foreign key may point to.
NATURAL_KEYS = {
    "cmdb.service": "name",
    "cmdb.configurationitem": "name",
    "accounts.team": "name",
    "accounts.user": "username",
    "service_requests.catalogitem": "name",
    "incidents.incident": "number",
    "incidents.interaction": "number",
    "problems.problem": "number",
    "changes.change": "number",
    "knowledge.article": "number",
    "service_requests.servicerequest": "number",
}
TRUE = {"1", "true", "yes", "y", "on"}
FALSE = {"0", "false", "no", "n", "off"}


def _sourced(model: type[models.Model]) -> bool:
    names = {f.name for f in model._meta.concrete_fields}
    return {"source", "external_key"} <= names


def _fields(kind: RecordKind) -> list[models.Field]:
    model = kind.model
    fields = [
        f
        for f in model._meta.concrete_fields
        if f.name not in SKIPPED and (not f.primary_key or f.name == kind.key_field)
    ]
    return fields


def _m2m_fields(kind: RecordKind) -> list[models.ManyToManyField]:
    """The kind's many-to-many fields (a change's affected CIs), written after the other columns."""
    return list(kind.model._meta.many_to_many)


def columns_for(kind: RecordKind | str) -> list[str]:
    """The columns of a kind's files, in export order."""
    kind = get_kind(kind) if isinstance(kind, str) else kind
    return [f.name for f in _fields(kind)] + [f.name for f in _m2m_fields(kind)]


# A many-to-many cell in CSV: the natural keys joined by ";", a ";" or "\" inside a key escaped
# with a backslash. In JSON: a list of keys.
KEY_SEPARATOR = ";"


def join_keys(keys: list[str]) -> str:
    return KEY_SEPARATOR.join(
        str(k).replace("\\", "\\\\").replace(KEY_SEPARATOR, "\\" + KEY_SEPARATOR) for k in keys
    )


def split_keys(value: Any) -> list[str]:
    """The natural keys of a many-to-many value: a JSON list, or a CSV cell (join_keys). Blank
    keys are dropped; raises ValueError for anything else."""
    if _empty(value):
        return []
    if isinstance(value, list):
        if not all(isinstance(k, str | int) for k in value):
            raise ValueError("Give a list of names or numbers.")
        keys = [str(k).strip() for k in value]
    elif isinstance(value, str):
        keys, current, chars = [], [], iter(value)
        for char in chars:
            if char == "\\":
                current.append(next(chars, "\\"))
            elif char == KEY_SEPARATOR:
                keys.append("".join(current).strip())
                current = []
            else:
                current.append(char)
        keys.append("".join(current).strip())
    else:
        raise ValueError("Give a list of names or numbers.")
    return [k for k in keys if k]


def _m2m_keys(obj_ids: list[Any], field: models.ManyToManyField) -> dict[Any, list[str]]:
    """{object id: sorted natural keys of its related records} for one many-to-many field."""
    through = field.remote_field.through
    assert through is not None  # set up by Django for every many-to-many field
    source, target = field.m2m_field_name(), field.m2m_reverse_field_name()
    key = _natural_key(related_model(field))
    result: dict[Any, list[str]] = {}
    for start in range(0, len(obj_ids), CHUNK):
        rows = through._default_manager.filter(**{f"{source}__in": obj_ids[start : start + CHUNK]})
        for obj_id, value in rows.values_list(f"{source}_id", f"{target}__{key}"):
            result.setdefault(obj_id, []).append(str(value))
    for values in result.values():
        values.sort()
    return result


def _natural_key(model: type[models.Model]) -> str:
    return NATURAL_KEYS.get(model._meta.label_lower, "pk")


# --- Export -----------------------------------------------------------------------------------


def _export_value(value: Any, fmt: str) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if fmt == "csv":
        if value is None:
            return ""
        if isinstance(value, dict | list):
            return json.dumps(value, ensure_ascii=False, sort_keys=True)
        return _csv_cell(value)
    return value


def export_records(
    kind_slug: str, stream: IO[str], fmt: str = "csv", qs: QuerySet[models.Model] | None = None
) -> int:
    """Write the records of `qs` (default: all of the kind) to `stream`; returns the row count."""
    kind = get_kind(kind_slug)
    if fmt not in FORMATS:
        raise ValidationError({"format": f"Choose one of: {', '.join(FORMATS)}."})
    fields = _fields(kind)
    names = [f.name for f in fields]
    lookups = []
    for f in fields:
        if f.is_relation:
            lookups.append(f"{f.name}__{_natural_key(related_model(f))}")
        else:
            lookups.append(f.attname)
    m2m = _m2m_fields(kind)
    names += [f.name for f in m2m]
    qs = kind.model._default_manager.all() if qs is None else qs
    rows = qs.order_by("pk").values_list(*lookups, "pk").iterator(chunk_size=2000)
    rows = _with_m2m(rows, m2m, fmt) if m2m else (row[:-1] for row in rows)
    count = 0
    if fmt == "csv":
        writer = csv.writer(stream)
        writer.writerow(names)
        for row in rows:
            writer.writerow([_export_value(v, fmt) for v in row])
            count += 1
        return count
    if fmt == "json":
        stream.write("[")
    for row in rows:
        text = json.dumps(
            {name: _export_value(v, fmt) for name, v in zip(names, row, strict=True)}, ensure_ascii=False
        )
        if fmt == "json":
            stream.write(("\n" if count == 0 else ",\n") + text)
        else:
            stream.write(text + "\n")
        count += 1
    if fmt == "json":
        stream.write("\n]\n")
    return count


def _with_m2m(
    rows: Iterable[tuple[Any, ...]], m2m: list[models.ManyToManyField], fmt: str
) -> Iterator[tuple[Any, ...]]:
    """Rows (ending with the pk) → rows without the pk, with the many-to-many keys appended: a
    list in JSON, a join_keys cell in CSV. One query per field and batch of rows."""
    batch: list[tuple[Any, ...]] = []

    def emit() -> Iterator[tuple[Any, ...]]:
        ids = [row[-1] for row in batch]
        keys = [_m2m_keys(ids, field) for field in m2m]
        for row in batch:
            extra = [k.get(row[-1], []) for k in keys]
            yield (*row[:-1], *(join_keys(e) if fmt == "csv" else e for e in extra))

    for row in rows:
        batch.append(row)
        if len(batch) >= 2000:
            yield from emit()
            batch = []
    if batch:
        yield from emit()


# --- Reading ----------------------------------------------------------------------------------


def read_rows(stream: IO[str], fmt: str, allowed: set[str]) -> Iterator[tuple[int, Any]]:
    if fmt == "csv":
        yield from read_csv(stream, allowed)
    elif fmt in {"json", "jsonl"}:
        yield from read_json(stream)
    else:
        raise ValidationError({"format": f"Choose one of: {', '.join(FORMATS)}."})


# --- Import -----------------------------------------------------------------------------------


class RowInvalid(Exception):
    def __init__(self, errors: dict[str, str]):
        super().__init__(errors)
        self.errors = errors


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def _message(exc: ValidationError) -> str:
    return " ".join(str(m) for m in exc.messages)


class _Importer(ChunkedImport):
    chunk_size = CHUNK

    def __init__(
        self,
        kind: RecordKind,
        *,
        actor: Actor,
        source: str,
        report: ImportReport,
        file: str,
        progress: Progress,
        dry_run: bool = False,
    ) -> None:
        self.kind = kind
        self.dry_run = dry_run
        self.slas_changed = False  # an SLA definition was created or updated
        self.progress = progress
        self.model = kind.model
        self.actor = actor if getattr(actor, "pk", None) else None
        self.source = source
        self.report = report
        self.file = file
        # Derived columns (an incident's SLA verdicts) are exported but never read back: the SLA
        # pass after the write computes them, so a file cannot put a false value in the history.
        derived = set(kind.derived)
        self.fields = {f.name: f for f in _fields(kind) if f.name not in derived}
        self.m2m = {f.name: f for f in _m2m_fields(kind)}
        self.m2m_current: dict[str, dict[Any, list[str]]] = {}  # field → {record id: keys}
        self.allowed = set(self.fields) | set(self.m2m) | SKIPPED | derived | {"id"}
        self.sourced = _sourced(self.model)
        self.has_source = "source" in self.fields
        self.key = kind.key_field
        self.has_status = "status" in self.fields
        self.fk_cache: dict[str, dict[str, Any]] = {}
        self.pending: list[tuple[int, Any]] = []
        self.pending_keys: set[Any] = set()
        self.ct = ContentType.objects.get_for_model(self.model)
        self.request_id = current_request_id() or ""

    # -- rows --

    def row_keys(self, raw: dict[str, Any]) -> set[Any]:
        keys: set[tuple[str, ...]] = set()
        if self.sourced and not _empty(raw.get("external_key")):
            keys.add(("ext", str(raw.get("source") or self.source).strip(), str(raw["external_key"]).strip()))
        if not _empty(raw.get(self.key)):
            keys.add(("key", str(raw[self.key]).strip()))
        return keys

    def fail(self, line: int, errors: dict[str, str]) -> None:
        self.report.count(self.kind.slug, "failed")
        for name, message in errors.items():
            self.report.error(self.file, line, name, message)

    # -- values --

    def _parse(self, field: models.Field, value: Any) -> Any:
        """A file value → the field's Python value, validated. Raises ValidationError / ValueError."""
        if isinstance(value, str):
            value = value.strip() if not isinstance(field, models.TextField) else value
        if _empty(value):
            if field.null:
                return None
            if isinstance(field, models.CharField | models.TextField):
                return ""
            if field.has_default():
                return field.get_default()
            raise ValidationError("This field is required.")
        if isinstance(field, models.BooleanField):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in TRUE:
                return True
            if text in FALSE:
                return False
            raise ValidationError(f"'{value}' is not true or false.")
        if isinstance(field, models.JSONField):
            if isinstance(value, str):  # JSON text in a CSV cell: checked as JSON rows are
                try:
                    value = untrusted.loads(value)
                except json.JSONDecodeError as exc:
                    raise ValidationError(f"Not valid JSON: {exc.msg}.") from exc
                except untrusted.UntrustedInputError as exc:
                    raise ValidationError(str(exc)) from exc
            if not isinstance(value, dict):
                raise ValidationError("Give a JSON object.")
            return value
        if isinstance(field, models.DateTimeField):
            text = str(value).strip()
            try:
                parsed = parse_datetime(text)
                if parsed is None and (day := parse_date(text)):
                    parsed = dt.datetime.combine(day, dt.time())
            except ValueError:
                parsed = None
            if parsed is None:
                raise ValidationError(f"'{text}' is not a date-time (ISO 8601, e.g. 2025-03-01T09:30:00Z).")
            if timezone.is_naive(parsed):
                parsed = timezone.make_aware(parsed, dt.UTC)
            return parsed
        if isinstance(field, models.IntegerField) and isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(field, models.TextField):
            for validator in long_text():  # the cap of the pages and the API (core.bounds)
                validator(value)
        return field.clean(value, None)

    def _resolve_fks(self, rows: list[tuple[int, dict[str, Any]]]) -> None:
        """Load the foreign keys the chunk names (natural key → pk) into the cache."""
        for name, field in (*self.fields.items(), *self.m2m.items()):
            if not field.is_relation:
                continue
            if name in self.m2m:
                wanted = set()
                for _l, raw in rows:
                    with contextlib.suppress(ValueError):  # reported by plan()
                        wanted.update(split_keys(raw.get(name)))
            else:
                wanted = {str(raw[name]).strip() for _l, raw in rows if not _empty(raw.get(name))}
            cache = self.fk_cache.setdefault(name, {})
            wanted -= set(cache)
            if not wanted:
                continue
            target = related_model(field)
            key = _natural_key(target)
            found: dict[str, Any] = {}
            if key == "pk":
                numbers = [w for w in wanted if w.isdigit()]
                found = {
                    str(pk): pk
                    for pk in target._default_manager.filter(pk__in=numbers).values_list("pk", flat=True)
                }
            else:
                for value, pk in target._default_manager.filter(**{f"{key}__in": wanted}).values_list(
                    key, "pk"
                ):
                    found[value] = (
                        ValueError(f"Several records are named '{value}'.") if value in found else pk
                    )
            for value in wanted:
                cache[value] = found.get(value, KeyError(value))

    def _load_existing(
        self, rows: list[tuple[int, dict[str, Any]]]
    ) -> tuple[dict[tuple[str, str], Record], dict[str, Record]]:
        manager: models.Manager[Record] = self.model._default_manager
        by_ext: dict[tuple[str, str], Record] = {}
        by_key: dict[str, Record] = {}
        exts = set()
        keys = set()
        for _l, raw in rows:
            for k in self.row_keys(raw):
                if k[0] == "ext":
                    exts.add(k[2])
                else:
                    keys.add(k[1])
        if exts:
            for obj in manager.filter(external_key__in=exts):
                by_ext[(obj.source, obj.external_key)] = obj
        if keys:
            lookup = self.key if self.key != "id" else "pk"
            values = keys if lookup != "pk" else [k for k in keys if k.isdigit()]
            for obj in manager.filter(**{f"{lookup}__in": values}):
                by_key[str(getattr(obj, self.key))] = obj
        given = [name for name in self.m2m if any(name in raw for _l, raw in rows)]
        ids = list({obj.pk for obj in (*by_ext.values(), *by_key.values())})
        for name in given:
            self.m2m_current[name] = _m2m_keys(ids, self.m2m[name]) if ids else {}
        return by_ext, by_key

    def plan(
        self,
        line: int,
        raw: dict[str, Any],
        by_ext: dict[tuple[str, str], Record],
        by_key: dict[str, Record],
    ) -> tuple[Record, bool, dict[str, Any], str]:
        """(object, is_new, changes, old status) for a valid row; raises RowInvalid."""
        errors: dict[str, str] = {}
        unknown = [k for k in raw if k not in self.allowed]
        for name in unknown:
            errors[name] = "Unknown field."
        values: dict[str, Any] = {}
        related: dict[str, dict[str, Any]] = {}  # m2m field → {natural key: id}
        for name, value in raw.items():
            if name in self.m2m:
                related[name] = self._plan_m2m(name, value, errors)
                continue
            field = self.fields.get(name)
            if field is None or field.primary_key:
                continue
            if field.is_relation:
                if _empty(value):
                    if not field.null:
                        errors[name] = "This field is required."
                    values[field.attname] = None
                    continue
                found = self.fk_cache.get(name, {}).get(str(value).strip())
                if isinstance(found, KeyError):
                    target = related_model(field)._meta.verbose_name
                    errors[name] = f"No {target} '{str(value).strip()}'."
                elif isinstance(found, ValueError):
                    errors[name] = str(found)
                else:
                    values[field.attname] = found
                continue
            try:
                values[field.attname] = self._parse(field, value)
            except ValidationError as exc:
                errors[name] = _message(exc)
            except (ValueError, TypeError) as exc:
                errors[name] = str(exc)
        source = (values.get("source") or self.source) if self.has_source else ""
        if errors:
            raise RowInvalid(errors)

        obj: Record = None
        if self.sourced and values.get("external_key"):
            obj = by_ext.get((source, values["external_key"]))
            if obj is None:
                other = by_key.get(str(values.get(self.key, "")))
                if other is not None and other.external_key:
                    raise RowInvalid(
                        {
                            self.key: f"'{values[self.key]}' is already used by a record from "
                            f"{other.source or 'no source'} (key {other.external_key})."
                        }
                    )
                obj = other
        elif not _empty(raw.get(self.key)):
            obj = by_key.get(str(raw[self.key]).strip())
        if obj is None:
            if self.has_source:
                values["source"] = source  # the row's own source, else the import's label
            obj = self.model(**values)
            for name, field in self.fields.items():
                if field.primary_key or field.is_relation or field.attname in values:
                    continue
                try:
                    field.clean(getattr(obj, field.attname), obj)
                except ValidationError as exc:
                    errors[name] = _message(exc)
            if errors:
                raise RowInvalid(errors)
            changes = audit.diff({}, audit.snapshot(obj))
            obj._import_m2m = {}
            for name, keys in related.items():
                if keys:
                    obj._import_m2m[name] = keys
                    changes[name] = [[], sorted(keys)]
            return obj, True, changes, ""
        before = audit.snapshot(obj)
        old_status = getattr(obj, "status", "")
        for attname, value in values.items():
            setattr(obj, attname, value)
        changes = audit.diff(before, audit.snapshot(obj))
        changes.pop("updated_at", None)
        obj._import_m2m = {}
        for name, keys in related.items():
            current = self.m2m_current.get(name, {}).get(obj.pk, [])
            if sorted(keys) != current:
                obj._import_m2m[name] = keys
                changes[name] = [current, sorted(keys)]
        return obj, False, changes, old_status

    def _plan_m2m(self, name: str, value: Any, errors: dict[str, str]) -> dict[str, Any]:
        """{natural key: id} of a many-to-many value; unknown or ambiguous keys go to `errors`."""
        try:
            keys = split_keys(value)
        except ValueError as exc:
            errors[name] = str(exc)
            return {}
        found: dict[str, Any] = {}
        problems = []
        cache = self.fk_cache.get(name, {})
        target = related_model(self.m2m[name])._meta.verbose_name
        for key in keys:
            pk = cache.get(key, KeyError(key))
            if isinstance(pk, KeyError):
                problems.append(f"No {target} '{key}'.")
            elif isinstance(pk, ValueError):
                problems.append(str(pk))
            else:
                found[key] = pk
        if problems:
            errors[name] = " ".join(problems)
        return found

    # -- a chunk --

    def flush(self) -> None:
        rows, self.pending, self.pending_keys = self.pending, [], set()
        if not rows:
            return
        self._resolve_fks(rows)
        by_ext, by_key = self._load_existing(rows)
        plans: list[Plan] = []
        for line, raw in rows:
            try:
                plans.append((line, *self.plan(line, raw, by_ext, by_key)))
            except RowInvalid as exc:
                self.fail(line, exc.errors)
        if not plans:
            return
        written = plans
        try:
            with transaction.atomic():
                self.write(plans)
        except DatabaseError:
            written = []
            for plan in plans:
                line, obj, is_new, _changes, _old = plan
                if is_new:
                    obj.pk = None
                    obj._state.adding = True
                try:
                    with transaction.atomic():
                        self.write([plan])
                except DatabaseError as exc:
                    self.fail(line, {"row": f"Not saved: {exc}"})
                    continue
                written.append(plan)
                self._count(plan)
        else:
            for plan in plans:
                self._count(plan)
        self._after_write(written)
        self.progress(len(rows), self.kind.slug)

    def _write_m2m(self, plans: list[Plan]) -> None:
        """Replace the related sets the plans changed: delete the old links, insert the new ones
        (one query each per field)."""
        for name, field in self.m2m.items():
            through = field.remote_field.through
            assert through is not None  # set up by Django for every many-to-many field
            source, target = field.m2m_field_name(), field.m2m_reverse_field_name()
            objs = [obj for _l, obj, _n, _c, _o in plans if name in getattr(obj, "_import_m2m", {})]
            if not objs:
                continue
            stale = [obj.pk for _l, obj, is_new, _c, _o in plans if not is_new and obj in objs]
            if stale:
                through._default_manager.filter(**{f"{source}_id__in": stale}).delete()
            links = [
                through(**{f"{source}_id": obj.pk, f"{target}_id": pk})
                for obj in objs
                for pk in sorted(set(obj._import_m2m[name].values()))
            ]
            through._default_manager.bulk_create(links, batch_size=CHUNK)

    def _after_write(self, written: list[Plan]) -> None:
        """Derived data of the rows just written: incidents get their SLA due times and met flags
        (tikting.slas.verdicts.apply_slas over the chunk's created and updated incidents; not on a
        dry run, which is rolled back anyway); SLA definitions are applied once the import is done
        (_apply_imported_slas)."""
        changed = [obj.pk for _l, obj, is_new, changes, _o in written if is_new or changes]
        if not changed or self.dry_run:
            return
        label = self.model._meta.label_lower
        if label == "incidents.incident":
            from tikting.incidents.models import Incident
            from tikting.slas.verdicts import apply_slas

            with transaction.atomic():
                apply_slas(Incident.objects.filter(pk__in=changed))
        elif label == "slas.sladefinition":
            self.slas_changed = True

    def _count(self, plan: Plan) -> None:
        _line, _obj, is_new, changes, _old = plan
        self.report.count(self.kind.slug, "created" if is_new else "updated" if changes else "unchanged")

    def write(self, plans: list[Plan]) -> None:
        new = [obj for _l, obj, is_new, _c, _o in plans if is_new]
        if new:
            self.model._default_manager.bulk_create(new)
        now = timezone.now()
        groups: dict[frozenset[str], list[models.Model]] = {}
        for _l, obj, is_new, changes, _o in plans:
            if is_new or not changes:
                continue
            names = set(changes) - set(self.m2m)
            if hasattr(obj, "version"):
                obj.version += 1
                names.add("version")
            if hasattr(obj, "updated_at"):
                obj.updated_at = now
                names.add("updated_at")
            groups.setdefault(frozenset(names), []).append(obj)
        for group, objs in groups.items():
            self.model._default_manager.bulk_update(objs, sorted(group))
        self._write_m2m(plans)
        entries = []
        statuses = []
        actor_id = self.actor.pk if self.actor else None
        for _l, obj, is_new, changes, old_status in plans:
            if not is_new and not changes:
                continue
            entries.append(
                AuditEntry(
                    actor_id=actor_id,
                    request_id=self.request_id,
                    action="create" if is_new else "update",
                    content_type=self.ct,
                    object_id=str(obj.pk),
                    object_repr=str(obj)[:200],
                    root_content_type=self.ct,
                    root_object_id=str(obj.pk),
                    changes=changes,
                    message="Imported",
                )
            )
            if self.has_status and (is_new or obj.status != old_status):
                statuses.append(
                    StatusChange(
                        at=now,
                        actor_id=actor_id,
                        content_type=self.ct,
                        object_id=str(obj.pk),
                        old_status="" if is_new else old_status,
                        new_status=obj.status,
                        reason="imported",
                    )
                )
        AuditEntry.objects.bulk_create(entries, batch_size=CHUNK)
        StatusChange.objects.bulk_create(statuses, batch_size=CHUNK)


def _apply_imported_slas(report: ImportReport, progress: Progress) -> None:
    """An `sla` import created or changed definitions: re-apply them to every incident now, before
    the import returns (bulk writes send no signals, and a background task would wait for a worker
    that a default set-up does not run). All or nothing (slas.services.reapply)."""
    from tikting.slas.services import reapply

    applied = reapply(None, progress=lambda n: progress(n, "incidents (SLAs applied)"))
    report.note(f"SLA definitions applied to {applied:,} incident(s).")


def import_records(
    kind_slug: str,
    stream: IO[str],
    *,
    fmt: str = "csv",
    actor: Actor = None,
    dry_run: bool = False,
    source: str = "csv",
    progress: Progress = no_progress,
    file: str = "",
) -> ImportReport:
    """Create or update records of a kind from a CSV / JSON / JSON Lines stream. See the module doc.

    Raises PermissionDeniedError unless `actor` (None = the system) may edit records of the kind.
    """
    from tikting.core.exceptions import PermissionDeniedError

    kind = get_kind(kind_slug)
    if actor is not None and not can_edit_records(actor, kind):
        raise PermissionDeniedError(f"You may not import {kind.label_plural.lower()}.")
    report = ImportReport(source=source, dry_run=dry_run)
    importer = _Importer(
        kind,
        actor=actor,
        source=source[:40],
        report=report,
        file=file or "<stream>",
        progress=progress,
        dry_run=dry_run,
    )
    outer = transaction.atomic() if dry_run else contextlib.nullcontext()
    with outer:
        try:
            for line, raw in read_rows(stream, fmt, importer.allowed):
                importer.feed(line, raw)
        except FileFormatError as exc:
            importer.flush()
            message = exc.message
            read = report.counts.get(kind.slug)
            if read and read.total:  # chunks are committed as they go: say what was kept
                done = "checked" if dry_run else "imported"
                message += f" The rows before line {exc.line} were {done} (see the counts); none from it on."
            report.error(importer.file, exc.line, "file", message)
        else:
            importer.flush()
        if dry_run:
            transaction.set_rollback(True)
    if importer.slas_changed:
        _apply_imported_slas(report, progress)
    report.count(kind.slug, "created", 0)  # the kind appears in the summary even with no rows
    report.errors.sort(key=lambda e: e.line)  # rows are validated by chunk, read errors at once
    return report.finish()
