"""Benchmark: every metric series (12 months × one slicer) over N synthetic incidents.

    .venv/bin/python bench/metrics_1m.py                 # fresh tk_bench_metrics, 1,000,000 incidents
    .venv/bin/python bench/metrics_1m.py --keep          # reuse that database if already seeded
    .venv/bin/python bench/metrics_1m.py --rows 200000 --database-url postgres://…/other
    .venv/bin/python bench/metrics_1m.py --database-url sqlite:////tmp/x/metrics.sqlite3

The database (default PostgreSQL `tk_bench_metrics`; a sqlite:/// URL for SQLite) is dropped,
created and migrated, then its incident table is filled with N rows generated in SQL (20 services,
40 groups, P1–P5, 12 categories, 2024, ~6 % open; about 45 s for a million on PostgreSQL).
Prints the upkeep of the monthly rollup (rollups.py: built from scratch, then brought up to date
after one edit), the wall time of each compute() call (by month and by week over all incidents,
by month for one service and one priority, by service and by priority) with the result cache off
(the cold figure: from the rollup where it answers, else from the records; and the same question
from the records, `rollup=False`, for comparison), and the metrics page (/metrics/, default view
and filtered views) cold and with its answer reused. Targets: every series over all incidents
< 300 ms, one service < 50 ms, the page < 1 s. After seeding, VACUUM ANALYZE lets PostgreSQL use
index-only scans.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402


def seed(rows: int) -> None:
    from django.db import connection

    if connection.vendor == "sqlite":
        seed_sqlite(rows)
        return
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO cmdb_service (name, description, criticality, active, source) "
            "SELECT 'Bench service ' || g, '', 2, true, 'bench' FROM generate_series(1, 20) g "
            "ON CONFLICT DO NOTHING"
        )
        cur.execute(
            "INSERT INTO accounts_team (name, description, source, improvement_share, "
            "working_hours_per_week) SELECT 'Bench group ' || g, '', 'bench', 10, 40 "
            "FROM generate_series(1, 40) g ON CONFLICT DO NOTHING"
        )
        cur.execute("SELECT min(id) FROM cmdb_service WHERE source = 'bench'")
        s0 = cur.fetchone()[0]
        cur.execute("SELECT min(id) FROM accounts_team WHERE source = 'bench'")
        t0 = cur.fetchone()[0]
        cur.execute(
            """
            INSERT INTO incidents_incident (source, external_key, raw, created_at, updated_at, version,
              number, short_description, description, status, opened_at, resolved_at, closed_at, priority,
              category, subcategory, reassignment_count, reopen_count, contact_channel,
              first_contact_resolution, major, post_incident_review, closure_code, resolution_met,
              source_sla_met, service_id, assignment_group_id)
            SELECT 'bench', '', '{}', now(), now(), 1, 'BENCH' || g, '', '',
              CASE WHEN g %% 17 = 0 THEN 'in_progress' ELSE 'closed' END,
              o, CASE WHEN g %% 17 = 0 THEN NULL ELSE o + (h / 10.0) * interval '1 hour' END,
              CASE WHEN g %% 17 = 0 THEN NULL ELSE o + (h / 10.0 + 24) * interval '1 hour' END,
              1 + g %% 5, 'Category ' || (g %% 12), '', g %% 4, CASE WHEN g %% 23 = 0 THEN 1 ELSE 0 END, '',
              CASE WHEN g %% 3 = 0 THEN NULL ELSE g %% 2 = 0 END, false, '', '',
              h < 2400, h < 3000, %s + g %% 20, %s + g %% 40
            FROM (SELECT g, (g * 7919) %% 5000 AS h,
                         timestamptz '2024-01-01' + (g %% 525600) * interval '1 minute' AS o
                  FROM generate_series(1::bigint, %s) g) AS s
            """,
            [s0, t0, rows],
        )
    _common.vacuum_analyze("incidents_incident")


def seed_sqlite(rows: int) -> None:
    """The same rows on SQLite (a recursive CTE for generate_series; UTC text datetimes)."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cur:
        for g in range(1, 21):
            cur.execute(
                "INSERT OR IGNORE INTO cmdb_service (name, description, criticality, active, source) "
                "VALUES (%s, '', 2, 1, 'bench')",
                [f"Bench service {g}"],
            )
        for g in range(1, 41):
            cur.execute(
                "INSERT OR IGNORE INTO accounts_team (name, description, source, improvement_share, "
                "working_hours_per_week) VALUES (%s, '', 'bench', 10, 40)",
                [f"Bench group {g}"],
            )
        cur.execute("SELECT min(id) FROM cmdb_service WHERE source = 'bench'")
        s0 = cur.fetchone()[0]
        cur.execute("SELECT min(id) FROM accounts_team WHERE source = 'bench'")
        t0 = cur.fetchone()[0]
        cur.execute(
            """
            WITH RECURSIVE n(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM n WHERE g < %s),
            s AS (SELECT g, (g * 7919) %% 5000 AS h,
                         datetime('2024-01-01', '+' || (g %% 525600) || ' minutes') AS o FROM n)
            INSERT INTO incidents_incident (source, external_key, raw, created_at, updated_at, version,
              number, short_description, description, status, opened_at, resolved_at, closed_at, priority,
              category, subcategory, reassignment_count, reopen_count, contact_channel,
              first_contact_resolution, major, post_incident_review, closure_code, resolution_met,
              source_sla_met, service_id, assignment_group_id)
            SELECT 'bench', '', '{}', o, o, 1, 'BENCH' || g, '', '',
              CASE WHEN g %% 17 = 0 THEN 'in_progress' ELSE 'closed' END, o,
              CASE WHEN g %% 17 = 0 THEN NULL ELSE datetime(o, '+' || (h * 360) || ' seconds') END,
              CASE WHEN g %% 17 = 0 THEN NULL ELSE datetime(o, '+' || (h * 360 + 86400) || ' seconds') END,
              1 + g %% 5, 'Category ' || (g %% 12), '', g %% 4, CASE WHEN g %% 23 = 0 THEN 1 ELSE 0 END, '',
              CASE WHEN g %% 3 = 0 THEN NULL ELSE g %% 2 = 0 END, 0, '', '',
              h < 2400, h < 3000, %s + g %% 20, %s + g %% 40
            FROM s
            """,
            [rows, s0, t0],
        )
        cur.execute("ANALYZE")


def timed(repeat: int, key: str, **kwargs: object) -> tuple[float, float]:
    """(best, median) wall milliseconds of `repeat` cold compute() calls (the result cache off)."""
    from tikting.metrics.engine import compute

    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        compute(key, cache=False, **kwargs)  # type: ignore[arg-type]
        times.append((time.perf_counter() - t) * 1000)
    return min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="Keep the database if it is seeded already.")
    parser.add_argument(
        "--database-url", action="append", help="Database to use (dropped!): PostgreSQL, or sqlite:////path."
    )
    parser.add_argument("--no-direct", action="store_true", help="Skip the direct (rollup=False) timings.")
    parser.add_argument("--no-page", action="store_true", help="Skip the metrics page timings.")
    parser.add_argument(
        "--metrics",
        help="Comma-separated metric keys to time (default: all nine; SQLite's MTTR takes minutes).",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.child:
        url = (args.database_url or [_common.DEFAULT_PG.format(name="tk_bench_metrics")])[0]
        if not args.keep:
            _common.fresh_database(url)
        extra = ["--rows", str(args.rows), "--repeat", str(args.repeat)]
        extra += ["--no-direct"] * args.no_direct + ["--no-page"] * args.no_page
        extra += ["--metrics", args.metrics] if args.metrics else []
        sys.exit(_common.run_child(__file__, url, extra))
    _common.setup_django()
    from django.db import connection, transaction

    from tikting.incidents.models import Incident
    from tikting.metrics import rollups

    print(f"database: {connection.vendor}")
    if not Incident.objects.filter(source="bench").exists():
        t = time.perf_counter()
        seed(args.rows)
        print(f"seeded {args.rows:,} incidents in {time.perf_counter() - t:.1f} s")
    print(f"incidents: {Incident.objects.count():,}")

    # The rollup's upkeep: built from scratch, then after one edit (one month rebuilt).
    rollups.mark_all()
    t = time.perf_counter()
    rollups.refresh()
    print(f"rollup built from scratch in {time.perf_counter() - t:.2f} s")
    edited = Incident.objects.filter(source="bench").order_by("id").first()
    assert edited is not None
    for _ in range(2):
        with transaction.atomic():
            Incident.objects.filter(pk=edited.pk).update(reopen_count=1 - edited.reopen_count)
        t = time.perf_counter()
        months = rollups.refresh()
        ms = (time.perf_counter() - t) * 1000
        print(f"refresh after one incident edited: {months} month(s) rebuilt in {ms:.0f} ms")
    t = time.perf_counter()
    rollups.refresh()
    print(f"refresh with nothing written: {(time.perf_counter() - t) * 1000:.2f} ms")
    if connection.vendor == "postgresql":
        # What autovacuum does after the rebuilds (each deletes and writes its months again). This
        # machine's PostgreSQL runs with autovacuum off: without it, the dead rows of repeated
        # whole rebuilds made a rollup of 15,000 rows 237 MB, and a ratio series 3.6 -> 127 ms.
        for table in ("metrics_incidentmonth", "metrics_incidentend"):
            _common.vacuum_analyze(table)

    window = {"opened_from": "2024-01-01", "opened_to": "2024-12-31"}
    cases = []
    keys = (
        "mttr",
        "mttr_p90",
        "sla_resolution",
        "reopen_rate",
        "reassignment_rate",
        "incident_fcr_rate",
        "reassignment_mean",
        "backlog",
        "backlog_age",
    )
    for key in args.metrics.split(",") if args.metrics else keys:
        cases.append((key, "month", {**window}))
        cases.append((key, "week", {**window}))
        cases.append((key, "month", {**window, "service": "Bench service 3"}))
        cases.append((key, "month", {**window, "priority": "2"}))
        cases.append((key, "service", {**window}))
        cases.append((key, "priority", {**window}))
        if key.startswith("backlog"):  # no window: the total (and a running month) counted now
            cases.append((key, "month", {}))
            cases.append((key, "month", {"service": "Bench service 3"}))
    worst = {"all": 0.0, "one service": 0.0}
    print(f"{'series':<51} {'answered from':<14} {'best':>9} {'median':>9}   {'direct best':>11}")
    for key, by, filters in cases:
        source = "rollup" if rollups.covers_question(key, by=by, filters=filters) else "incidents"
        best, median = timed(args.repeat, key, by=by, filters=filters)
        scope = "one service" if "service" in filters else "all" if "priority" not in filters else ""
        if scope:
            worst[scope] = max(worst[scope], best)
        direct = ""
        if source == "rollup" and not args.no_direct:
            d_best, _ = timed(1, key, by=by, filters=filters, rollup=False)
            direct = f"{d_best:8.1f} ms"
        extra = {k: v for k, v in filters.items() if not k.startswith("opened")}
        extra = extra if "opened_from" in filters else {**extra, "as of": "now"}
        figures = f"{best:6.1f} ms {median:6.1f} ms   {direct:>11}"
        print(f"{key:<18} by {by:<8} {str(extra):<20} {source:<14} {figures}")
    print(
        f"slowest series over all incidents (best of {args.repeat}): {worst['all']:.1f} ms "
        f"(target < 300 ms); one service: {worst['one service']:.1f} ms (target < 50 ms)"
    )
    if not args.no_page:
        page(args.repeat)


def page(repeat: int) -> None:
    """The metrics page as a signed-in viewer sees it: cold (every answer computed) and reused."""
    from django.conf import settings
    from django.test import Client

    from tikting.accounts.models import User

    user, _ = User.objects.get_or_create(username="bench-viewer", defaults={"role": "viewer"})
    client = Client()
    client.force_login(user)
    urls = [
        "/metrics/",
        "/metrics/?metric=mttr&by=month&service=Bench+service+3&opened_from=2024-01-01&opened_to=2024-12-31",
        "/metrics/?metric=sla_resolution&by=service",
    ]
    for url in urls:
        for label, seconds in (("cold", 0), ("reused", 600)):
            settings.TIKTING_METRICS_CACHE_SECONDS = seconds
            client.get(url)  # computes (cold) or stores the answer (reused)
            times = []
            for _ in range(repeat):
                t = time.perf_counter()
                response = client.get(url)
                times.append((time.perf_counter() - t) * 1000)
                assert response.status_code == 200, response.status_code
            best, median = min(times), statistics.median(times)
            print(f"page {label:<6} {url:<100} best {best:7.1f} ms  median {median:7.1f} ms")


if __name__ == "__main__":
    main()
