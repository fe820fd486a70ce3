"""The demo's improvement sprints, built through the cadence services: for two teams, two
reviewed sprints (with their time logs and decisions) and one under way, so the sprint pages and
velocity have something to show."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from django.utils import timezone

from tikting.accounts.models import Team, User
from tikting.cadence import services as CS
from tikting.cadence.models import Column, Sprint
from tikting.improvement import choices as C
from tikting.improvement.models import Item

# team name: who does the work there (demo usernames)
SPRINT_TEAMS = {"Service Desk": ["contributor"], "Infrastructure": ["owner"]}
GOALS = [
    "Cut repeat contacts about the same faults",
    "Make the change calendar trustworthy",
    "Take the manual steps out of the request queue",
]


def build_sprints(rng: random.Random, users: dict[str, User]) -> int:
    """Three sprints a team: two reviewed (ended 3 and 1 weeks ago), one running. Returns the
    number of sprints made."""
    manager = users["manager"]
    today = timezone.localdate()
    pool = list(Item.objects.filter(status__in=C.ACTIVE_STATUSES).order_by("-priority_score", "id"))
    made = 0
    for team_name, workers in SPRINT_TEAMS.items():
        team = Team.objects.get(name=team_name)
        people = [users[name] for name in workers]
        previous: Sprint | None = None
        for number, weeks_ago in enumerate((5, 3, 1), start=1):
            start = today - dt.timedelta(weeks=weeks_ago)
            if previous is None and not pool:
                break  # no active item left to work on
            # The sprint the last review carried items into, or a new one.
            sprint = previous or CS.create_sprint(
                actor=manager,
                team=team,
                name=f"{team_name} sprint {number}",
                goal=GOALS[(number - 1) % len(GOALS)],
                start=start,
                end=start + dt.timedelta(days=13),
            )
            made += previous is None
            fresh = [pool.pop(0) for _ in range(min(1 if previous else 2, len(pool)))]
            for item in fresh:
                CS.add_sprint_item(sprint, actor=manager, item=item, planned_hours=rng.choice([4, 6, 8]))
            CS.start_sprint(sprint, actor=manager)
            cards = list(sprint.cards.select_related("item"))
            for i, card in enumerate(cards):
                CS.move_card(card, actor=manager, column=Column.DONE if i == 0 else Column.DOING)
                for day in range(0, min(12, (today - start).days), 3):
                    person = people[(i + day) % len(people)]
                    CS.log_time(
                        card,
                        actor=person,
                        hours=Decimal(rng.choice([1, 1.5, 2, 3])),
                        day=start + dt.timedelta(days=day),
                        note="Pairing on the fix" if day == 0 else "",
                    )
            if weeks_ago == 1:
                break  # the running sprint
            nxt = None
            decisions = {}
            for i, card in enumerate(cards):
                if i == 0:
                    decisions[card.pk] = {
                        "decision": "close",
                        "note": "Done; measure it for the control period.",
                    }
                else:
                    decisions[card.pk] = {"decision": "continue", "disposition": "next_sprint"}
            if len(cards) > 1:
                nxt = CS.create_sprint(
                    actor=manager,
                    team=team,
                    name=f"{team_name} sprint {number + 1}",
                    goal=GOALS[number % len(GOALS)],
                    start=start + dt.timedelta(weeks=2),
                    end=start + dt.timedelta(weeks=2, days=13),
                )
                made += 1
            CS.review_sprint(
                sprint,
                actor=manager,
                what_changed="Runbook updated and the fix rolled out to the first group.",
                decisions=decisions,
                next_sprint=nxt,
            )
            previous = nxt
    return made
