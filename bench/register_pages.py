"""Benchmark: server-side rendering time and query count of the register's pages with 10,000 items.

    .venv/bin/python bench/register_pages.py                  # SQLite temp file and PostgreSQL
    .venv/bin/python bench/register_pages.py --runs 20 --items 20000
    .venv/bin/python bench/register_pages.py --database-url postgres://postgres@127.0.0.1:5432/tk_bench

For each database (a fresh one, migrated from scratch, in its own process): bulk-creates the
register (indicators with measurements on one item in five, actions on one in four), signs in an
improvement manager with django.test.Client, and renders each page --runs times. Prints the median
in ms and the query count; a page that answers 404 or 500 (not built yet) is reported and skipped.
Target: every page under 150 ms, and a query count that does not grow with the number of items.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import time
import traceback
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

TARGET_MS = 150
PAGES = [
    ("register, first page", "/register/"),
    ("register, filtered", "/register/?status=open&practice=incident&quadrant=quick_win"),
    ("register, sorted", "/register/?sort=-target_date"),
    ("register, page 20", "/register/?page=20"),
    ("register, search", "/register/?q=network"),
    ("board", "/register/board/"),
    ("matrix", "/register/matrix/"),
    ("my items", "/register/mine/"),
    ("governance agenda", "/governance/agenda/"),
]
PRACTICES = ["incident", "problem", "change", "request", "knowledge", "asset", "sla", "service_desk"]
CHANNELS = [
    "staff_feedback",
    "audit_finding",
    "post_incident_review",
    "problem",
    "change_review",
    "sla_breach",
]
STATUSES = (
    ["new"] * 3
    + ["deferred", "rejected", "vision", "current_state", "target_state", "plan"]
    + ["action"] * 2
    + ["evaluation", "momentum", "closed", "closed", "closed"]
)
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


def build(items: int, seed: int = 1) -> None:
    """The register, written with bulk_create (the services would take minutes for 10,000 items)."""
    from django.db import transaction
    from django.utils import timezone

    from tikting.accounts.models import Role, User
    from tikting.cmdb.models import Service
    from tikting.improvement.models import Action, Indicator, Item, Measurement

    rng = random.Random(seed)
    now = timezone.now()
    today = timezone.localdate()
    with transaction.atomic():
        users = [User.objects.create(username="manager", role=Role.MANAGER)]
        users += [User.objects.create(username=f"owner{n}", role=Role.OWNER) for n in range(1, 21)]
        services = [Service.objects.create(name=name) for name in SERVICES]
        batch = []
        for n in range(1, items + 1):
            status = rng.choice(STATUSES)
            identified = now - dt.timedelta(days=rng.randint(1, 365), minutes=n)
            item = Item(
                title=f"Improve {rng.choice(PRACTICES)} on {rng.choice(SERVICES)} #{n}",
                description="Benchmark item.",
                practice=rng.choice(PRACTICES),
                service=rng.choice(services),
                impact=rng.randint(1, 5),
                effort=rng.randint(1, 5),
                owner=rng.choice(users) if status not in {"new", "rejected"} else None,
                identified_at=identified,
                last_activity_at=identified + dt.timedelta(days=rng.randint(0, 20)),
                target_date=today + dt.timedelta(days=rng.randint(-40, 200)),
                status=status,
                blocked=status == "action" and rng.random() < 0.1,
                source_channel=rng.choice(CHANNELS),
                rank=n if n <= 50 else None,
                closed_at=identified + dt.timedelta(days=30) if status == "closed" else None,
                outcome="successful" if status == "closed" else "",
                revisit_date=today + dt.timedelta(days=30) if status == "deferred" else None,
            )
            if item.blocked:
                item.blocker = "Waiting for a supplier."
            item.derive()
            batch.append(item)
        Item.objects.bulk_create(batch, batch_size=1000)
        indicators, actions = [], []
        for item in Item.objects.only("id", "owner_id").iterator():
            if item.pk % 5 == 0:
                indicators.append(
                    Indicator(
                        item=item,
                        name="MTTR",
                        unit="h",
                        direction="lower",
                        baseline_value=Decimal("9.5"),
                        target_value=Decimal("6"),
                    )
                )
            if item.pk % 4 == 0:
                actions.append(
                    Action(
                        item=item,
                        title="Update the runbook",
                        owner_id=item.owner_id,
                        due_date=today + dt.timedelta(days=item.pk % 60 - 20),
                    )
                )
        Indicator.objects.bulk_create(indicators, batch_size=1000)
        Action.objects.bulk_create(actions, batch_size=1000)
        measurements = [
            Measurement(indicator=ind, value=Decimal(str(8 - k)), measured_at=now - dt.timedelta(days=30 * k))
            for ind in indicators
            for k in range(3)
        ]
        Measurement.objects.bulk_create(measurements, batch_size=2000)
    print(
        f"  built {items:,} items, {len(indicators):,} indicators, {len(measurements):,} measurements,"
        f" {len(actions):,} actions",
        flush=True,
    )


def measure(runs: int) -> int:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from tikting.accounts.models import User

    client = Client()
    client.force_login(User.objects.get(username="manager"))
    slow = 0
    for label, url in PAGES:
        try:
            response = client.get(url)  # warm-up: template loading, caches
        except Exception as exc:  # noqa: BLE001 - a page being built may raise: report it, go on
            print(f"  {label:<22} {url:<62} ERROR {type(exc).__name__}: {exc}".rstrip()[:200], flush=True)
            traceback.print_exc(limit=1, file=sys.stdout)
            continue
        if response.status_code != 200:
            print(f"  {label:<22} {url:<62} HTTP {response.status_code} (skipped)", flush=True)
            continue
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            client.get(url)
            times.append((time.perf_counter() - start) * 1000)
        with CaptureQueriesContext(connection) as queries:
            client.get(url)
        median = statistics.median(times)
        verdict = "ok" if median < TARGET_MS else "SLOW"
        slow += verdict == "SLOW"
        print(
            f"  {label:<22} {url:<62} {median:7.1f} ms  (min {min(times):6.1f})  "
            f"{len(queries):3d} queries  {len(response.content) / 1024:6.0f} kB  [{verdict}]",
            flush=True,
        )
    return slow


def child(args: argparse.Namespace) -> None:
    _common.setup_django()
    from django.db import connection

    print(f"{connection.vendor}: {args.items:,} items, median of {args.runs} runs", flush=True)
    start = time.perf_counter()
    build(args.items)
    print(f"  (database built in {time.perf_counter() - start:.1f} s)", flush=True)
    measure(args.runs)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--database-url", action="append", help="Database to measure (repeatable).")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    _common.run_each_database(
        args, "tk_bench", __file__, ["--items", str(args.items), "--runs", str(args.runs)]
    )


if __name__ == "__main__":
    main()
