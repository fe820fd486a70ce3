"""Benchmark: `tikting register import` of a 10,000-row CSV on SQLite and PostgreSQL.

    .venv/bin/python bench/import_register.py                      # both databases
    .venv/bin/python bench/import_register.py --rows 50000
    .venv/bin/python bench/import_register.py --database-url postgres://postgres@127.0.0.1:5432/tk_bench_import

Prints, per database: the first import (every row created), a re-import of the same file (every
row unchanged), and a re-import with 10 % of the rows edited (the update path). Target: 10,000
rows in under 10 s. Each database is fresh (migrated from scratch) and measured in its own process.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

TARGET_SECONDS = 10.0
PRACTICES = ["incident", "problem", "change", "request", "knowledge", "asset", "sla", "service_desk"]
CHANNELS = [
    "staff_feedback",
    "audit_finding",
    "post_incident_review",
    "problem",
    "change_review",
    "sla_breach",
]
STATUSES = ["new"] * 4 + ["vision", "current_state", "target_state", "plan", "action", "evaluation", "closed"]
SERVICES = [
    "E-mail",
    "Service Desk portal",
    "Network",
    "ERP",
    "HR system",
    "VPN",
    "Laptops & workstations",
    "CMDB",
]
OWNERS = ["owner", "owner2", "manager", ""]


def generate(path: Path, rows: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    today = dt.date.today()
    fields = [
        "external_id",
        "title",
        "description",
        "practice",
        "service",
        "justification_type",
        "impact",
        "effort",
        "owner",
        "target_date",
        "status",
        "source_channel",
        "source_reference",
        "identified_at",
        "closed_at",
        "outcome",
        "benefit_category",
        "indicators",
    ]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for n in range(1, rows + 1):
            status = rng.choice(STATUSES)
            identified = dt.datetime.now(dt.UTC) - dt.timedelta(days=rng.randint(1, 365), minutes=n)
            indicators = ""
            if n % 5 == 0:
                indicators = json.dumps(
                    [
                        {
                            "name": "MTTR",
                            "unit": "h",
                            "direction": "lower",
                            "baseline_value": "9.5",
                            "target_value": "6",
                            "measurements": [
                                {
                                    "value": str(round(rng.uniform(5, 10), 1)),
                                    "measured_at": f"{today.isoformat()}T08:00:00+00:00",
                                }
                            ],
                        }
                    ]
                )
            writer.writerow(
                {
                    "external_id": f"SHEET-{n:06d}",
                    "title": f"Improvement opportunity {n}: {rng.choice(['faster', 'safer'])} "
                    f"{rng.choice(PRACTICES)}",
                    "description": "Imported from the practice spreadsheet.\nSecond line of notes.",
                    "practice": rng.choice(PRACTICES),
                    "service": rng.choice(SERVICES),
                    "justification_type": rng.choice(["business", "operational"]),
                    "impact": rng.randint(1, 5),
                    "effort": rng.randint(1, 5),
                    "owner": rng.choice(OWNERS),
                    "target_date": (today + dt.timedelta(days=rng.randint(-30, 200))).isoformat(),
                    "status": status,
                    "source_channel": rng.choice(CHANNELS),
                    "source_reference": f"INC-{rng.randint(1000, 99999)}",
                    "identified_at": identified.isoformat(),
                    "closed_at": (identified + dt.timedelta(days=30)).isoformat()
                    if status == "closed"
                    else "",
                    "outcome": "successful" if status == "closed" else "",
                    "benefit_category": "time_saved" if status == "closed" else "",
                    "indicators": indicators,
                }
            )


def edit(source: Path, target: Path, share: float = 0.1) -> int:
    """A copy with the title of every 1/share-th row changed."""
    step = round(1 / share)
    changed = 0
    with (
        source.open(newline="", encoding="utf-8") as src,
        target.open("w", newline="", encoding="utf-8") as dst,
    ):
        reader = csv.DictReader(src)
        writer = csv.DictWriter(dst, fieldnames=reader.fieldnames)
        writer.writeheader()
        for n, row in enumerate(reader, start=1):
            if n % step == 0:
                row["title"] += " (revised)"
                changed += 1
            writer.writerow(row)
    return changed


def child(args: argparse.Namespace) -> None:
    _common.setup_django()
    from django.core.management import call_command
    from django.db import connection

    from tikting.accounts.models import Role, User
    from tikting.cmdb.models import Service
    from tikting.improvement.models import Item

    for username, role in (("owner", Role.OWNER), ("owner2", Role.OWNER), ("manager", Role.MANAGER)):
        User.objects.create(username=username, role=role)
    for name in SERVICES:
        Service.objects.create(name=name)

    def timed(label: str, path: str) -> None:
        out = io.StringIO()
        start = time.perf_counter()
        call_command(
            "register", "import", path, "--as", "manager", "--no-progress", stdout=out, stderr=io.StringIO()
        )
        seconds = time.perf_counter() - start
        verdict = "ok" if seconds < TARGET_SECONDS * args.rows / 10_000 else "SLOW"
        print(
            f"  {label:<26} {seconds:6.2f} s  {args.rows / seconds:8,.0f} rows/s  [{verdict}]  "
            f"{out.getvalue().strip()}",
            flush=True,
        )

    print(f"{connection.vendor}: {args.rows:,} rows", flush=True)
    timed("import (create)", args.csv)
    assert Item.objects.count() == args.rows, Item.objects.count()
    timed("re-import (unchanged)", args.csv)
    timed("re-import (10 % edited)", args.edited)
    assert Item.objects.count() == args.rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--database-url", action="append", help="Database to measure (repeatable).")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--csv", help=argparse.SUPPRESS)
    parser.add_argument("--edited", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    work = Path(tempfile.mkdtemp(prefix="tk_bench_import_"))
    source, edited = work / "register.csv", work / "register-edited.csv"
    start = time.perf_counter()
    generate(source, args.rows)
    edit(source, edited)
    print(
        f"Generated {args.rows:,} rows ({source.stat().st_size / 1e6:.1f} MB) "
        f"in {time.perf_counter() - start:.1f} s"
    )
    _common.run_each_database(
        args,
        "tk_bench_import",
        __file__,
        ["--rows", str(args.rows), "--csv", str(source), "--edited", str(edited)],
    )


if __name__ == "__main__":
    main()
