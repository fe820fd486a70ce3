"""Benchmark: every configured detector over the demo history (`tikting signals run`), target < 10 s.

    .venv/bin/python bench/signals_demo.py                  # a temporary SQLite file and PostgreSQL
    .venv/bin/python bench/signals_demo.py --database-url sqlite:////tmp/demo.sqlite3

For each database (fresh, migrated from scratch, in its own process): builds the demo organisation
and its year of history (`tikting demo`), then runs `tikting signals run` twice — the first run
raises the candidates, the second finds the same patterns again and merges them into the open
candidates (the scheduled run's usual case) — and prints each detector's time, its proposals and
raised / merged / suppressed, and the wall time of the whole command. The window is the default one
(the last TIKTING_SIGNALS_WINDOW_DAYS days); detectors that read a longer history of their own say
so in docs/signals.md.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

TARGET_SECONDS = 10.0


def child() -> None:
    _common.setup_django()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    vendor = connection.vendor
    start = time.perf_counter()
    call_command("demo", stdout=io.StringIO())
    print(f"{vendor}: demo built in {time.perf_counter() - start:.1f} s", flush=True)
    from tikting.incidents.models import Incident

    print(f"{vendor}: {Incident.objects.count():,} incidents in the demo history", flush=True)
    print(
        f"{vendor}: detectors {', '.join(p.rsplit('.', 1)[-1] for p in settings.TIKTING_SIGNALS_DETECTORS)}"
    )
    for label in ("first run", "second run"):
        out = io.StringIO()
        start = time.perf_counter()
        with contextlib.suppress(SystemExit):  # a failed detector: reported below with the others
            call_command("signals", "run", "--no-progress", "--format", "json", stdout=out)
        seconds = time.perf_counter() - start
        verdict = "ok" if seconds < TARGET_SECONDS else "SLOW"
        target = f"target {TARGET_SECONDS:g} s"
        print(f"{vendor}: {label:<10} {seconds:6.2f} s for every detector  [{verdict}, {target}]")
        for run in json.loads(out.getvalue())["runs"]:
            status = (
                "" if run["status"] == "succeeded" else f"  FAILED: {run['error'].strip().splitlines()[-1]}"
            )
            print(
                f"    {run['detector']:<20} {run['seconds']:6.2f} s  {run['proposals']:>4} proposals  "
                f"raised {run['raised']:>4}  merged {run['merged']:>4}  "
                f"suppressed {run['suppressed']:>4}{status}",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", action="append", help="Database to measure (repeatable).")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child()
        return
    _common.run_each_database(args, "tk_bench_signals", __file__, [])


if __name__ == "__main__":
    main()
