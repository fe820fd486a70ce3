"""Benchmark: import of the full BPI Challenge 2014 data set on SQLite and PostgreSQL.

    .venv/bin/python bench/import_bpic2014.py                    # both databases
    .venv/bin/python bench/import_bpic2014.py --data /work/shared/data/bpic2014
    .venv/bin/python bench/import_bpic2014.py --database-url postgres://postgres@127.0.0.1:5432/tk_bench_bpic

Each database is fresh (a temporary SQLite file; PostgreSQL database `tk_bench_bpic` dropped and
created again), migrated from scratch and measured in its own process. Prints, per database: the
first import (wall seconds, and the CPU seconds of this process: on a busy machine the wall time
says more about the other load than about the import; rows per kind), a re-import (every row
unchanged) and the process's peak RSS.

The yardstick is measured in the same run, just before and just after each database's import
(bench/raw_insert.py: a plain `executemany` of 690,000 nine-column rows into a fresh SQLite file,
in its own process); the ratio import seconds / raw seconds (the mean of the two raw runs) is
printed for the import and the re-import. Target (issue 16): the import within 10× the raw insert
on SQLite and on PostgreSQL, the re-import faster than the import, under 500 MB peak memory.

The import includes the SLA pass (apply_slas over the source's incidents). With no SLA definition
it is one UPDATE; `--with-slas` first creates five general definitions (P1, P2 24×7; P3–P5
business hours), so that the figures include the full computation.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402
import raw_insert  # noqa: E402

DEFAULT_DATA = _common.ROOT.parent / "shared" / "data" / "bpic2014"
RATIO = 10.0  # import seconds / raw executemany seconds
MEMORY_MB = 500
# --with-slas: priority → (response minutes, resolution minutes, calendar)
SLAS = {
    1: (30, 4 * 60, "24x7"),
    2: (60, 8 * 60, "24x7"),
    3: (4 * 60, 3 * 10 * 60, "business"),
    4: (8 * 60, 5 * 10 * 60, "business"),
    5: (None, 10 * 10 * 60, "business"),
}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def child(args: argparse.Namespace) -> None:
    _common.setup_django()
    from django.db import connection

    from tikting.imports.bpic2014 import import_bpic2014

    vendor = connection.vendor
    if args.with_slas:
        from tikting.slas.models import SLADefinition

        for priority, (response, resolution, calendar) in SLAS.items():
            SLADefinition.objects.create(
                name=f"P{priority}",
                priority=priority,
                response_minutes=response,
                resolution_minutes=resolution,
                calendar=calendar,
            )
        print(f"{vendor}: with {len(SLAS)} SLA definitions", flush=True)
    rss_before = peak_rss_mb()
    print(
        f"{vendor}: load average before the run {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True
    )
    raw_before = raw_insert.measure()
    print(f"{vendor}: raw executemany of {raw_insert.ROWS:,} rows (SQLite): {raw_before:.2f} s", flush=True)
    results: dict[str, tuple[float, float]] = {}
    for label in ("import", "re-import"):
        start, cpu = time.perf_counter(), time.process_time()
        report = import_bpic2014(args.data)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        results[label] = (seconds, cpu)
        print(
            f"{vendor}: {label:<10} {seconds:6.1f} s wall, {cpu:5.1f} s CPU in this process  "
            f"errors: {report.error_count}",
            flush=True,
        )
        for kind, counts in report.counts.items():
            print(
                f"    {kind:<12} created {counts.created:>8,}  updated {counts.updated:>6,}  "
                f"unchanged {counts.unchanged:>8,}  failed {counts.failed:>4,}",
                flush=True,
            )
        for error in report.errors[:5]:
            print(f"    ! {error}")
    raw_after = raw_insert.measure()
    raw = (raw_before + raw_after) / 2
    print(
        f"{vendor}: raw executemany again: {raw_after:.2f} s; yardstick (mean) {raw:.2f} s; "
        f"load average now {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    for label, (seconds, _cpu) in results.items():
        ratio = seconds / raw
        verdict = "ok" if ratio <= RATIO else "SLOW"
        if label == "re-import":
            verdict = "ok" if seconds < results["import"][0] else "SLOWER THAN THE IMPORT"
        print(
            f"{vendor}: {label:<10} {ratio:5.1f}× the raw executemany  (target ≤ {RATIO:.0f}×)  [{verdict}]"
        )
    peak = peak_rss_mb()
    from tikting.imports.piped import child_peak_rss_kib

    reader = child_peak_rss_kib() / 1024
    print(
        f"{vendor}: peak RSS {peak:.0f} MB (after Django set-up and migrate: {rss_before:.0f} MB); "
        f"reading process {reader:.0f} MB (counting the pages it shares with the importer)  "
        f"[{'ok' if peak < MEMORY_MB and reader < MEMORY_MB else 'OVER'}]",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="Folder with the data set's zips or CSVs.")
    parser.add_argument("--database-url", action="append", help="Database to measure (repeatable).")
    parser.add_argument("--with-slas", action="store_true", help="Create five SLA definitions first.")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if not Path(args.data).is_dir():
        print(f"No data at {args.data}")
        sys.exit(1)
    extra = ["--data", args.data, *(["--with-slas"] if args.with_slas else [])]
    _common.run_each_database(args, "tk_bench_bpic", __file__, extra)


if __name__ == "__main__":
    main()
