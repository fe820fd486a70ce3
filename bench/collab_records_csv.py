"""Record list CSV and bulk actions (docs/collaboration.md): time and memory at scale.

Builds `--incidents` incidents (default 100,000; services, groups and priorities spread over
them), then, signed in as a viewer through django.test.Client:

- streams `/records/incident/export.csv` (every incident) and a filtered one, consuming the
  response: wall time, rows, bytes, and the peak Python memory allocated while streaming
  (tracemalloc; the database driver's own buffers are not counted);
- bulk-assigns a group to 20 and to 200 incidents through `/records/incident/bulk/` (each record
  its own transaction and audit row): wall time and queries per record.

    .venv/bin/python bench/collab_records_csv.py --database-url sqlite:////tmp/collab/b.sqlite3
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402


def build(count: int) -> None:
    from django.utils import timezone

    from tikting.accounts.models import Team
    from tikting.cmdb.models import Service
    from tikting.incidents.models import Incident

    services = [Service.objects.create(name=f"Service {n}") for n in range(8)]
    groups = [Team.objects.create(name=f"Group {n}") for n in range(6)]
    start = timezone.now() - dt.timedelta(days=365)
    batch = []
    for n in range(count):
        opened = start + dt.timedelta(minutes=5 * n)
        batch.append(
            Incident(
                number=f"INC{n:08}",
                short_description=f"Mail queue stalls on node {n % 97}",
                opened_at=opened,
                resolved_at=opened + dt.timedelta(hours=1 + n % 30),
                status="resolved",
                priority=1 + n % 4,
                service=services[n % 8],
                assignment_group=groups[n % 6],
            )
        )
        if len(batch) == 5000:
            Incident.objects.bulk_create(batch)
            batch = []
    Incident.objects.bulk_create(batch)


def stream(client, url: str) -> tuple[float, int, int, float]:
    tracemalloc.start()
    start = time.perf_counter()
    response = client.get(url)
    size = rows = 0
    for chunk in response.streaming_content:
        size += len(chunk)
        rows += chunk.count(b"\n")
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] / 1024 / 1024
    tracemalloc.stop()
    return seconds, rows - 1, size, peak


def child(args: argparse.Namespace) -> None:
    _common.setup_django()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from tikting.accounts.models import Team, User
    from tikting.incidents.models import Incident

    start = time.perf_counter()
    build(args.incidents)
    print(f"{connection.vendor}: {args.incidents:,} incidents (built in {time.perf_counter() - start:.1f} s)")
    viewer = User.objects.create_user("vera", role="viewer")
    client = Client()
    client.force_login(viewer)
    client.get("/records/incident/export.csv?priority=9")  # warm-up: URLconf, API schemas (a 400)
    for label, url in (
        ("CSV, every incident", "/records/incident/export.csv"),
        ("CSV, priority 1", "/records/incident/export.csv?priority=1"),
    ):
        seconds, rows, size, peak = stream(client, url)
        print(
            f"  {label}: {rows:,} rows, {size / 1024 / 1024:.1f} MiB in {seconds:.2f} s "
            f"({rows / seconds:,.0f} rows/s); peak Python memory while streaming {peak:.1f} MiB"
        )
    contributor = User.objects.create_user("carl", role="contributor")
    client.force_login(contributor)
    target = Team.objects.create(name="Night shift")
    for size in (20, 200):
        ids = list(Incident.objects.order_by("pk").values_list("pk", flat=True)[:size])
        with CaptureQueriesContext(connection) as queries:
            start = time.perf_counter()
            response = client.post(
                "/records/incident/bulk/",
                {
                    "action": "assignment_group",
                    "assignment_group": str(target.pk),
                    "ids": [str(i) for i in ids],
                },
            )
            seconds = time.perf_counter() - start
        assert response.status_code == 200, response.status_code
        done = Incident.objects.filter(pk__in=ids, assignment_group=target).count()
        print(
            f"  bulk assign {size} incidents: {done} done in {seconds:.2f} s "
            f"({1000 * seconds / size:.1f} ms and {len(queries) / size:.1f} queries per record)"
        )
        target = Team.objects.create(name=f"Day shift {size}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--database-url", action="append", help="Database to measure (repeatable).")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    _common.run_each_database(args, "tk_bench_collab", __file__, ["--incidents", str(args.incidents)])


if __name__ == "__main__":
    main()
