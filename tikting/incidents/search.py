"""Full-text search of incidents: an index the database keeps current on every write, imports too.

- **PostgreSQL**: a stored generated column `search_vector` (tsvector, English stemming; number
  and short description weighted A, description B) with a GIN index. PostgreSQL computes it on
  every INSERT, UPDATE and COPY, so an import needs to do nothing.
- **SQLite**: an FTS5 external-content table `incidents_incident_fts` (number, short
  description, description; Porter stemming) kept by AFTER INSERT / UPDATE / DELETE triggers on
  `incidents_incident`, so `executemany` bulk inserts are indexed as they go. SQLite drops a
  table's triggers when a later migration rebuilds the table (its way of altering one): after
  every `migrate` ensure_index() puts back whatever is missing and rebuilds the index from the
  table when it had to.

What the index costs an import, measured on 46,000 incidents on the loaded 2-core machine:
PostgreSQL COPY of rows holding only a number 0.25 → 0.64 s (0.6 → 9–10 s when each has a
30-word description: English stemming); SQLite `executemany` 0.34 → 4.8 s with a trigger per row,
so a bulk load wraps its inserts in deferred_index() (0.44 s, then 0.5 s to rebuild the index).

The words of a query are matched as prefixes ("print" finds "printer", "printers"), all of them
(AND); results are ranked by relevance (PostgreSQL's ts_rank with the weights above, SQLite's
bm25 with the same columns weighted 10, 5, 1). Substrings inside a word are not matched.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection as default_connection
from django.db import connections
from django.db.models import BooleanField, FloatField, QuerySet, Value
from django.db.models.expressions import RawSQL

TABLE = "incidents_incident"
FTS = "incidents_incident_fts"
COLUMNS = ("number", "short_description", "description")
RANK = "search_rank"
MAX_TERMS = 16  # words of a query used (the rest ignored): bounds the query's cost

PG_VECTOR = (
    "setweight(to_tsvector('english'::regconfig, coalesce(number, '') || ' ' || "
    "coalesce(short_description, '')), 'A') || "
    "setweight(to_tsvector('english'::regconfig, coalesce(description, '')), 'B')"
)

POSTGRESQL_FORWARD = [
    f"ALTER TABLE {TABLE} ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ({PG_VECTOR}) STORED",
    f"CREATE INDEX incidents_incident_search ON {TABLE} USING GIN (search_vector)",
]
POSTGRESQL_BACKWARD = [
    "DROP INDEX IF EXISTS incidents_incident_search",
    f"ALTER TABLE {TABLE} DROP COLUMN IF EXISTS search_vector",
]

_cols = ", ".join(COLUMNS)
_new = ", ".join(f"new.{c}" for c in COLUMNS)
_old = ", ".join(f"old.{c}" for c in COLUMNS)
_changed = " OR ".join(f"old.{c} IS NOT new.{c}" for c in COLUMNS)
SQLITE_TRIGGERS = {
    f"{FTS}_ai": (
        f"CREATE TRIGGER IF NOT EXISTS {FTS}_ai AFTER INSERT ON {TABLE} BEGIN "  # noqa: S608 - constants
        f"INSERT INTO {FTS}(rowid, {_cols}) VALUES (new.id, {_new}); END"
    ),
    f"{FTS}_ad": (
        f"CREATE TRIGGER IF NOT EXISTS {FTS}_ad AFTER DELETE ON {TABLE} BEGIN "  # noqa: S608 - constants
        f"INSERT INTO {FTS}({FTS}, rowid, {_cols}) VALUES ('delete', old.id, {_old}); END"
    ),
    f"{FTS}_au": (
        # Django's save() writes every column: the index is touched only when a text changed.
        f"CREATE TRIGGER IF NOT EXISTS {FTS}_au AFTER UPDATE OF {_cols} ON {TABLE} WHEN {_changed} BEGIN "  # noqa: S608
        f"INSERT INTO {FTS}({FTS}, rowid, {_cols}) VALUES ('delete', old.id, {_old}); "
        f"INSERT INTO {FTS}(rowid, {_cols}) VALUES (new.id, {_new}); END"
    ),
}
SQLITE_TABLE = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS} USING fts5({_cols}, content='{TABLE}', "
    "content_rowid='id', tokenize='porter unicode61')"
)
SQLITE_REBUILD = f"INSERT INTO {FTS}({FTS}) VALUES ('rebuild')"  # noqa: S608 - constants
SQLITE_FORWARD = [SQLITE_TABLE, *SQLITE_TRIGGERS.values(), SQLITE_REBUILD]
SQLITE_BACKWARD = [
    *(f"DROP TRIGGER IF EXISTS {name}" for name in SQLITE_TRIGGERS),
    f"DROP TABLE IF EXISTS {FTS}",
]


def ensure_index(using: Any = None) -> bool:
    """SQLite: create the FTS5 table and triggers where missing (a table rebuilt by a migration
    loses its triggers) and rebuild the index from the table if anything was missing. Returns
    whether it had to. PostgreSQL keeps its generated column through any ALTER: nothing to do."""
    conn = using or default_connection
    if conn.vendor != "sqlite" or TABLE not in conn.introspection.table_names():
        return False
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT name FROM sqlite_master WHERE (type = 'trigger' AND tbl_name = %s) OR name = %s",
            [TABLE, FTS],
        )
        present = {row[0] for row in cursor.fetchall()}
        if present >= {FTS, *SQLITE_TRIGGERS}:
            return False
        for statement in SQLITE_FORWARD:
            cursor.execute(statement)
    return True


@contextmanager
def deferred_index(using: Any = None) -> Iterator[None]:
    """For a bulk load of incidents: on SQLite the triggers are dropped while the block runs and
    the index is rebuilt from the table at the end (one pass: about 10 µs a row, where a trigger
    per inserted row costs about 100). Inside a transaction, other connections never see the
    triggers gone. For a few rows into a large table the triggers are cheaper: use it for loads,
    not for every import. PostgreSQL: nothing to do (the generated column is computed by COPY)."""
    conn = using or default_connection
    if conn.vendor != "sqlite":
        yield
        return
    with conn.cursor() as cursor:
        for name in SQLITE_TRIGGERS:
            cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
    try:
        yield
    finally:
        ensure_index(conn)


def terms(text: str) -> list[str]:
    """The words of a query (letters and digits, any script), lower-cased, at most MAX_TERMS."""
    return [word.lower() for word in re.findall(r"\w+", text)][:MAX_TERMS]


def tsquery(words: list[str]) -> str:
    """PostgreSQL: every word, as a prefix (`to_tsquery` syntax)."""
    return " & ".join(f"{word}:*" for word in words)


def fts5_query(words: list[str]) -> str:
    """SQLite FTS5: every word, quoted, as a prefix."""
    return " ".join(f'"{word}"*' for word in words)


def query_for(text: str, vendor: str) -> str | None:
    """The database's query for the words of `text` (PostgreSQL's tsquery, SQLite's FTS5 MATCH),
    None when it has no words."""
    words = terms(text)
    if not words:
        return None
    return tsquery(words) if vendor == "postgresql" else fts5_query(words)


def matching(qs: QuerySet[Any], query: str | None) -> QuerySet[Any]:
    """Incidents of `qs` matching a query of query_for() (None: none), annotated with
    `search_rank` (higher is more relevant). Unordered: the caller orders by the rank or its own
    sort. The query is the SQL's only parameter, as given: tikting.core.prepared can bind it."""
    if query is None:  # nothing to look for: no match (still sortable by the rank)
        return qs.annotate(**{RANK: Value(0.0, output_field=FloatField())}).none()
    if connections[qs.db].vendor == "postgresql":
        match = RawSQL(  # noqa: S611 - fixed SQL, the query a parameter
            f"{TABLE}.search_vector @@ to_tsquery('english'::regconfig, %s)",
            [query],
            output_field=BooleanField(),
        )
        rank = RawSQL(  # noqa: S611 - fixed SQL, the query a parameter
            f"ts_rank({TABLE}.search_vector, to_tsquery('english'::regconfig, %s))",
            [query],
            output_field=FloatField(),
        )
        return qs.filter(match).annotate(**{RANK: rank})
    # SQLite: a join with the FTS5 table, which the planner drives from the MATCH (a correlated
    # subquery per row would evaluate the MATCH again for every match).
    return qs.extra(  # noqa: S610 - fixed SQL, the query text is a parameter
        tables=[FTS],
        where=[f"{FTS}.rowid = {TABLE}.id", f"{FTS} MATCH %s"],
        params=[query],
        select={RANK: f"-bm25({FTS}, 10.0, 5.0, 1.0)"},
    )


def search(qs: QuerySet[Any], text: str) -> QuerySet[Any]:
    """Incidents of `qs` matching every word of `text` (as prefixes), annotated with `search_rank`
    (higher is more relevant). Unordered: the caller orders by the rank or its own sort."""
    return matching(qs, query_for(text, connections[qs.db].vendor))


DENSE = 10_000  # estimated matches from which latest() walks the ids instead of the index


def latest(text: str, limit: int, using: str = "default") -> list[int]:
    """The ids of the `limit` most recent incidents (highest ids) matching every word of `text`,
    read from the index alone: what the search across everything offers (tikting/search), which
    ranks them itself. Ordering by relevance would score every match first (a common word matches
    a tenth of a million incidents); the index walks its entries newest first and stops at `limit`."""
    words = terms(text)
    if not words:
        return []
    conn = connections[using]
    with conn.cursor() as cursor:
        if conn.vendor == "postgresql":
            query = tsquery(words)
            match = f"FROM {TABLE} WHERE search_vector @@ to_tsquery('english'::regconfig, %s)"
            # Two plans, chosen by the planner's estimate of the matches (its statistics count the
            # words of the index): many matches, walk the ids newest first and stop at `limit`
            # (a common word: a few ms; a rare one would read the whole table that way); few,
            # read them all from the GIN index and keep the newest (a common word would read
            # a tenth of the table that way).
            cursor.execute(f"EXPLAIN (FORMAT JSON) SELECT id {match}", [query])  # noqa: S608
            plan = cursor.fetchone()[0]
            estimate = (plan if isinstance(plan, list) else json.loads(plan))[0]["Plan"]["Plan Rows"]
            if estimate >= DENSE:
                cursor.execute(f"SELECT id {match} ORDER BY id DESC LIMIT %s", [query, limit])  # noqa: S608
            else:
                cursor.execute(
                    f"WITH found AS MATERIALIZED (SELECT id {match}) "  # noqa: S608
                    "SELECT id FROM found ORDER BY id DESC LIMIT %s",
                    [query, limit],
                )
        else:
            query = fts5_query(words)
            cursor.execute(
                f"SELECT rowid FROM {FTS} WHERE {FTS} MATCH %s ORDER BY rowid DESC LIMIT %s",  # noqa: S608
                [query, limit],
            )
        return [row[0] for row in cursor.fetchall()]
