"""Metric results reused until the records behind them change.

A series over a million incidents costs 0.3–1.2 s to compute (docs/metrics.md, "Performance");
the metrics page, the API and the register's computed indicators ask the same questions again and
again between two imports. So every compute() answer is kept in `metrics_cachedresult` under the
question's hash and the **data stamp** it was computed at, and is reused while the stamp is
unchanged (and it is younger than TIKTING_METRICS_CACHE_SECONDS).

The data stamp moves on every INSERT, UPDATE, DELETE (and TRUNCATE) of a table a metric reads
(DATA_TABLES), through database triggers, so no write path can forget it: the ORM, bulk imports
(COPY / executemany), apply_slas and hand-written SQL all bump it.
- PostgreSQL: a statement-level trigger calls nextval() on the sequence `metrics_data_stamp`;
  sequences never block, so concurrent writers (an import and a UI save) do not queue behind it.
  nextval() runs before the writer commits: a reader in that instant may store a result computed
  without the write under the new stamp; the age limit bounds how long such an answer can live.
- SQLite: row-level triggers upsert the single row of `metrics_datastamp` (SQLite serialises
  writers anyway).

`warm()` computes the metrics page's default views so the first visitor after an import does not
pay for them (run after imports and nightly; see docs/deployment.md).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

__all__ = ["DATA_TABLES", "data_stamp", "lookup", "store", "warm"]

# The tables whose rows metrics read (values, filters, slicer labels).
DATA_TABLES = (
    "incidents_incident",
    "incidents_interaction",
    "changes_change",
    "surveys_surveyresponse",
    "cmdb_service",
    "cmdb_configurationitem",
    "accounts_team",
)
SEQUENCE = "metrics_data_stamp"


def max_age() -> int:
    return int(getattr(settings, "TIKTING_METRICS_CACHE_SECONDS", 600))


def data_stamp() -> int:
    """The current data stamp (0 before the first write)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"SELECT last_value FROM {SEQUENCE}")  # noqa: S608 (a constant)
        else:
            cursor.execute("SELECT n FROM metrics_datastamp WHERE id = 1")
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def question_key(metric_key: str, by: str | None, filters: dict[str, Any] | None, **options: Any) -> str:
    question = [
        connection.alias,
        settings.TIME_ZONE,  # months and weeks are local
        metric_key,
        by,
        sorted((str(k), str(v)) for k, v in (filters or {}).items()),
        sorted((k, str(v)) for k, v in options.items()),
    ]
    return hashlib.sha256(json.dumps(question).encode()).hexdigest()


def lookup(key: str, stamp: int) -> dict[str, Any] | None:
    from .models import CachedResult

    oldest = timezone.now() - dt.timedelta(seconds=max_age())
    row = (
        CachedResult.objects.filter(key=key, stamp=stamp, computed_at__gte=oldest)
        .values_list("payload", flat=True)
        .first()
    )
    return row


def store(key: str, stamp: int, payload: dict[str, Any]) -> None:
    """Keep an answer; a concurrent store of the same question wins or loses quietly."""
    from .models import CachedResult

    try:
        with transaction.atomic():
            CachedResult.objects.update_or_create(
                key=key, defaults={"stamp": stamp, "computed_at": timezone.now(), "payload": payload}
            )
    except IntegrityError:  # the same question stored by another request in the meantime
        pass


def cached(compute_fn: Callable[[], Any], key: str, to_payload, from_payload) -> Any:
    """compute_fn()'s answer for `key`, reused while the data stamp is unchanged."""
    if max_age() <= 0:
        return compute_fn()
    stamp = data_stamp()
    payload = lookup(key, stamp)
    if payload is not None:
        return from_payload(payload)
    result = compute_fn()
    store(key, stamp, to_payload(result))
    return result


def purge() -> int:
    """Delete answers too old to be used (housekeeping)."""
    from .models import CachedResult

    oldest = timezone.now() - dt.timedelta(seconds=max_age())
    return CachedResult.objects.filter(computed_at__lt=oldest).delete()[0]


def warm(metric_keys: list[str] | None = None) -> int:
    """Compute the metrics page's default view (by month, no filter) of every metric, or of those
    given, so that they are ready for the next visitor. Returns how many were computed."""
    from .definitions import DEFINITIONS
    from .engine import compute

    done = 0
    for key in metric_keys or list(DEFINITIONS):
        compute(key, by="month")
        done += 1
    return done


# --- Triggers (created by migration 0002; listed here so tests and docs share one definition) ----


def trigger_sql(vendor: str) -> list[str]:
    """The statements that make every write to DATA_TABLES move the data stamp."""
    statements: list[str] = []
    if vendor == "postgresql":
        statements.append(f"CREATE SEQUENCE IF NOT EXISTS {SEQUENCE}")
        statements.append(
            "CREATE OR REPLACE FUNCTION metrics_bump_data_stamp() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN PERFORM nextval('{SEQUENCE}'); RETURN NULL; END $$"
        )
        for table in DATA_TABLES:
            statements.append(f"DROP TRIGGER IF EXISTS metrics_data_stamp ON {table}")
            statements.append(
                f"CREATE TRIGGER metrics_data_stamp AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION metrics_bump_data_stamp()"
            )
        return statements
    bump = "INSERT INTO metrics_datastamp (id, n) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET n = n + 1;"
    for table in DATA_TABLES:
        for event in ("INSERT", "UPDATE", "DELETE"):
            name = f"metrics_data_stamp_{table}_{event.lower()}"
            statements.append(f"DROP TRIGGER IF EXISTS {name}")
            statements.append(f"CREATE TRIGGER {name} AFTER {event} ON {table} BEGIN {bump} END")
    return statements


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
