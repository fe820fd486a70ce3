"""What announcing an event costs the action that emits it: add_comment on an acting item of the demo
(one @mention), without the notifications subscriber and with it, as the item gains followers.
Run in `tikting shell` against a demo database (nothing is kept: every run is rolled back):

    TIKTING_VAR_DIR=/tmp/x DATABASE_URL=sqlite:////tmp/x/demo.sqlite3 \\
        .venv/bin/tikting shell < bench/notifications_comment_cost.py
"""

import time

from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from tikting.accounts.models import User
from tikting.core import events
from tikting.improvement import services as S
from tikting.improvement.models import Item
from tikting.notifications import services as NS

ITEM = Item.objects.filter(status="action").first()
CARL = User.objects.get(username="contributor")
RUNS = 7


def measure(label: str, followers: int, subscribed: bool = True) -> None:
    with transaction.atomic():
        for n in range(followers):
            user = User.objects.create_user(f"f{n}", email=f"f{n}@example.org", role="viewer")
            NS.follow(ITEM, actor=user)
        if not subscribed:
            events.unsubscribe(NS.on_event)
        times = []
        for _ in range(RUNS):
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                S.add_comment(ITEM, actor=CARL, body="@owner a comment")
                times.append(time.perf_counter() - started)
        if not subscribed:
            events.subscribe(NS.on_event)
        times.sort()
        print(f"{label}: {len(queries.captured_queries)} queries, median {times[RUNS // 2] * 1000:.1f} ms")
        transaction.set_rollback(True)


measure("no subscriber", 0, subscribed=False)
measure("0 followers", 0)
measure("10 followers", 10)
measure("50 followers", 50)
