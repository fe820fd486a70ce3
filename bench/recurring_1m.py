"""Benchmark: the recurring-incident detector over N synthetic incidents (PostgreSQL).

    .venv/bin/python bench/recurring_1m.py                 # fresh tk_bench_recurring, 1,000,000 incidents
    .venv/bin/python bench/recurring_1m.py --keep          # reuse that database if already seeded
    .venv/bin/python bench/recurring_1m.py --rows 200000 --unique-share 0.5

The PostgreSQL database (default `tk_bench_recurring`) is dropped, created and migrated, then filled
by one `generate_series` INSERT (about a minute for a million) with a year of incidents (2024) on
30 services and 300 CIs. Each CI is one of 40 things (Outlook, the VPN client, a printer …); an
incident on it has one of 20 symptoms (a skewed choice: a few symptoms are common) and a text
written in one of five ways: the plain "<thing> <symptom>" (40 %), shouted with punctuation (20 %),
the other word order (15 %), with a typo (15 %), or with a token of its own that no other incident
has, such as a PC name (`--unique-share`, 10 %; every such text is a distinct text to compare). One
incident in ten has no text and no CI (a category and subcategory only: the burst rule), one in
twenty no text but a CI. One in twenty of those without text or CI comes in a burst: a network
outage, some 100 incidents within an hour and a half, once a week (50 of them).

The detector then runs over the whole year in a child process of its own (started after seeding,
so its memory is the detector's), which prints the wall time, the CPU time of the Python process
(PostgreSQL's own work is in its server process, not counted there), the peak resident memory
(ru_maxrss, Django included) and what was found. Python runs on one core; the child is pinned to
one with `taskset` when it is there. Targets: under 60 s and under 1 GB.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

SOURCE = "bench-recurring"
THINGS = [
    "Outlook", "VPN client", "Printer", "SAP GUI", "Laptop", "Docking station", "Teams", "Excel",
    "Shared drive", "Intranet", "Payroll app", "CRM", "Badge reader", "Wi-Fi", "Monitor", "Keyboard",
    "Citrix", "Jira", "Confluence", "Mobile phone", "Scanner", "Web shop", "Billing batch", "Data warehouse",
    "Backup agent", "Antivirus", "Browser", "PDF reader", "Telephone", "Headset", "Webcam", "Calendar",
    "Expense tool", "Timesheet", "HR portal", "Firewall", "Load balancer", "Database", "Mail relay", "DNS",
]  # fmt: skip
SYMPTOMS = [
    "crashes when opening attachments", "is very slow", "cannot connect", "shows error 0x80070005",
    "freezes after login", "does not start", "login fails", "keeps disconnecting", "prints blank pages",
    "sync fails", "password expired", "license missing", "screen flickers", "no sound", "out of disk space",
    "certificate warning", "timeout on save", "wrong data shown", "update failed", "access denied",
]  # fmt: skip
CATEGORIES = ["Software", "Hardware", "Network", "Access", "Database", "Inquiry"]


def seed(rows: int, unique_share: float) -> None:
    from django.db import connection

    unique_from = 100 - round(100 * unique_share)
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO cmdb_service (name, description, criticality, active, source) "
            "SELECT 'Recurring bench service ' || g, '', 2, true, 'bench' FROM generate_series(0, 29) g "
            "ON CONFLICT DO NOTHING"
        )
        cur.execute("SELECT min(id) FROM cmdb_service WHERE name LIKE 'Recurring bench service %%'")
        s0 = cur.fetchone()[0]
        cur.execute(
            """
            INSERT INTO cmdb_configurationitem (source, external_key, raw, created_at, updated_at, version,
              name, ci_class, ci_type, service_id, status)
            SELECT %s, 'CI' || g, '{}', now(), now(), 1, (%s::text[])[1 + g %% 40] || ' ' || g, 'other', '',
              %s + g %% 30, 'active'
            FROM generate_series(0, 299) g
            """,
            [SOURCE, THINGS, s0],
        )
        cur.execute("SELECT min(id) FROM cmdb_configurationitem WHERE source = %s", [SOURCE])
        c0 = cur.fetchone()[0]
        cur.execute(
            """
            INSERT INTO incidents_incident (source, external_key, raw, created_at, updated_at, version,
              number, short_description, description, status, opened_at, resolved_at, priority,
              category, subcategory, reopen_count, contact_channel, major, post_incident_review,
              closure_code, service_id, ci_id)
            SELECT %(source)s, '', '{}', now(), now(), 1, 'RB' || g,
              CASE WHEN kind > 0 THEN ''
                   WHEN v < 40 THEN base
                   WHEN v < 60 THEN upper(base) || '!!'
                   WHEN v < 75 THEN symptom || ' - ' || thing
                   WHEN v < %(unique_from)s THEN overlay(base placing '' from (2 + g %% 5)::int for 1)
                   ELSE base || ' on PC-' || g END,
              '', 'closed', o, o + interval '4 hours', 1 + g %% 4,
              CASE WHEN burst THEN 'Network' ELSE (%(categories)s::text[])[1 + (ci + s) %% 6] END,
              CASE WHEN burst THEN 'Outage' ELSE 'Symptom ' || s END, 0, '', false, '', '',
              CASE WHEN kind = 1 THEN NULL ELSE %(s0)s + ci %% 30 END,
              CASE WHEN kind = 1 THEN NULL ELSE %(c0)s + ci END
            FROM (
              SELECT g, ci, s, v, kind, burst,
                     CASE WHEN burst
                       THEN timestamptz '2024-01-01 10:00' + (g %% 50) * interval '7 days'
                            + (abs(hashtext('m' || g)) %% 90) * interval '1 minute'
                       ELSE timestamptz '2024-01-01'
                            + (abs(hashtext('t' || g)) %% 31622400) * interval '1 second'
                     END AS o,
                     (%(things)s::text[])[1 + ci %% 40] AS thing,
                     (%(symptoms)s::text[])[1 + s] AS symptom,
                     (%(things)s::text[])[1 + ci %% 40] || ' ' || (%(symptoms)s::text[])[1 + s] AS base
              FROM (
                SELECT g, ci, s, v, kind, kind = 1 AND v < 5 AS burst
                FROM (
                  SELECT g,
                         abs(hashtext('c' || g)) %% 300 AS ci,
                         floor(20 * power((abs(hashtext('s' || g)) %% 1000) / 1000.0, 2))::int AS s,
                         abs(hashtext('v' || g)) %% 100 AS v,
                         CASE WHEN abs(hashtext('k' || g)) %% 100 < 10 THEN 1
                              WHEN abs(hashtext('k' || g)) %% 100 < 15 THEN 2 ELSE 0 END AS kind
                  FROM generate_series(1::bigint, %(rows)s) g
                ) AS r
              ) AS b
            ) AS s
            """,
            {
                "source": SOURCE,
                "unique_from": unique_from,
                "categories": CATEGORIES,
                "things": THINGS,
                "symptoms": SYMPTOMS,
                "s0": s0,
                "c0": c0,
                "rows": rows,
            },
        )
    _common.vacuum_analyze("incidents_incident")


def _in_outage(moment: Any) -> bool:
    """Within one of the outages made up: Mondays from 10:00 to 11:30 UTC, 2024."""
    import datetime as dt

    since = moment - dt.datetime(2024, 1, 1, 10, 0, tzinfo=dt.UTC)
    return since % dt.timedelta(days=7) < dt.timedelta(minutes=90)


def measure() -> None:
    import collections
    import datetime as dt

    from tikting.incidents.models import Incident
    from tikting.signals.detectors import recurring_incidents as R
    from tikting.signals.proposals import Window

    window = Window(dt.datetime(2024, 1, 1, tzinfo=dt.UTC), dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    incidents = Incident.objects.filter(opened_at__gte=window.start, opened_at__lt=window.end).count()
    before = resource.getrusage(resource.RUSAGE_SELF)
    t = time.perf_counter()
    proposals = R.detect(window, thresholds=dict(R.THRESHOLDS), progress=lambda done, total: None)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    rules = collections.Counter(p.figures["rule"] for p in proposals)
    kinds = collections.Counter(p.proposes for p in proposals)
    grouped = sum(int(p.magnitude) for p in proposals)
    bursts = [p for p in proposals if p.figures["rule"] == "burst"]
    outages = sum(
        1
        for p in bursts
        if p.figures["category"] == "Network"
        and _in_outage(dt.datetime.fromisoformat(p.figures["first_opened"]))
    )
    print(f"incidents in the window: {incidents:,}")
    print(f"proposals: {len(proposals):,} ({dict(rules)}; {dict(kinds)}); incidents in them: {grouped:,}")
    print(f"largest group: {max((int(p.magnitude) for p in proposals), default=0):,} incidents")
    print(f"bursts: {outages} of the 50 outages made up, {len(bursts) - outages} others (by chance)")
    print(f"detect(): wall {wall:.1f} s, CPU of this process {cpu:.1f} s")
    print(f"peak RSS: {after.ru_maxrss / 1024:.0f} MB (before detect(): {before.ru_maxrss / 1024:.0f} MB)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--unique-share", type=float, default=0.1, help="Share of texts with a token of their own."
    )
    parser.add_argument("--keep", action="store_true", help="Keep the database if it is seeded already.")
    parser.add_argument("--database-url", help="PostgreSQL database to use (dropped unless --keep!).")
    parser.add_argument(
        "--no-pin", action="store_true", help="Do not pin the detector's process to one core."
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--phase", choices=("seed", "measure"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.child:
        url = args.database_url or _common.DEFAULT_PG.format(name="tk_bench_recurring")
        if not args.keep:
            _common.fresh_database(url)
        extra = ["--rows", str(args.rows), "--unique-share", str(args.unique_share)]
        if _common.run_child(__file__, url, [*extra, "--phase", "seed"]) != 0:
            sys.exit(1)
        env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "tikting.settings"}
        env.setdefault("TIKTING_LOG_LEVEL", "WARNING")
        pin = ["taskset", "-c", "0"] if shutil.which("taskset") and not args.no_pin else []
        command = [*pin, sys.executable, __file__, "--child", *extra, "--phase", "measure"]
        sys.exit(subprocess.call(command, env=env, cwd=_common.ROOT))
    if args.phase == "seed":
        _common.setup_django()
        from django.db import connection

        from tikting.incidents.models import Incident

        assert connection.vendor == "postgresql", "the benchmark is for PostgreSQL"
        if not Incident.objects.filter(source=SOURCE).exists():
            t = time.perf_counter()
            seed(args.rows, args.unique_share)
            print(f"seeded {args.rows:,} incidents in {time.perf_counter() - t:.1f} s")
        return
    _common.setup_django(migrate=False)
    measure()


if __name__ == "__main__":
    main()
