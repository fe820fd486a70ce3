"""Bulk loads: what an importer does around a large load so the database works in sets, not rows.

`BulkLoad` is used inside the import's transaction, one table at a time, only for a table that was
**empty when the run started** (a first import; a re-import writes few rows and goes through the
indexes as usual):

- its secondary indexes that enforce nothing (not the primary key, not a UNIQUE index or
  constraint) are dropped before the first row and created again after the last, in one sorted
  pass each instead of one entry per row; its unique indexes too (not a UNIQUE constraint, not
  the primary key) when the writer says it checks its keys itself (`unique=True`): built again
  after the load, they check every key at once. The statements are read back from the database's own
  catalog (sqlite_master / pg_get_indexdef), so an index added later by a migration is handled
  the same way without a change here;
- triggers named by a registered `Rebuild` are dropped before the load and created again after it,
  then the rebuild's set-based statement runs once (e.g. a full-text index filled from the table
  with one INSERT … SELECT instead of one trigger firing per row). Triggers no rebuild names are
  left in place and fire per row as usual: correct, only slower;
- on PostgreSQL its foreign keys are dropped too and added again after the load: each is then
  checked over the whole table in one query, instead of one trigger per row and key (queued until
  the commit, locking every parent row it checks). SQLite checks a key with one look-up in the
  parent's primary key per row: left as it is.

Everything happens in the import's transaction: an import that fails rolls the DDL back too (SQLite
and PostgreSQL both have transactional DDL). On PostgreSQL DROP INDEX takes an ACCESS EXCLUSIVE
lock on the table until the import commits: readers of that (empty at the start) table wait for the
import. A run that is rolled back (dry run, unreadable file) restores everything by the rollback.

Rebuilds are registered by the app that owns the trigger, from its AppConfig.ready(), with
tikting.core.loads.register_rebuild (re-exported here): the table, its trigger names per database
vendor and the set-based statement(s). Today: incidents (SQLite's full-text triggers) and metrics
(SQLite's data-stamp triggers on every table they watch, and the rollup's dirty-month triggers on
incidents); PostgreSQL's are statement-level triggers, one firing per COPY batch, left in place.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from django.db import connection, models

from tikting.core.loads import Rebuild, rebuilds_for, register_rebuild, unregister_rebuild

__all__ = [
    "Rebuild",
    "TableWriter",
    "bulk_load",
    "rebuilds_for",
    "register_rebuild",
    "sqlite_load_pragmas",
    "unregister_rebuild",
]

log = logging.getLogger(__name__)


@dataclass
class Deferred:
    """What was taken off a table for its load: statements to run again after it."""

    table: str
    indexes: list[tuple[str, str]] = field(default_factory=list)  # (name, CREATE INDEX …)
    triggers: list[tuple[str, str]] = field(default_factory=list)  # (name, CREATE TRIGGER …)
    foreign_keys: list[tuple[str, str]] = field(default_factory=list)  # PostgreSQL: (name, definition)
    rebuilds: list[Rebuild] = field(default_factory=list)


def _secondary_indexes(table: str, unique: bool = False) -> list[tuple[str, str]]:
    """(name, CREATE statement) of the table's indexes that enforce nothing; with `unique`, its
    unique indexes too (not the primary key, not one behind a UNIQUE constraint or column)."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                "SELECT name, sql FROM sqlite_master"
                " WHERE type = 'index' AND tbl_name = %s AND sql IS NOT NULL",
                [table],
            )
            return [
                (name, sql)
                for name, sql in cursor.fetchall()
                if unique or not sql.lstrip().upper().startswith("CREATE UNIQUE")
            ]
        if connection.vendor == "postgresql":
            cursor.execute(
                """
                SELECT c.relname, pg_get_indexdef(i.indexrelid)
                FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                WHERE i.indrelid = %s::regclass AND NOT i.indisprimary AND (%s OR NOT i.indisunique)
                  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
                ORDER BY c.relname
                """,
                [connection.ops.quote_name(table), unique],
            )
            return list(cursor.fetchall())
    return []


def _triggers(table: str, names: tuple[str, ...]) -> list[tuple[str, str]]:
    """(name, CREATE statement) of the named triggers of `table` that exist."""
    if not names:
        return []
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            marks = ", ".join(["%s"] * len(names))
            cursor.execute(
                "SELECT name, sql FROM sqlite_master"  # noqa: S608 - placeholders only
                f" WHERE type = 'trigger' AND tbl_name = %s AND name IN ({marks})",
                [table, *names],
            )
            return list(cursor.fetchall())
        if connection.vendor == "postgresql":
            cursor.execute(
                """
                SELECT t.tgname, pg_get_triggerdef(t.oid)
                FROM pg_trigger t
                WHERE t.tgrelid = %s::regclass AND NOT t.tgisinternal AND t.tgname = ANY(%s)
                """,
                [connection.ops.quote_name(table), list(names)],
            )
            return list(cursor.fetchall())
    return []


def _foreign_keys(table: str) -> list[tuple[str, str]]:
    """PostgreSQL: (name, definition) of the table's foreign keys (checked per row by triggers)."""
    if connection.vendor != "postgresql":
        return []  # SQLite checks a row's keys with one look-up in the parent's primary key
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype = 'f' ORDER BY conname",
            [connection.ops.quote_name(table)],
        )
        return list(cursor.fetchall())


def take_off(table: str, unique: bool = False) -> Deferred:
    """Drop the table's droppable indexes, its foreign keys (PostgreSQL) and the triggers of its
    rebuilds; what to put back."""
    deferred = Deferred(table, _secondary_indexes(table, unique), foreign_keys=_foreign_keys(table))
    for rebuild in rebuilds_for(table):
        deferred.rebuilds.append(rebuild)
        deferred.triggers += _triggers(table, rebuild.triggers.get(connection.vendor, ()))
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for name, _sql in deferred.triggers:
            on = f" ON {quote(table)}" if connection.vendor == "postgresql" else ""
            cursor.execute(f"DROP TRIGGER {quote(name)}{on}")
        for name, _sql in deferred.indexes:
            cursor.execute(f"DROP INDEX {quote(name)}")
        if deferred.foreign_keys:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # see put_back
            for name, _sql in deferred.foreign_keys:
                cursor.execute(f"ALTER TABLE {quote(table)} DROP CONSTRAINT {quote(name)}")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    return deferred


def put_back(deferred: Deferred) -> None:
    """Create the indexes and triggers again, run the rebuilds. PostgreSQL: the foreign keys are
    added again, each checked over the whole table in one query (a row that breaks one fails the
    import, as the per-row check would have)."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        if deferred.foreign_keys:
            # Deferred checks of rows written meanwhile to other tables are run now: PostgreSQL
            # cannot alter a table (here: also the parent tables, whose side of the key changes)
            # that has pending trigger events. Deferred again after, as Django's keys are.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            for name, definition in deferred.foreign_keys:
                cursor.execute(
                    f"ALTER TABLE {quote(deferred.table)} ADD CONSTRAINT {quote(name)} {definition}"
                )
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        for _name, sql in deferred.indexes:
            cursor.execute(sql)
        for _name, sql in deferred.triggers:
            cursor.execute(sql)
    for rebuild in deferred.rebuilds:
        rebuild.run(connection.vendor)


@contextmanager
def bulk_load(table: str, enabled: bool = True, unique: bool = False) -> Iterator[Deferred | None]:
    """Around the load of `table` (inside a transaction): indexes and rebuild triggers off, back on
    after. `enabled=False` (the table held rows at the start) changes nothing. `unique=True`: its
    unique indexes too (not the primary key, not a UNIQUE constraint), for a writer that checks
    the keys of its rows itself (each one once in the run); built again after the load, they
    check every key at once, and a repeated one fails the run."""
    if not enabled:
        yield None
        return
    deferred = take_off(table, unique)
    yield deferred
    start = time.perf_counter()
    put_back(deferred)
    log.debug(
        "bulk load of %s: %d index(es), %d trigger(s) put back in %.2f s",
        table,
        len(deferred.indexes),
        len(deferred.triggers),
        time.perf_counter() - start,
    )


@contextmanager
def sqlite_load_pragmas(cache_kib: int = 64 * 1024) -> Iterator[None]:
    """On SQLite, for the import's connection only and restored after: a larger page cache (index
    pages stay in memory), sorts of CREATE INDEX in memory (temp_store), and synchronous=OFF for
    the load (in WAL mode a crash can lose the import's commit, never corrupt the file: the import
    is then simply run again; the connection's setting, NORMAL in tikting's settings, comes back
    after). No-op on other databases."""
    if connection.vendor != "sqlite":
        yield
        return
    wanted = {"cache_size": -int(cache_kib)}
    if not connection.in_atomic_block:  # SQLite refuses to change these inside a transaction
        wanted.update(temp_store=2, synchronous=0)  # MEMORY, OFF
    with connection.cursor() as cursor:
        previous = {}
        for name, value in wanted.items():
            cursor.execute(f"PRAGMA {name}")
            previous[name] = int(cursor.fetchone()[0])
            cursor.execute(f"PRAGMA {name} = {value}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            for name, value in previous.items():
                cursor.execute(f"PRAGMA {name} = {value}")


# json.dumps(value) with its defaults (the text Django's JSONField writes), without building the
# C encoder again for every call as json.dumps does.
_encode = (
    json.encoder.c_make_encoder(  # type: ignore[attr-defined]
        None,
        json.JSONEncoder().default,
        json.encoder.encode_basestring_ascii,
        None,
        ": ",
        ", ",
        False,
        False,
        True,
    )
    if getattr(json.encoder, "c_make_encoder", None)
    else None
)


def dump_json(value: Any) -> str:
    if _encode is None or not isinstance(value, dict):
        return json.dumps(value)
    return "".join(_encode(value, 0))


def sqlite_datetime(value: dt.datetime) -> str:
    """An aware datetime as Django stores it on SQLite: naive UTC text."""
    if value.tzinfo is not dt.UTC:
        value = value.astimezone(dt.UTC)
    return str(value.replace(tzinfo=None))


class TableWriter:
    """Rows of one model written and read back without the ORM's per-field work.

    `insert(rows)`: rows {attname: value} with values already clean (parsed by the importer;
    datetimes aware, JSON fields Python objects); fields a row omits get their model default,
    created_at/updated_at `now`. SQLite: one `executemany`; PostgreSQL: ``COPY … FROM STDIN``.
    Generated columns (Django GeneratedField, e.g. a tsvector) are left to the database.

    `existing(source, keys, fields)`: {external_key: stored row} of the keys already stored, read
    with one plain query (no model instances, no per-row converters); `same(stored, values, f)` says
    whether a stored field equals the value the import would write (SQLite's stored text compared
    with the text the import would store, PostgreSQL's typed values with the Python values)."""

    def __init__(self, model: type[models.Model], now: dt.datetime):
        self.model = model
        self.table = model._meta.db_table
        self.sqlite = connection.vendor == "sqlite"
        self.columns: list[str] = []
        self.attnames: list[str] = []
        self.defaults: dict[str, Any] = {}
        self.dt_fields: set[str] = set()
        self.json_fields: set[str] = set()
        self.column_of: dict[str, str] = {}
        stamp = str(now.astimezone(dt.UTC).replace(tzinfo=None)) if self.sqlite else now
        for f in model._meta.concrete_fields:
            if f.primary_key or getattr(f, "generated", False):
                continue
            assert f.column is not None  # a concrete field has one
            self.columns.append(f.column)
            self.attnames.append(f.attname)
            self.column_of[f.attname] = f.column
            if f.attname in ("created_at", "updated_at"):
                self.defaults[f.attname] = stamp
            elif isinstance(f, models.JSONField):
                self.defaults[f.attname] = json.dumps(f.get_default())
                self.json_fields.add(f.attname)
            else:
                self.defaults[f.attname] = f.get_default()
                if isinstance(f, models.DateTimeField):
                    self.dt_fields.add(f.attname)
        self.getter = itemgetter(*self.attnames)
        # per row: the JSON fields to dump, and (SQLite) the datetimes to write as Django stores them
        self.convert = sorted(self.json_fields | (self.dt_fields if self.sqlite else set()))
        self.convert_set = set(self.convert)
        self._statements: dict[tuple[str, ...], tuple[str, tuple[Any, ...]]] = {}

    def db_value(self, attname: str, value: Any) -> Any:
        """`value` as this writer stores it (JSON text; on SQLite naive UTC text for datetimes)."""
        if value is None:
            return None
        if attname in self.json_fields:
            return dump_json(value)
        if self.sqlite and attname in self.dt_fields:
            return sqlite_datetime(value)
        return value

    def insert(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        defaults, getter = self.defaults, self.getter
        json_fields = [f for f in self.convert if f in self.json_fields]
        dt_fields = [f for f in self.convert if f in self.dt_fields]
        tuples = []
        for row in rows:
            merged = {**defaults, **row}
            for attname in json_fields:
                if attname in row:
                    merged[attname] = dump_json(row[attname])
            for attname in dt_fields:
                value = row.get(attname)
                if value is not None:
                    merged[attname] = sqlite_datetime(value)
            tuples.append(getter(merged))
        quote = connection.ops.quote_name
        columns = ", ".join(quote(c) for c in self.columns)
        with connection.cursor() as cursor:
            if self.sqlite:
                marks = ", ".join(["?"] * len(self.columns))
                sql = f"INSERT INTO {quote(self.table)} ({columns}) VALUES ({marks})"  # noqa: S608
                cursor.cursor.executemany(sql, tuples)  # below Django's wrapper: no per-call logging
            else:
                with cursor.cursor.copy(f"COPY {quote(self.table)} ({columns}) FROM STDIN") as copy:
                    for values in tuples:
                        copy.write_row(values)

    def existing(
        self, source: str, keys: list[str], fields: list[str]
    ) -> dict[str, tuple[int, int, tuple[Any, ...]]]:
        """{external_key: (id, version, stored values of `fields`)} of the stored rows of `source`
        among `keys` (compare them with `unchanged`)."""
        if not keys:
            return {}
        quote = connection.ops.quote_name
        names = ["id", "version", *fields]
        selected: list[str] = []
        for name in names:
            column = quote(self.column_of.get(name, name))
            if self.sqlite and name in self.dt_fields:  # the stored text: no converter per value
                column = f"CAST({column} AS TEXT)"
            selected.append(column)
        columns = ", ".join(selected)
        marks = ", ".join(["%s"] * len(keys))
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {quote('external_key')}, {columns} FROM {quote(self.table)} "  # noqa: S608
                # NOT (… = ''): the very words of the partial unique index's condition (Django's),
                # which SQLite needs to see to use that index (`<> ''` would not do)
                f"WHERE {quote('source')} = %s AND NOT ({quote('external_key')} = '') "
                f"AND {quote('external_key')} IN ({marks})",
                [source, *keys],
            )
            return {row[0]: (row[1], row[2], row[3:]) for row in cursor.fetchall()}

    def unchanged(self, stored: tuple[Any, ...], values: dict[str, Any], fields: list[str]) -> bool:
        """Whether the stored values of `fields` (from `existing`) equal `values`: one comparison of
        tuples when the stored form is the one this writer writes, else field by field."""
        ours = [values[fields[0]]] if len(fields) == 1 else list(itemgetter(*fields)(values))
        if self.sqlite:
            for i, name in enumerate(fields):
                value = ours[i]
                if value is not None and name in self.convert_set:
                    ours[i] = dump_json(value) if name in self.json_fields else sqlite_datetime(value)
        else:  # PostgreSQL: typed values, but jsonb as its own text (Django's loader): parsed here
            stored_list = list(stored)
            for i, name in enumerate(fields):
                if name in self.json_fields and isinstance(stored_list[i], str):
                    stored_list[i] = json.loads(stored_list[i])
            stored = tuple(stored_list)
        if tuple(ours) == stored:
            return True
        return all(self.same(s, values[f], f) for s, f in zip(stored, fields, strict=True))

    def same(self, stored: Any, value: Any, attname: str) -> bool:
        """Whether the stored field equals `value` (what the import would write now)."""
        if value is None or stored is None:
            return stored is value
        if attname in self.json_fields:
            if not isinstance(stored, str):
                return bool(stored == value)
            return bool(stored == dump_json(value) or json.loads(stored) == value)
        if not self.sqlite:  # psycopg returns typed values: aware datetimes, numbers, booleans
            return bool(stored == value)
        if attname in self.dt_fields:
            text = sqlite_datetime(value)
            if stored == text:
                return True
            if isinstance(stored, str):
                stored = dt.datetime.fromisoformat(stored)
            return bool(stored.replace(tzinfo=None) == dt.datetime.fromisoformat(text))
        return bool(stored == value)

    # Rows as tuples in their stored form (the importers' fast path) ------------------------

    def stored_datetime(self, value: dt.datetime | None) -> str | None:
        """An aware datetime in the stored form of `insert_rows` rows: naive UTC text on SQLite
        (as Django stores it), UTC text with ``+00`` on PostgreSQL (what COPY reads and what
        `existing_rows` reads back)."""
        if value is None:
            return None
        text = sqlite_datetime(value)
        return text if self.sqlite else f"{text}+00"

    def insert_rows(self, fields: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        """Insert `rows`, tuples of the values of `fields` (attnames) in their stored form: JSON
        as its text, datetimes as `stored_datetime` makes them, other values as they are. The
        other columns get their defaults, as in `insert`."""
        if not rows:
            return
        statement = self._statements.get(fields)
        if statement is None:
            rest = [a for a in self.attnames if a not in fields]
            quote = connection.ops.quote_name
            columns = ", ".join(quote(self.column_of[a]) for a in (*fields, *rest))
            if self.sqlite:
                marks = ", ".join(["?"] * (len(fields) + len(rest)))
                sql = f"INSERT INTO {quote(self.table)} ({columns}) VALUES ({marks})"  # noqa: S608
            else:
                sql = f"COPY {quote(self.table)} ({columns}) FROM STDIN"
            statement = self._statements[fields] = (sql, tuple(self.defaults[a] for a in rest))
        sql, defaults = statement
        with connection.cursor() as cursor:
            if self.sqlite:
                cursor.cursor.executemany(sql, [row + defaults for row in rows])
            else:
                with cursor.cursor.copy(sql) as copy:
                    write = copy.write_row
                    for row in rows:
                        write(row + defaults)

    def existing_rows(
        self, source: str, keys: list[str], fields: tuple[str, ...], json_texts: list[str] | None = None
    ) -> dict[str, tuple[int, int, tuple[Any, ...]]]:
        """{external_key: (id, version, stored values of `fields`)} of the stored rows of `source`
        among `keys`, in the stored form of `insert_rows` (compare with `same_row`).

        A JSON field (at most one, the last of `fields`) is compared by the database on
        PostgreSQL, which holds it as jsonb, not as the text written: `json_texts` (one per key)
        is the JSON each row would write, and the value read back is whether the stored one is
        equal. On SQLite it is the stored text."""
        if not keys:
            return {}
        quote = connection.ops.quote_name
        selected: list[str] = []
        for name in fields:
            column = f"t.{quote(self.column_of.get(name, name))}"
            if name in self.dt_fields:
                if self.sqlite:
                    column = f"CAST({column} AS TEXT)"
                else:  # whole seconds as `stored_datetime` writes them, else the value's own text
                    column = (
                        f"CASE WHEN date_trunc('second', {column}) = {column} THEN "
                        f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS\"+00\"') "
                        f"ELSE {column}::text END"
                    )
            elif name in self.json_fields and not self.sqlite:
                column = f"({column} = v.doc)"
            selected.append(column)
        key, src = quote("external_key"), quote("source")
        with connection.cursor() as cursor:
            if self.sqlite:
                marks = ", ".join(["%s"] * len(keys))
                cursor.execute(
                    f"SELECT t.{key}, t.id, t.version, {', '.join(selected)} "  # noqa: S608
                    f"FROM {quote(self.table)} t "
                    # NOT (… = ''): the words of the partial unique index's condition (see existing)
                    f"WHERE t.{src} = %s AND NOT (t.{key} = '') AND t.{key} IN ({marks})",
                    [source, *keys],
                )
            else:
                # The keys and JSON texts as one jsonb array parameter: a text[] parameter would be
                # quoted element by element in Python (psycopg's client-side binding)
                encode = json.encoder.encode_basestring_ascii
                docs = json_texts if json_texts is not None else ["null"] * len(keys)
                pairs = ", ".join(
                    f'{{"k": {encode(k)}, "doc": {d}}}' for k, d in zip(keys, docs, strict=True)
                )
                cursor.execute(
                    f"SELECT t.{key}, t.id, t.version, {', '.join(selected)} "  # noqa: S608
                    f"FROM jsonb_to_recordset(%s::jsonb) AS v(k text, doc jsonb) JOIN {quote(self.table)} t "
                    f"ON t.{src} = %s AND NOT (t.{key} = '') AND t.{key} = v.k",
                    [f"[{pairs}]", source],
                )
            return {row[0]: (row[1], row[2], row[3:]) for row in cursor.fetchall()}

    def same_row(self, stored: tuple[Any, ...], row: tuple[Any, ...], fields: tuple[str, ...]) -> bool:
        """Whether the stored values (from `existing_rows`) equal `row` (stored form, `fields`)."""
        if not self.sqlite:
            json_at = [i for i, name in enumerate(fields) if name in self.json_fields]
            if json_at:
                i = json_at[0]
                return bool(stored[i]) and stored[:i] + stored[i + 1 :] == row[:i] + row[i + 1 :]
            return stored == row
        if stored == row:
            return True
        for value, ours, name in zip(stored, row, fields, strict=True):
            if value == ours:
                continue
            if value is None or ours is None:
                return False
            if name in self.json_fields:
                if json.loads(value) != json.loads(ours):
                    return False
            elif name in self.dt_fields and isinstance(value, str) and isinstance(ours, str):
                if dt.datetime.fromisoformat(value).replace(tzinfo=None) != dt.datetime.fromisoformat(ours):
                    return False
            else:
                return False
        return True

    def python_values(self, row: tuple[Any, ...], fields: tuple[str, ...]) -> dict[str, Any]:
        """`row` (stored form) as the model's field values (JSON parsed, datetimes aware)."""
        values = dict(zip(fields, row, strict=True))
        for name, value in values.items():
            if value is None:
                continue
            if name in self.json_fields:
                values[name] = json.loads(value)
            elif name in self.dt_fields:
                text = value if self.sqlite else value.removesuffix("+00")
                values[name] = dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
        return values
