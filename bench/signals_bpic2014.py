"""Benchmark: every detector's detect() over the BPI Challenge 2014 import (target: each under 30 s).

    .venv/bin/python bench/signals_bpic2014.py                                   # imports first (~1 min)
    TIKTING_BPIC_DB=/tmp/bpic.sqlite3 .venv/bin/python bench/signals_bpic2014.py   # reuse an import
    TIKTING_BPIC_DB=postgres://postgres@127.0.0.1:5432/bpic .venv/bin/python bench/signals_bpic2014.py
    .venv/bin/python bench/signals_bpic2014.py --keep /tmp/bpic.sqlite3          # import once, keep it

`TIKTING_BPIC_DB` names a database (a SQLite path or a DATABASE_URL) that already holds
`tikting import bpic2014` of ../shared/data/bpic2014; it is migrated (a kept import may predate
newer tables) and otherwise only read (detectors never write).
Without it, a fresh SQLite file (temporary, or `--keep PATH`) is migrated, given five SLA
definitions (P1, P2 24×7; P3-P5 business hours: as bench/import_bpic2014.py --with-slas, so that
the incidents have SLA verdicts for the SLA breach detector) and the whole data set is imported.

The detectors timed: every module in settings.TIKTING_SIGNALS_DETECTORS, and this project's
detector modules not (yet) listed there. Each runs with its default thresholds over one window:
by default the data set's whole span (its first record to the day after its last: the most every
detector can read); `--days N` for the last N days of it instead (the scheduled run reads 90).
Printed per detector: wall and CPU seconds of detect(), the proposals, and the process's peak
memory after it; then the sum.
"""

from __future__ import annotations

import argparse
import importlib
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

DEFAULT_DATA = _common.ROOT.parent / "shared" / "data" / "bpic2014"
TARGET_SECONDS = 30.0
OURS = [
    "tikting.signals.detectors.changes",
    "tikting.signals.detectors.sla_breaches",
    "tikting.signals.detectors.csat",
    "tikting.signals.detectors.service_requests",
    "tikting.signals.detectors.knowledge",
]
SLAS = {1: (30, 240, "24x7"), 2: (60, 480, "24x7"), 3: (240, 1800, "business"), 4: (480, 3000, "business")}
SLAS[5] = (None, 6000, "business")


def import_all(data: Path) -> None:
    from tikting.imports.bpic2014 import import_bpic2014
    from tikting.slas.models import SLADefinition

    for priority, (response, resolution, calendar) in SLAS.items():
        SLADefinition.objects.get_or_create(
            name=f"P{priority}",
            priority=priority,
            defaults={"response_minutes": response, "resolution_minutes": resolution, "calendar": calendar},
        )
    started = time.perf_counter()
    report = import_bpic2014(data)
    print(
        f"imported {data} in {time.perf_counter() - started:.1f} s ({report.error_count} errors)", flush=True
    )


def modules() -> list[str]:
    from django.conf import settings

    listed = list(getattr(settings, "TIKTING_SIGNALS_DETECTORS", []))
    return listed + [path for path in OURS if path not in listed]


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(args: argparse.Namespace) -> None:
    _common.setup_django(migrate=True)  # a kept import may predate newer tables (the intake's)
    import datetime as dt

    from django.db import connection
    from django.db.models import Max, Min

    from tikting.changes.models import Change
    from tikting.incidents.models import Incident, Interaction
    from tikting.signals.proposals import Window

    if args.do_import:
        import_all(args.data)
    lo = min(
        filter(None, (m.objects.aggregate(v=Min("opened_at"))["v"] for m in (Incident, Interaction, Change)))
    )
    hi = max(
        filter(None, (m.objects.aggregate(v=Max("opened_at"))["v"] for m in (Incident, Interaction, Change)))
    )
    end = hi + dt.timedelta(days=1)
    window = Window(end - dt.timedelta(days=args.days) if args.days else lo, end)
    print(
        f"{connection.vendor}: {Incident.objects.count():,} incidents, {Interaction.objects.count():,} "
        f"interactions, {Change.objects.count():,} changes; window {window.start:%Y-%m-%d} to "
        f"{window.end:%Y-%m-%d}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs",
        flush=True,
    )
    total = 0.0
    slow = 0
    for path in modules():
        module = importlib.import_module(path)
        started, cpu = time.perf_counter(), time.process_time()
        try:
            proposals = module.detect(
                window, thresholds=dict(module.THRESHOLDS), progress=lambda done, all_: None
            )
        except Exception as exc:  # noqa: BLE001 - report and go on with the next detector
            print(f"  {module.NAME:<22} failed: {type(exc).__name__}: {exc}", flush=True)
            slow += 1
            continue
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        total += seconds
        verdict = "ok" if seconds < TARGET_SECONDS else "SLOW"
        slow += verdict != "ok"
        print(
            f"  {module.NAME:<22} {seconds:6.2f} s wall {cpu:6.2f} s CPU  {len(proposals):4} proposals  "
            f"peak {peak_mb():5.0f} MB  [{verdict}]",
            flush=True,
        )
    print(f"  {'all':<22} {total:6.2f} s wall", flush=True)
    sys.exit(1 if slow else 0)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument(
        "--days", type=int, default=0, help="the last N days of the data (default: all of it)"
    )
    parser.add_argument(
        "--keep", type=Path, help="import into this SQLite file (kept) when TIKTING_BPIC_DB is unset"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--import", dest="do_import", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    extra = ["--data", str(args.data), "--days", str(args.days)]
    url, needs_import = _common.bpic_database(args.data, args.keep)
    if needs_import:
        extra.append("--import")
    sys.exit(_common.run_child(__file__, url, extra))


if __name__ == "__main__":
    main()
