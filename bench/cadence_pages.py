"""Benchmark: the cadence pages with 10,000 register items and two years of sprints, and the PDF
outcomes report for a quarter with 200 closed items.

    .venv/bin/python bench/cadence_pages.py                  # SQLite temp file and PostgreSQL
    .venv/bin/python bench/cadence_pages.py --database-url sqlite:////tmp/b.sqlite3

For each database (fresh, migrated, in its own process): the register of bench/register_pages.py
(10,000 items), then 5 teams with a sprint every two weeks for two years (4 cards each, 10 time
logs a card, reviewed), 200 items closed in last quarter and 100 in this one with indicators and
deltas, and 20 of the blocked items escalated. Signs in an improvement manager with
django.test.Client and renders each page --runs times (median, query count). Then writes the PDF
report of last quarter and times it.
Targets: pages under 150 ms; the PDF under 10 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402
import register_pages  # noqa: E402

PDF_TARGET_S = 10
TEAMS = 5
CLOSED_IN_QUARTER = 200
CLOSED_THIS_QUARTER = 100  # the leadership view's and the default outcomes page's quarter
ESCALATED = 20


def build_cadence() -> str:
    """Sprints for two years and 200 items closed last quarter; returns that quarter's label."""
    from django.db import transaction
    from django.utils import timezone

    from tikting.accounts.models import Role, Team, User
    from tikting.cadence.leadership import quarter_label, quarter_of
    from tikting.cadence.models import Column, Sprint, SprintItem, SprintStatus, TimeLog
    from tikting.improvement.models import Indicator, Item

    today = timezone.localdate()
    start_q, _end_q = quarter_of(quarter_of(today)[0] - dt.timedelta(days=1))
    with transaction.atomic():
        teams = [Team.objects.create(name=f"Team {n}") for n in range(1, TEAMS + 1)]
        owners = list(User.objects.filter(role=Role.OWNER))
        for n, owner in enumerate(owners):
            owner.team = teams[n % TEAMS]
        User.objects.bulk_update(owners, ["team"])
        pool = list(
            Item.objects.filter(status__in=["plan", "action", "evaluation"]).values_list("pk", flat=True)
        )
        sprints, cards, logs = [], [], []
        first = today - dt.timedelta(weeks=104)
        for team in teams:
            for k in range(52):
                begin = first + dt.timedelta(weeks=2 * k)
                sprints.append(
                    Sprint(
                        team=team,
                        name=f"{team.name} sprint {k + 1}",
                        goal="Benchmark",
                        start=begin,
                        end=begin + dt.timedelta(days=13),
                        status=SprintStatus.CLOSED
                        if begin + dt.timedelta(days=13) < today
                        else SprintStatus.ACTIVE,
                        what_changed="Benchmark",
                    )
                )
        Sprint.objects.bulk_create(sprints, batch_size=500)
        for n, sprint in enumerate(Sprint.objects.all().order_by("pk")):
            for c in range(4):
                item_id = pool[(n * 4 + c) % len(pool)]
                cards.append(
                    SprintItem(
                        sprint=sprint,
                        item_id=item_id,
                        column=Column.DONE if c < 2 else Column.DOING,
                        position=c + 1,
                        planned_hours=Decimal(6),
                    )
                )
        SprintItem.objects.bulk_create(cards, batch_size=1000)
        members = {t.pk: [o for o in owners if o.team_id == t.pk] for t in teams}
        for card in SprintItem.objects.select_related("sprint").iterator():
            people = members[card.sprint.team_id]
            for d in range(10):
                logs.append(
                    TimeLog(
                        card=card,
                        user=people[d % len(people)],
                        day=card.sprint.start + dt.timedelta(days=d),
                        hours=Decimal("1.5"),
                    )
                )
        TimeLog.objects.bulk_create(logs, batch_size=2000)
        # Exactly CLOSED_IN_QUARTER items closed in that quarter: the others closed a year before.
        Item.objects.filter(status="closed").update(closed_at=timezone.now() - dt.timedelta(days=400))
        closed = list(Item.objects.filter(status="closed").order_by("pk")[:CLOSED_IN_QUARTER])
        at = timezone.make_aware(dt.datetime.combine(start_q + dt.timedelta(days=20), dt.time(10)))
        for n, item in enumerate(closed):
            item.closed_at = at + dt.timedelta(hours=n)
            item.realised_delta = Decimal("-2.5")
            item.lessons = "Benchmark lesson."
        Item.objects.bulk_update(closed, ["closed_at", "realised_delta", "lessons"], batch_size=500)
        # The current quarter: CLOSED_THIS_QUARTER closed in it so far, ESCALATED blockers.
        this_q = timezone.make_aware(dt.datetime.combine(quarter_of(today)[0], dt.time(9)))
        recent = list(
            Item.objects.filter(status="closed").order_by("pk")[CLOSED_IN_QUARTER:][:CLOSED_THIS_QUARTER]
        )
        for n, item in enumerate(recent):
            item.closed_at = min(this_q + dt.timedelta(hours=n), timezone.now())
            item.realised_delta = Decimal("-1.5")
        Item.objects.bulk_update(recent, ["closed_at", "realised_delta"], batch_size=500)
        Item.objects.filter(
            pk__in=list(
                Item.objects.filter(blocked=True).order_by("pk").values_list("pk", flat=True)[:ESCALATED]
            )
        ).update(escalated_at=timezone.now() - dt.timedelta(days=3))
        closed = closed + recent
        Indicator.objects.bulk_create(
            [
                Indicator(
                    item=i,
                    name="MTTR",
                    unit="h",
                    direction="lower",
                    baseline_value=Decimal("9.5"),
                    target_value=Decimal("6"),
                )
                for i in closed
                if not i.indicators.exists()
            ]
        )
    print(
        f"  built {len(sprints):,} sprints, {len(cards):,} cards, {len(logs):,} time logs; "
        f"{CLOSED_IN_QUARTER} items closed in {quarter_label(start_q)}, {len(recent)} in this quarter, "
        f"{ESCALATED} escalated blockers",
        flush=True,
    )
    return quarter_label(start_q)


def measure(pages: list[tuple[str, str]], runs: int) -> None:
    """Each page `runs` times after a warm-up: the median wall time, the median CPU time of this
    process (the view, the templates and, on SQLite, the database; on a shared machine the wall
    time is mostly waiting for a core) and the number of queries."""
    import statistics

    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from tikting.accounts.models import User

    client = Client()
    client.force_login(User.objects.get(username="manager"))
    for label, url in pages:
        response = client.get(url)
        if response.status_code != 200:
            print(f"  {label:<22} {url:<40} HTTP {response.status_code} (skipped)", flush=True)
            continue
        walls, cpus = [], []
        for _ in range(runs):
            start, cpu = time.perf_counter(), time.process_time()
            client.get(url)
            walls.append((time.perf_counter() - start) * 1000)
            cpus.append((time.process_time() - cpu) * 1000)
        with CaptureQueriesContext(connection) as queries:
            client.get(url)
        wall = statistics.median(walls)
        print(
            f"  {label:<22} {url:<40} {wall:7.1f} ms  (cpu {statistics.median(cpus):6.1f} ms)  "
            f"{len(queries):3d} queries  {len(response.content) / 1024:4.0f} kB  "
            f"[{'ok' if wall < register_pages.TARGET_MS else 'SLOW'}]",
            flush=True,
        )


def child(args: argparse.Namespace) -> None:
    _common.setup_django()
    from django.db import connection

    from tikting.cadence.outcomes import outcomes_report, render_report

    print(f"{connection.vendor}: {args.items:,} items, median of {args.runs} runs", flush=True)
    start = time.perf_counter()
    register_pages.build(args.items)
    quarter = build_cadence()
    print(f"  (database built in {time.perf_counter() - start:.1f} s)", flush=True)
    pages = [
        ("leadership view", "/cadence/leadership/"),
        ("outcomes page", "/cadence/outcomes/"),
        (f"outcomes {quarter}", f"/cadence/outcomes/?period={quarter}"),
        ("capacity", "/cadence/capacity/"),
        ("sprints", "/cadence/sprints/"),
        ("a sprint board", "/cadence/sprints/1/"),
    ]
    measure(pages, args.runs)
    start, cpu = time.perf_counter(), time.process_time()
    report = outcomes_report(quarter)
    pdf = render_report(report, "pdf")
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    verdict = "ok" if seconds < PDF_TARGET_S else "SLOW"
    # CPU seconds of this process too: on a shared machine the wall time is mostly waiting for a core.
    print(
        f"  PDF {quarter}: {report['count']} items, {len(pdf) / 1024:.0f} kB in {seconds:.1f} s "
        f"(cpu {cpu:.1f} s)  [{verdict}]",
        flush=True,
    )


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
        args, "tk_bench_cadence", __file__, ["--items", str(args.items), "--runs", str(args.runs)]
    )


if __name__ == "__main__":
    main()
