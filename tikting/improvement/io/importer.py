"""Import of the register: rows fed in chunks, each chunk planned row by row and written in bulk
(items, nested records, audit and status-change rows) in one transaction, replayed row by row
if it fails as a whole; parents named before they exist are resolved at the end."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable
from typing import IO, Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.core.management.color import no_style
from django.db import DatabaseError, connection, transaction
from django.db.models import Value
from django.utils import timezone

from tikting.accounts.models import Actor, User
from tikting.core.audit import diff, snapshot
from tikting.core.middleware import current_request_id
from tikting.core.models import AuditEntry, StatusChange
from tikting.lib.tabular import ChunkedImport, FileFormatError

from .. import permissions as P
from .. import services as S
from ..models import Action, Indicator, Item, Measurement
from .columns import CHUNK_SIZE, PARENT_REF_RE, _text
from .parse import ImportResult, RowError, RowInvalid, _parse_ref, _s, read_rows
from .plan import Plan, RowPlanner


class Importer(RowPlanner, ChunkedImport):
    """One import run. Use `import_items()`."""

    chunk_size = CHUNK_SIZE

    def __init__(self, *, actor: Actor, create_services: bool, dry_run: bool) -> None:
        user = actor if isinstance(actor, User) and actor.pk else None
        super().__init__(actor=user, create_services=create_services)
        self.dry_run = dry_run
        self.result = ImportResult(dry_run=dry_run)
        self.request_id = current_request_id() or ""
        self.ct = {
            model: ContentType.objects.get_for_model(model)
            for model in (Item, Indicator, Measurement, Action)
        }
        self.pending: list[tuple[int, dict[str, Any]]] = []
        self.pending_keys: set[Any] = set()
        self.deferred_parents: list[tuple[int, int, str]] = []  # (line, item pk, token)
        self.unchanged_lines: dict[int, int] = {}  # item pk → line, for rows counted unchanged

    # -- errors --

    def fail(self, line: int, errors: dict[str, str]) -> None:
        self.result.failed += 1
        for name, message in errors.items():
            self.result.errors.append(RowError(line, name, message))

    def discard(self, exc: FileFormatError) -> None:
        """The run was rolled back for a file error: no row counts as written; the error says so."""
        result = self.result
        result.created = result.updated = result.unchanged = 0
        error = RowError(exc.line, "file", f"{exc.message} Nothing was imported.")
        result.file_error = error
        result.failed += 1
        result.errors.append(error)

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
                    reason = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
                    self.fail(plan.line, {"row": f"Not saved: {reason}"})
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

    def _entry(
        self,
        obj: Item | Indicator | Measurement | Action,
        root: Item,
        action: str,
        changes: dict[str, Any],
        message: str,
    ) -> AuditEntry:
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
    actor: Actor = None,
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
    # One transaction: a file that cannot be read to its end (a quote never closed, JSON nested too
    # deeply, not UTF-8) leaves nothing imported, rather than the rows before the bad line.
    with transaction.atomic():
        rows = 0
        try:
            for line, raw in read_rows(stream, fmt):
                importer.feed(line, raw)
                rows += 1
                if progress:
                    progress(rows)
            importer.flush()
            importer.resolve_parents()
        except FileFormatError as exc:
            transaction.set_rollback(True)
            importer.discard(exc)
        if dry_run:
            transaction.set_rollback(True)
    return importer.result
