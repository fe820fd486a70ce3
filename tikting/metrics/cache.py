"""Metric results reused until the records behind them change.

A series over a million incidents costs 0.3–1 s to compute (docs/metrics.md, "Performance"); the
metrics page, the API and the register's computed indicators ask the same questions again and
again between two imports. So every compute() answer is kept in `metrics_cachedresult` under the
question's hash and the **data stamp** it was computed at, and is reused while the stamp is
unchanged. An answer that depends on the current time (a backlog "as of now") also expires after
TIKTING_METRICS_CACHE_SECONDS (600; 0 turns reuse off).

The data stamp moves on every INSERT, UPDATE, DELETE (and TRUNCATE) of a table a metric reads
(DATA_TABLES), through database triggers, so no write path can forget it: the ORM, bulk imports
(COPY / executemany), apply_slas and hand-written SQL all bump it.
- PostgreSQL: a statement-level trigger calls nextval() on the sequence `metrics_data_stamp`;
  sequences never block, so concurrent writers (an import and a UI save) do not queue behind it.
  nextval() runs before the writer commits, so an answer computed while another transaction has
  written and not committed is returned but not kept (writers_in_flight()).
- SQLite: row-level triggers upsert the single row of `metrics_datastamp` in the writer's own
  transaction (SQLite serialises writers anyway).
After every `migrate` the triggers are created again (SQLite loses them when a migration rebuilds
a table) and every answer is forgotten (the code, and with it a formula, may have changed).

`engine.warm()` computes the metrics page's default views anew so the first visitor after an import
does not pay for them (run after imports and nightly; see docs/deployment.md).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.db import IntegrityError, connection, connections, transaction
from django.db.models import Q
from django.utils import timezone

__all__ = ["DATA_TABLES", "data_stamp", "lookup", "store"]

T = TypeVar("T")

# The tables whose rows metrics read (values, filters, slicer labels).
DATA_TABLES = (
    "incidents_incident",
    "incidents_interaction",
    "changes_change",
    "surveys_surveyresponse",
    "cmdb_service",
    "cmdb_configurationitem",
    "accounts_team",
    "discovery_accuracysnapshot",
)
SEQUENCE = "metrics_data_stamp"


def max_age() -> int:
    """How long an answer that depends on the current time (a backlog "as of now") is reused; 0
    turns reuse off altogether. Other answers live until the data stamp moves."""
    return int(getattr(settings, "TIKTING_METRICS_CACHE_SECONDS", 600))


def data_stamp() -> int:
    """The current data stamp (0 before the first write)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # last_value is 1 both before and after the first nextval(): is_called tells them apart
            cursor.execute(f"SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {SEQUENCE}")  # noqa: S608
        else:
            cursor.execute("SELECT n FROM metrics_datastamp WHERE id = 1")
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def writers_in_flight() -> bool:
    """PostgreSQL: does another transaction of this database hold a transaction id (it has
    written and not yet committed)? Its trigger may already have moved the stamp while its rows
    are not visible to us, so an answer computed now must not be kept under that stamp.
    SQLite: never (the stamp row is written in the writer's own transaction)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # the view is cached per transaction
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL)"
        )
        return bool(cursor.fetchone()[0])


def question_key(metric_key: str, by: str | None, clean_filters: dict[str, Any], **options: Any) -> str:
    """The hash of a question: the *cleaned* filters (empty ones dropped) and the options as JSON
    values, so that "no filter" (None) and the filter value "None" (= empty) never collide."""
    question = [
        connection.alias,
        settings.TIME_ZONE,  # months and weeks are local
        metric_key,
        by,
        sorted((str(k), str(v)) for k, v in clean_filters.items()),
        sorted(options.items()),
    ]
    return hashlib.sha256(json.dumps(question, default=str).encode()).hexdigest()


def lookup(key: str, stamp: int) -> dict[str, Any] | None:
    from .models import CachedResult

    return (
        CachedResult.objects.filter(key=key, stamp=stamp)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))
        .values_list("payload", flat=True)
        .first()
    )


def store(key: str, stamp: int, payload: dict[str, Any], *, time_dependent: bool = False) -> None:
    """Keep an answer; a concurrent store of the same question wins or loses quietly."""
    from .models import CachedResult

    now = timezone.now()
    expires = now + dt.timedelta(seconds=max_age()) if time_dependent else None
    try:
        with transaction.atomic():
            CachedResult.objects.update_or_create(
                key=key,
                defaults={"stamp": stamp, "computed_at": now, "expires_at": expires, "payload": payload},
            )
    except IntegrityError:  # the same question stored by another request in the meantime
        pass


def cached(
    compute_fn: Callable[[], T],
    key: str,
    to_payload: Callable[[T], dict[str, Any]],
    from_payload: Callable[[dict[str, Any]], T],
    *,
    time_dependent: bool = False,
    refresh: bool = False,
) -> T:
    """compute_fn()'s answer for `key`, reused while the data stamp is unchanged (and, for an
    answer that depends on the current time, for max_age() seconds). `refresh` computes anew."""
    if max_age() <= 0:
        return compute_fn()
    stamp = data_stamp()
    if not refresh:
        payload = lookup(key, stamp)
        if payload is not None:
            return from_payload(payload)
    result = compute_fn()
    if not writers_in_flight():
        store(key, stamp, to_payload(result), time_dependent=time_dependent)
    return result


def purge(*, everything: bool = False) -> int:
    """Delete the answers that can no longer be used: computed at an older stamp, or expired
    (housekeeping); `everything` after a migration (a formula may have changed)."""
    from .models import CachedResult

    if everything:
        return CachedResult.objects.all().delete()[0]
    stale = ~Q(stamp=data_stamp()) | Q(expires_at__lte=timezone.now())
    return CachedResult.objects.filter(stale).delete()[0]


def after_migrate(using: str = "default", **kwargs: Any) -> None:
    """post_migrate: (re)create the triggers (SQLite drops a table's triggers whenever a migration
    rebuilds the table) and forget every answer (a formula may have changed with the code); the
    monthly rollup (rollups.py) likewise: its triggers re-created, all of it rebuilt on next read."""
    from . import rollups

    db = connections[using]
    tables = set(db.introspection.table_names())
    if not {"metrics_cachedresult", "metrics_datastamp"} <= tables:
        return  # the metrics migrations have not run (yet)
    with db.cursor() as cursor:
        for statement in trigger_sql(db.vendor, tables=[t for t in DATA_TABLES if t in tables]):
            cursor.execute(statement)
        cursor.execute("DELETE FROM metrics_cachedresult")
        if "metrics_rollupdirty" in tables:  # the rollup's triggers too; rebuilt on the next read
            for statement in [*rollups.trigger_sql(db.vendor), rollups.mark_all_sql(db.vendor)]:
                cursor.execute(statement)


# --- Triggers (created by migration 0002; listed here so tests and docs share one definition) ----


def trigger_sql(vendor: str, tables: list[str] | tuple[str, ...] = DATA_TABLES) -> list[str]:
    """The statements that make every write to `tables` (DATA_TABLES) move the data stamp; they
    can run again (a trigger is dropped before it is created)."""
    statements: list[str] = []
    if vendor == "postgresql":
        statements.append(f"CREATE SEQUENCE IF NOT EXISTS {SEQUENCE}")
        statements.append(
            "CREATE OR REPLACE FUNCTION metrics_bump_data_stamp() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN PERFORM nextval('{SEQUENCE}'); RETURN NULL; END $$"
        )
        for table in tables:
            statements.append(f"DROP TRIGGER IF EXISTS metrics_data_stamp ON {table}")
            statements.append(
                f"CREATE TRIGGER metrics_data_stamp AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION metrics_bump_data_stamp()"
            )
        return statements
    for table in tables:
        for event, name in zip(("INSERT", "UPDATE", "DELETE"), sqlite_trigger_names(table), strict=True):
            statements.append(f"DROP TRIGGER IF EXISTS {name}")
            statements.append(f"CREATE TRIGGER {name} AFTER {event} ON {table} BEGIN {SQLITE_BUMP}; END")
    return statements


SQLITE_BUMP = "INSERT INTO metrics_datastamp (id, n) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET n = n + 1"


def sqlite_trigger_names(table: str) -> tuple[str, str, str]:
    """SQLite: the names of the data-stamp triggers of `table` (insert, update, delete)."""
    name = f"metrics_data_stamp_{table}"
    return f"{name}_insert", f"{name}_update", f"{name}_delete"


def bump_after_load(vendor: str) -> None:
    """After a bulk load (tikting.imports.bulk) that took the SQLite data-stamp triggers of a table
    off: the stamp moved once for the whole load, as the triggers would have moved it per row.
    (PostgreSQL's trigger is statement-level and stays on during loads.)"""
    if vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute(SQLITE_BUMP)


def drop_trigger_sql(vendor: str) -> list[str]:
    if vendor == "postgresql":
        statements = [f"DROP TRIGGER IF EXISTS metrics_data_stamp ON {t}" for t in DATA_TABLES]
        return [
            *statements,
            "DROP FUNCTION IF EXISTS metrics_bump_data_stamp()",
            f"DROP SEQUENCE IF EXISTS {SEQUENCE}",
        ]
    events = ("insert", "update", "delete")
    return [f"DROP TRIGGER IF EXISTS metrics_data_stamp_{t}_{e}" for t in DATA_TABLES for e in events]
