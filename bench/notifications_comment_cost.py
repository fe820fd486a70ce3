"""What announcing an event costs the action that emits it: add_comment on an acting item of the demo
(one @mention), without the notifications subscriber and with it, as the item gains followers.
Run in `tikting shell` against a demo database (nothing is kept: every run is rolled back):

    TIKTING_VAR_DIR=/tmp/x DATABASE_URL=sqlite:////tmp/x/demo.sqlite3 .venv/bin/tikting shell < bench/notifications_comment_cost.py
"""

import time
from django.db import transaction, connection
from django.test.utils import CaptureQueriesContext
from tikting.improvement import services as S
from tikting.improvement.models import Item
from tikting.accounts.models import User
from tikting.notifications import services as NS
from tikting.core import events
item = Item.objects.filter(status='action').first()
carl = User.objects.get(username='contributor')
def measure(label, followers, sub=True):
    with transaction.atomic():
        for n in range(followers):
            u = User.objects.create_user(f'f{n}', email=f'f{n}@x.org', role='viewer')
            NS.follow(item, actor=u)
        if not sub: events.unsubscribe(NS.on_event)
        times=[]
        for r in range(7):
            with CaptureQueriesContext(connection) as q:
                t=time.perf_counter(); S.add_comment(item, actor=carl, body='@owner a comment'); times.append(time.perf_counter()-t)
        if not sub: events.subscribe(NS.on_event)
        times.sort(); print(label, 'queries', len(q.captured_queries), 'median ms %.1f' % (times[3]*1000))
        transaction.set_rollback(True)
measure('no subscriber', 0, sub=False)
measure('0 followers', 0)
measure('10 followers', 10)
measure('50 followers', 50)
