"""`tikting demo [--reset] [--seed N] [--no-history]`: load a realistic demo organisation.

Users (password "demo"), teams, services and ~60 register items spread over every state, built
through the register's services (so history, audit trail and status changes are real), then moved
back in time with queryset updates so the year has a shape: items identified over the past twelve
months, closures per month, stale and overdue items, measurement histories.

Then a year of generated ITSM history for the demo services (incidents, interactions, problems,
changes, requests, surveys, articles: `tikting.demo.history`) and nine weeks of asset discovery
over its CIs (`tikting.demo.discovery`: the CMDB health page's figures), unless `--no-history`.

Idempotent: when the demo items are present it does nothing (but adds the history if it is
missing); `--reset` wipes the register and the demo history first.
Deterministic for a given `--seed` (dates are relative to today).
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from typing import Any

from django.contrib.auth.hashers import make_password
from django.contrib.contenttypes.models import ContentType
from django.core.management.base import CommandError, CommandParser
from django.db import connection, models, transaction
from django.db.models import ProtectedError, QuerySet, RestrictedError
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from tikting.accounts.models import Role, Team, User
from tikting.cadence.models import Sprint
from tikting.cmdb.models import Service
from tikting.core import audit
from tikting.core.commands import TiktingCommand
from tikting.core.exceptions import name_objects
from tikting.core.models import AuditEntry, StatusChange
from tikting.demo import discovery as demo_discovery
from tikting.demo import history as demo_history
from tikting.demo.organisation import (  # noqa: F401  (names the tests read through this command)
    CATALOGUE,
    MARKER,
    METRICS,
    PASSWORD,
    SERVICES,
    TEAMS,
    USERS,
    Spec,
)
from tikting.demo.sprints import build_sprints
from tikting.governance import services as G
from tikting.governance.agenda import RECENTLY_CLOSED_DAYS, freeze_agenda
from tikting.governance.models import ReviewMeeting
from tikting.improvement import choices as C
from tikting.improvement import services as S
from tikting.improvement.models import Action, Comment, Indicator, Item, Measurement
from tikting.notifications import services as NS
from tikting.notifications.models import Notification

AGE = {
    "new": (2, 25),
    "deferred": (40, 220),
    "rejected": (20, 330),
    "vision": (15, 90),
    "current_state": (30, 120),
    "target_state": (40, 150),
    "plan": (50, 180),
    "action": (70, 230),
    "evaluation": (100, 260),
    "momentum": (120, 300),
    "closed": (140, 360),
}
COMMENTS = [
    "Discussed at the monthly review: keep going.",
    "The service owner agrees with the target.",
    "Figures for last month are in the indicator.",
    "Frontline agents report the change is noticeable.",
    "Vendor call booked for next week.",
]


class Timeline:
    """Rows written by each service call, so they can be moved to when it 'happened'.

    `step()` after a call records the id ranges the call created; `finish()` gives every step a
    time (explicit ones kept, the others spread evenly between them) and rewrites the timestamps.
    """

    MODELS: list[tuple[type[models.Model], tuple[str, ...]]] = [
        (AuditEntry, ("at",)),
        (StatusChange, ("at",)),
        (Comment, ("created_at",)),
        (Measurement, ("measured_at", "created_at")),
        (Action, ("created_at",)),
        (Indicator, ("created_at", "updated_at")),
    ]

    def __init__(self) -> None:
        self.marks = self._ids()
        self.steps: list[dict[str, Any]] = []

    def _ids(self) -> dict[type[models.Model], int]:
        # One round trip for the six tables: this runs after every service call.
        quote = connection.ops.quote_name
        sql = "SELECT " + ", ".join(  # noqa: S608 - table names from our models, no input
            f"(SELECT MAX(id) FROM {quote(model._meta.db_table)})"  # noqa: S608
            for model, _f in self.MODELS
        )
        with connection.cursor() as cursor:
            cursor.execute(sql)
            row = cursor.fetchone()
        return {model: value or 0 for (model, _f), value in zip(self.MODELS, row, strict=True)}

    def step(self, kind: str, at: dt.datetime | None = None, **extra: Any) -> None:
        ids = self._ids()
        ranges = {model: (self.marks[model], ids[model]) for model in ids if ids[model] > self.marks[model]}
        self.marks = ids
        self.steps.append({"kind": kind, "at": at, "ranges": ranges, **extra})

    def finish(self, start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
        steps, self.steps = self.steps, []
        if not steps:
            return []
        if steps[0]["at"] is None:
            steps[0]["at"] = start
        if steps[-1]["at"] is None:
            steps[-1]["at"] = end
        anchor = 0
        for i in range(1, len(steps)):
            if steps[i]["at"] is None:
                continue
            gap = i - anchor
            for k in range(1, gap):
                lo, hi = steps[anchor]["at"], steps[i]["at"]
                steps[anchor + k]["at"] = lo + (hi - lo) * k / gap
            anchor = i
        for step in steps:
            for model, (lo, hi) in step["ranges"].items():
                names = dict(self.MODELS)[model]
                model.objects.filter(id__gt=lo, id__lte=hi).update(**dict.fromkeys(names, step["at"]))
                if model is Indicator:
                    model.objects.filter(id__gt=lo, id__lte=hi, baseline_value__isnull=False).update(
                        baseline_date=step["at"].date()
                    )
        return steps


class Builder:
    def __init__(self, rng: random.Random, users: dict[str, User], services: dict[str, Service]):
        self.rng = rng
        self.users = users
        self.services = services
        self.now = timezone.now()
        self.today = timezone.localdate()
        self.timeline = Timeline()
        self.closed_seen = 0
        self.counts = {"items": 0, "indicators": 0, "measurements": 0, "actions": 0, "comments": 0}

    @staticmethod
    def timeline_ct() -> ContentType:
        return ContentType.objects.get_for_model(Item)

    def days_ago(self, days: float) -> dt.datetime:
        return self.now - dt.timedelta(days=days)

    def value(self, x: float, unit: str) -> Decimal:
        places = 1 if unit in {"%", "h", "1-5"} else 0
        if unit == "1-5":
            x = min(max(x, 1), 5)
        return Decimal(str(round(x, places)))

    def build(self, n: int, spec: Spec) -> Item:
        rng, u = self.rng, self.users
        manager, owner = u["manager"], u[spec.owner]
        submitter = rng.choice([u["contributor"], u["contributor"], owner, manager])
        age = rng.uniform(*AGE[spec.status])
        start = self.days_ago(age)
        if spec.stale:
            end = self.days_ago(rng.uniform(35, min(age - 1, 80) if age > 40 else 36))
            start = min(start, end - dt.timedelta(days=10))
        elif spec.status == "closed":
            # About one closure a month over the year, so closed-per-month has a shape.
            self.closed_seen += 1
            end = self.days_ago(50 if spec.slipped else 8 + 27 * self.closed_seen + rng.uniform(-6, 6))
            start = max(min(start, end - dt.timedelta(days=rng.uniform(45, 140))), self.days_ago(362))
        elif spec.status in {"new", "rejected"}:
            end = start + dt.timedelta(days=rng.uniform(0.5, 6)) if spec.status == "rejected" else start
        else:
            end = self.days_ago(rng.uniform(0.5, 9))
        tl = self.timeline

        item = S.create_item(
            actor=submitter,
            title=spec.title,
            description=self.description(spec),
            practice=spec.practice,
            service=self.services[spec.service] if spec.service else None,
            justification=f"Raised through {C.SourceChannel(spec.channel).label.lower()}.",
            justification_type=C.JustificationType.BUSINESS
            if spec.impact >= 4
            else C.JustificationType.OPERATIONAL,
            expected_outcome=self.expected(spec),
            impact=spec.impact,
            effort=spec.effort,
            source_channel=spec.channel,
            source_reference=self.source_ref(spec, n),
            external_id=f"{MARKER}{n:02d}",
        )
        tl.step("create", start)
        if spec.status == "new":
            return self.finish(item, spec, start, end)
        if spec.status in {"deferred", "rejected"}:
            decision = "defer" if spec.status == "deferred" else "reject"
            revisit = self.today + dt.timedelta(days=rng.randint(20, 150)) if decision == "defer" else None
            item = S.assess_item(
                item, actor=manager, decision=decision, reason=spec.reason, revisit_date=revisit
            )
            tl.step("assess")
            return self.finish(item, spec, start, end)

        item = S.assess_item(item, actor=manager, decision="accept", owner=owner)
        tl.step("assess")
        item = S.update_item(
            item, actor=manager, vision=self.vision(spec), target_date=self.target_date(spec, start)
        )
        tl.step("edit")
        if spec.withdraw_from == "vision" or spec.status == "vision":
            return self.close_or_finish(item, spec, start, end)

        metric = METRICS[spec.practice]
        name, unit, direction, base, target = metric
        base *= rng.uniform(0.9, 1.1)
        target = target * rng.uniform(0.97, 1.03)
        indicator = S.add_indicator(
            item,
            actor=owner,
            name=f"{name}, {spec.service}" if spec.service else name,
            unit=unit,
            direction=direction,
            baseline_value=self.value(base, unit),
            baseline_method="manual: mean of the last three monthly reports",
        )
        tl.step("indicator")
        for _k in range(2):
            S.record_measurement(
                indicator, actor=owner, value=self.value(base * rng.uniform(0.96, 1.04), unit)
            )
            tl.step("measure")
        item = S.transition_item(item, actor=owner, to="current_state", reason="Vision agreed")
        tl.step("status")
        if spec.status == "current_state":
            return self.finish(item, spec, start, end)
        S.update_indicator(indicator, actor=owner, target_value=self.value(target, unit))
        tl.step("indicator")
        if spec.impacted:
            impacted = S.add_indicator(
                item,
                actor=owner,
                name="CSAT, service desk",
                unit="1-5",
                direction="higher",
                role="impacted",
                baseline_value="4.1",
                target_value="4.1",
                owner=u["contributor"],  # the service desk takes this measure
            )
            tl.step("indicator")
            self.counts["indicators"] += 1
            S.record_measurement(impacted, actor=owner, value="4.0")
            tl.step("measure")
        item = S.transition_item(item, actor=owner, to="target_state", reason="Baseline measured")
        tl.step("status")
        if spec.status == "target_state":
            return self.finish(item, spec, start, end)
        item = S.transition_item(item, actor=owner, to="plan", reason="Target agreed with the service owner")
        tl.step("status")
        actions = []
        for title in self.action_titles(spec):
            due = self.today + dt.timedelta(days=rng.randint(-40, 45))
            actions.append(
                S.add_action(
                    item,
                    actor=owner,
                    title=title,
                    owner=rng.choice([owner, owner, u["contributor"]]),
                    due_date=due,
                )
            )
            tl.step("action")
        if spec.withdraw_from == "plan" or spec.status == "plan":
            return self.close_or_finish(item, spec, start, end)

        item = S.transition_item(item, actor=owner, to="action", reason="Plan approved")
        tl.step("status")
        progress = {"achieved": 1.1, "partly": 0.5, "not_achieved": 0.05, "": 0.8}[spec.result]
        points = 3 if spec.status != "action" else rng.randint(1, 2)
        for k in range(1, points + 1):
            share = progress * k / points if spec.status != "action" else 0.3 * k
            value = base + (target - base) * share
            S.record_measurement(
                indicator, actor=owner, value=self.value(value * rng.uniform(0.99, 1.01), unit)
            )
            tl.step("measure")
        if actions:
            S.update_action(actions[0], actor=owner, done=True)
            tl.step("action_done")
        if spec.blocked:
            item = S.set_blocked(item, actor=owner, blocked=True, blocker=spec.blocked)
            tl.step("block", self.days_ago(rng.uniform(12, 30)))
            if spec.escalate:
                item = S.escalate_item(item, actor=owner, note="Two weeks without a date from the vendor.")
                tl.step("escalate", self.days_ago(rng.uniform(3, 10)))
        if rng.random() < 0.6:
            S.add_comment(
                item, actor=rng.choice([manager, owner, u["contributor"]]), body=rng.choice(COMMENTS)
            )
            tl.step("comment")
            self.counts["comments"] += 1
        if spec.status == "action":
            return self.finish(item, spec, start, end)

        for action in actions[1:]:
            S.update_action(action, actor=owner, done=True)
            tl.step("action_done")
        item = S.transition_item(item, actor=owner, to="evaluation", reason="Actions done")
        tl.step("status")
        if spec.result:
            item = S.evaluate_item(item, actor=owner, note="Compared with the target over the last month.")
            tl.step("evaluate")
        if spec.status == "evaluation":
            return self.finish(item, spec, start, end)
        item = S.transition_item(item, actor=owner, to="momentum", reason="Evaluated")
        tl.step("status")
        if spec.status == "momentum":
            return self.finish(item, spec, start, end)
        return self.close_or_finish(item, spec, start, end, indicator=indicator)

    def close_or_finish(self, item: Item, spec: Spec, start, end, indicator: Indicator | None = None) -> Item:
        if spec.status != "closed":
            return self.finish(item, spec, start, end)
        owner = self.users[spec.owner]
        if spec.outcome == "withdrawn":
            # Stopping early: what was planned and not done is cancelled, saying why (the rule).
            for action in item.actions.all():
                if action.is_open:
                    S.cancel_action(action, actor=owner, reason=spec.lessons)
                    self.timeline.step("action_cancel")
        item = S.close_item(
            item,
            actor=owner,
            outcome=spec.outcome,
            benefit_category=spec.benefit,
            lessons=spec.lessons,
            follow_ups=[{"title": title, "impact": 3, "effort": 2} for title in spec.follow_ups],
        )
        self.timeline.step("close", end)
        if indicator is not None and spec.outcome in {"successful", "partly_successful"}:
            # The control period: measurements after closure; one improvement slides back.
            latest = indicator.latest_measurement()
            assert latest is not None
            days_closed = (self.now - end).days
            for k in range(1, min(3, max(1, days_closed // 20)) + 1):
                value = latest.value
                if spec.slipped:
                    assert indicator.baseline_value is not None  # set when the indicator was added
                    value = indicator.baseline_value  # back where it started
                S.record_measurement(indicator, actor=owner, value=value)
                self.timeline.step("measure", end + (self.now - end) * k / 4)
        return self.finish(item, spec, start, end)

    def finish(self, item: Item, spec: Spec, start: dt.datetime, end: dt.datetime) -> Item:
        steps = self.timeline.finish(start, end)
        times = {s["kind"]: s["at"] for s in steps}
        status_at = max((s["at"] for s in steps if StatusChange in s["ranges"]), default=start)
        last = max(s["at"] for s in steps)
        item.refresh_from_db()
        item.identified_at = start
        fields: dict[str, Any] = {
            "identified_at": start,
            "created_at": start,
            "updated_at": last,
            "status_changed_at": status_at,
            "last_activity_at": last,
        }
        if "assess" in times:
            fields["assessed_at"] = times["assess"]
        if "evaluate" in times:
            fields["evaluated_at"] = times["evaluate"]
        if "block" in times:
            fields["blocked_since"] = times["block"]
        if "escalate" in times:
            fields["escalated_at"] = times["escalate"]
        if "close" in times:
            fields["closed_at"] = times["close"]
            if item.control_until:
                fields["control_until"] = timezone.localdate(times["close"]) + dt.timedelta(days=90)
            if item.slipped_at:
                fields["slipped_at"] = last
        if spec.revisit_passed:
            fields["revisit_date"] = self.today - dt.timedelta(days=self.rng.randint(2, 12))
        if item.target_date:
            if spec.overdue:
                item.target_date = self.today - dt.timedelta(days=self.rng.randint(5, 25))
            elif spec.due_soon:
                item.target_date = self.today + dt.timedelta(days=self.rng.randint(3, 8))
            fields["target_date"] = item.target_date
            fields["due_soon_from"] = item.compute_due_soon_from()
        Item.objects.filter(pk=item.pk).update(**fields)
        align_history(
            item, {k: fields[k] for k in ("target_date", "control_until", "revisit_date") if k in fields}
        )
        self.date_actions(item, planned=times.get("action"), ended=times.get("close"))
        done_at = times.get("action_done")
        if done_at:
            Action.objects.filter(item=item, done=True).update(done_at=done_at)
        cancelled_at = times.get("action_cancel")
        if cancelled_at:
            Action.objects.filter(item=item, cancelled=True).update(cancelled_at=cancelled_at)
        self.counts["items"] += 1
        return item

    @staticmethod
    def date_actions(item: Item, *, planned: dt.datetime | None, ended: dt.datetime | None) -> None:
        """Actions fall due after the plan that made them (a week at least), and those of an ended
        item by the day it closed: not on dates drawn around today, after the item was closed."""
        if planned is None:
            return
        first = timezone.localdate(planned) + dt.timedelta(days=7)
        last = timezone.localdate(ended) - dt.timedelta(days=1) if ended else None
        actions = list(Action.objects.filter(item=item, due_date__isnull=False).order_by("id"))
        for k, action in enumerate(actions):
            assert action.due_date is not None
            due = max(action.due_date, first + dt.timedelta(days=3 * k))
            action.due_date = max(min(due, last), timezone.localdate(planned)) if last else due
        Action.objects.bulk_update(actions, ["due_date"])

    # -- words --

    def description(self, spec: Spec) -> str:
        where = f" on {spec.service}" if spec.service else ""
        return (
            f"{spec.title}{where}. Raised by the {C.Practice(spec.practice).label.lower()} practice "
            f"after {C.SourceChannel(spec.channel).label.lower()} showed the current way of working "
            "costs time and goodwill."
        )

    def vision(self, spec: Spec) -> str:
        return {
            "incident": "Users get working services back quickly and know what is happening.",
            "monitoring": "We hear about failures before our users do.",
            "problem": "The same failure does not hit us twice.",
            "service_desk": "Staff get help at the first contact, at any hour.",
            "change": "Changes land safely and on time, without surprises for the business.",
            "sla": "Service owners see and keep the service levels the business relies on.",
            "request": "Staff get what they ask for quickly, mostly without waiting for a person.",
            "knowledge": "Answers are written down once and found easily.",
            "asset": "The CMDB can be trusted for impact analysis and audits.",
            "security": "Known vulnerabilities are closed before they are exploited.",
        }.get(spec.practice, "A better service for the business.")

    def expected(self, spec: Spec) -> str:
        name, unit, direction, base, target = METRICS.get(spec.practice, ("", "", "", 0, 0))
        if not name:
            return ""
        return f"{name} from about {base:g} {unit} to {target:g} {unit}."

    def target_date(self, spec: Spec, start: dt.datetime) -> dt.date:
        return timezone.localdate(start) + dt.timedelta(days=self.rng.randint(90, 300))

    def source_ref(self, spec: Spec, n: int) -> str:
        prefix = {
            "post_incident_review": "PIR",
            "problem": "PRB",
            "change_review": "CHG",
            "sla_breach": "SLA",
            "survey": "CSAT",
            "audit_finding": "AUD",
            "request_analysis": "REQ",
            "asset_data": "CMDB",
            "knowledge": "KB",
        }.get(spec.channel)
        return f"{prefix}-{1000 + n * 37}" if prefix else ""

    def action_titles(self, spec: Spec) -> list[str]:
        choices = [
            "Agree the approach with the service owner",
            "Update the runbook and knowledge article",
            "Train the resolver group",
            "Configure the tool and test it",
            "Communicate the change to staff",
            "Review results after two weeks",
        ]
        return self.rng.sample(choices, self.rng.randint(2, 3))


# Acting items get an extra indicator computed from the demo history: practice → (metric, label).
RECORD_METRICS = {
    "incident": ("mttr", "MTTR"),
    "monitoring": ("mttr", "MTTR"),
    "change": ("change_success_rate", "Change success rate"),
    "sla": ("sla_resolution", "SLA resolution compliance"),
    "service_desk": ("fcr_rate", "First-contact resolution"),
}


def align_history(item: Item, values: dict[str, Any]) -> None:
    """The item's last history row of each field says the value the demo finally gave it (the
    services wrote today's dates, moved back in time afterwards)."""
    ct = ContentType.objects.get_for_model(Item)
    for name, value in values.items():
        entry = (
            AuditEntry.objects.filter(content_type=ct, object_id=str(item.pk), changes__has_key=name)
            .order_by("-id")
            .first()
        )
        if entry is not None and isinstance(entry.changes.get(name), list):
            entry.changes[name][1] = audit.plain(value)
            entry.save(update_fields=["changes"])


def bind_to_records(*, today: dt.date | None = None) -> int:
    """Give every acting or evaluating demo item with a service an impacted indicator bound to the
    metric of its practice, scoped to its service: baseline from the 90 days before last month,
    target a fifth better, and the first computed measurement. Returns how many were bound; an
    item whose scope holds no records in that window is left as it is."""
    today = today or timezone.localdate()
    end = today - dt.timedelta(days=31)
    start = end - dt.timedelta(days=89)
    bound = 0
    acting = Item.objects.filter(
        status__in=[C.Status.ACTION, C.Status.EVALUATION], service__isnull=False, practice__in=RECORD_METRICS
    ).select_related("service", "owner")
    for item in acting.order_by("pk"):
        assert item.service is not None  # (the filter)
        metric, label = RECORD_METRICS[item.practice]
        scope = {"service": item.service.name}
        if S.metric_value(metric, scope, start, end)[0] is None:
            continue  # no records of that service in the window: nothing to compute a baseline from
        owner = item.owner
        indicator = S.add_indicator(
            item, actor=owner, name=f"{label}, {item.service.name} (from the records)", role="impacted"
        )
        indicator = S.bind_indicator(
            indicator, actor=owner, metric_key=metric, scope=scope, window_start=start, window_end=end
        )
        assert indicator.baseline_value is not None  # bound to a metric with a value in the window
        base = float(indicator.baseline_value)
        lower = indicator.direction == C.Direction.LOWER
        better = base * 0.8 if lower else min(100.0, base + (100 - base) / 5)
        S.update_indicator(indicator, actor=owner, target_value=f"{better:.2f}")
        bound += 1
    S.take_computed_measurements(today=today)
    return bound


def _evidence(practice: str, service: Service, before: dt.datetime) -> list[models.Model]:
    """A few records of `service`, opened `before` the item was identified, that show why an item
    of `practice` was raised."""
    from tikting.audits.models import AuditFinding
    from tikting.changes.models import Change
    from tikting.incidents.models import Incident, Interaction
    from tikting.knowledge.models import Article
    from tikting.problems.models import Problem
    from tikting.service_requests.models import ServiceRequest

    by_practice: dict[str, QuerySet[models.Model]] = {
        "incident": Incident.objects.filter(priority__lte=2).order_by("-reassignment_count", "-opened_at"),
        "monitoring": Incident.objects.filter(priority__lte=2).order_by("-opened_at"),
        "problem": Problem.objects.order_by("-opened_at"),
        "change": Change.objects.exclude(outcome__in=["", "successful"]).order_by("-opened_at"),
        "sla": Incident.objects.filter(resolution_met=False).order_by("-opened_at"),
        "service_desk": Interaction.objects.filter(first_contact_resolution=False).order_by("-opened_at"),
        "request": ServiceRequest.objects.order_by("-opened_at"),
        "knowledge": Article.objects.order_by("-views"),
        "security": AuditFinding.objects.order_by("-pk"),
    }
    records = by_practice.get(practice)
    if records is None:
        return []
    records = records.filter(service=service)
    if any(f.name == "opened_at" for f in records.model._meta.concrete_fields):
        records = records.filter(opened_at__lt=before)
    return list(records[:3])


def link_to_records() -> int:
    """Link every demo item with a service to a few records of the history that show why it was
    raised (its practice's incidents, failed changes, breaches …), the first as its origin.
    Returns how many links were made."""
    from tikting.improvement.models import SourceLink

    made = 0
    for item in Item.objects.filter(service__isnull=False).select_related("service", "owner"):
        assert item.service is not None  # (the filter)
        actor = item.owner  # None (the system) for items nobody owns yet
        links = [
            S.link_source(item, actor=actor, record=record, is_origin=n == 0).pk
            for n, record in enumerate(_evidence(item.practice, item.service, item.identified_at))
        ]
        if not links:
            continue
        made += len(links)
        # Linked when the item was identified, as in real use: the timeline, the last activity
        # (and with it the stale flags of the governance agenda) stay as the demo built them.
        SourceLink.objects.filter(pk__in=links).update(created_at=item.identified_at)
        link_type = ContentType.objects.get_for_model(SourceLink)
        AuditEntry.objects.filter(object_id__in=[str(pk) for pk in links], content_type=link_type).update(
            at=item.identified_at
        )
        Item.objects.filter(pk=item.pk).update(last_activity_at=item.last_activity_at)
    return made


class Command(TiktingCommand):
    help = "Load a demo organisation (users with password 'demo', services, a year of register items)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Wipe the register and the demo history first, then load the demo.",
        )
        parser.add_argument("--seed", type=int, default=42, help="Random seed (default 42).")
        parser.add_argument(
            "--no-history", action="store_true", help="Skip the generated ITSM history (incidents …)."
        )
        parser.add_argument(
            "--history-months", type=int, default=12, help="Months of ITSM history (default 12)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["reset"]:
            self.reset()
        elif Item.objects.filter(external_id__startswith=MARKER).exists():
            self.stdout.write("The demo is already loaded (use --reset to load it again).")
            if not options["no_history"] and not demo_history.has_history():
                with transaction.atomic():
                    users = self.users()
                    services = self.services(users)
                    history = demo_history.build_history(
                        random.Random(options["seed"]), users, services, months=options["history_months"]
                    )
                    history["indicators bound to a metric"] = bind_to_records()
                    history["links from items to records"] = link_to_records()
                    history.update(demo_discovery.build_discovery(random.Random(options["seed"]), users))
                history["links from items to records"] = link_to_records()
                self.stdout.write(f"History added: {self.describe(history)}.")
            self.print_logins()
            return
        rng = random.Random(options["seed"])
        with transaction.atomic():
            users = self.users()
            services = self.services(users)
            builder = Builder(rng, users, services)
            for n, spec in enumerate(CATALOGUE, start=1):
                builder.build(n, spec)
            self.follow_ups(builder)
            S.rank_items(
                list(
                    Item.objects.filter(status__in=[C.Status.PLAN, C.Status.ACTION])
                    .order_by("-priority_score", "id")
                    .values_list("id", flat=True)[:5]
                ),
                actor=users["manager"],
            )
            sustainment = S.check_sustainment()
            self.reviews(users)
            sprints = build_sprints(rng, users)
            history = {}
            if not options["no_history"]:
                history = demo_history.build_history(rng, users, services, months=options["history_months"])
                history["indicators bound to a metric"] = bind_to_records()
                history["links from items to records"] = link_to_records()
                # Nine weeks of asset discovery over the history's CIs (the CMDB health page).
                history.update(demo_discovery.build_discovery(rng, users))
            self.notifications(users)
        counts = Item.objects.aggregate(n=models.Count("id"))
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo loaded: {counts['n']} register items, {len(services)} services, {len(users)} users "
                f"(seed {options['seed']}; sustainment: "
                + ", ".join(f"{k} {v}" for k, v in sorted(sustainment.items()))
                + f"); {sprints} improvement sprints."
            )
        )
        if history:
            self.stdout.write(f"History: {self.describe(history)}.")
        self.print_logins()

    @staticmethod
    def describe(counts: dict[str, int]) -> str:
        return ", ".join(f"{n} {kind}" for kind, n in counts.items())

    def notifications(self, users: dict[str, User]) -> None:
        """The organisation was built through the services, which announced every step: those notices
        are the past (read, never e-mailed). A few fresh ones keep the bell from being empty: the
        contributor mentions the owner and the manager on an acting item, the viewer follows it, and
        the manager answers (e-mails print on the worker's console in the demo)."""
        Notification.objects.update(read_at=timezone.now(), email="")
        DBTaskResult.objects.filter(task_path="tikting.notifications.tasks.send_email").delete()
        item = Item.objects.filter(status=C.Status.ACTION).exclude(owner=None).order_by("id").first()
        if item is None or item.owner is None:
            return
        owner, manager = item.owner, users["manager"]
        NS.follow(item, actor=users["viewer"])
        S.add_comment(
            item,
            actor=users["contributor"],
            body=f"@{owner.username} @{manager.username} the new runbook cut the hand-over time; "
            "the figures follow next week.",
        )
        S.add_comment(
            item, actor=manager, body=f"Thanks — @{users['contributor'].username}, add them as a measurement."
        )

    def reviews(self, users: dict[str, User]) -> None:
        """Last month's register review, held and closed, with minutes; this month's, planned."""
        manager = users["manager"]
        today = timezone.localdate()
        held_on = today - dt.timedelta(days=45)
        last = G.create_review(actor=manager, scheduled_for=held_on, notes="Monthly register review.")
        open_items = Item.objects.open()
        decisions = [
            (open_items.filter(blocked=True).first(), "escalate", "Budget owner to unblock by next review."),
            (open_items.filter(status=C.Status.ACTION).first(), "continue", "On track; measure weekly."),
            (open_items.filter(status=C.Status.PLAN).first(), "adjust", "Split the plan: quick fix first."),
            (
                Item.objects.closed().exclude(outcome="withdrawn").first(),
                "note",
                "Results shared at the town hall.",
            ),
        ]
        mark = AuditEntry.objects.aggregate(last=models.Max("id"))["last"] or 0
        team = [users["owner"], users["owner2"], users["contributor"], users["admin"]]
        G.set_attendance(last, actor=manager, attendees=team, apologies=[users["viewer"]])
        for item, kind, text in decisions:
            if item is not None:
                G.record_minute(last, actor=manager, item=item, kind=kind, text=text)
        # Action items of the meeting: register actions on the items discussed (one done since).
        follow_ups = [
            (decisions[0][0], "Ask the budget owner for a decision", users["owner"], 14),
            (decisions[1][0], "Share the weekly measurement with the service desk", users["contributor"], 30),
        ]
        for n, (item, title, owner, days) in enumerate(follow_ups):
            if item is not None and item.owner is not None:
                entry = G.record_meeting_action(
                    last,
                    actor=manager,
                    title=title,
                    owner=owner,
                    due_date=held_on + dt.timedelta(days=days),
                    item=item,
                )
                if n == 0 and entry.action is not None:
                    S.update_action(entry.action, actor=manager, done=True)
        G.hold_review(last, actor=manager)
        G.close_review(last, actor=manager)  # the minutes were approved: the record is final
        held_at = timezone.make_aware(dt.datetime.combine(held_on, dt.time(10, 0)))
        # Held back then: its agenda as of that day (the items identified by then, their flags then).
        agenda = freeze_agenda(now=held_at, since=held_at - dt.timedelta(days=RECENTLY_CLOSED_DAYS))
        ReviewMeeting.objects.filter(pk=last.pk).update(
            held_at=held_at, closed_at=held_at + dt.timedelta(days=3), agenda=agenda
        )
        last.minutes.update(at=held_at)
        last.action_items.update(at=held_at)
        # The actions were planned at the meeting, the first done a week later.
        planned = Action.objects.filter(pk__in=last.action_items.values("action_id"))
        planned.update(created_at=held_at)
        planned.filter(done=True).update(done_at=held_at + dt.timedelta(days=7))
        # Their history rows were written just now: they happened at the meeting (closed 3 days on).
        written = AuditEntry.objects.filter(id__gt=mark)
        written.update(at=held_at)
        written.filter(message__startswith="Review closed").update(at=held_at + dt.timedelta(days=3))
        upcoming = G.create_review(
            actor=manager,
            scheduled_for=today + dt.timedelta(days=2),
            start_time=dt.time(10, 0),
            duration_minutes=90,
        )
        G.set_attendance(
            upcoming,
            actor=manager,
            attendees=[users["owner"], users["contributor"], users["admin"]],
            apologies=[users["owner2"]],
        )

    def print_logins(self) -> None:
        self.stdout.write(f"Logins (password: {PASSWORD}):")
        for username, (first, last, role, _team) in USERS.items():
            self.stdout.write(f"  {username:<12} {first} {last}, {Role(role).label}")

    def reset(self) -> None:
        item_type = ContentType.objects.get_for_model(Item)
        try:
            with transaction.atomic():
                ReviewMeeting.objects.all().delete()
                Sprint.objects.all().delete()  # their cards point at items (and take the time logs)
                Item.objects.update(parent=None)
                deleted, _ = Item.objects.all().delete()
                AuditEntry.objects.filter(root_content_type=item_type).delete()
                StatusChange.objects.filter(content_type=item_type).delete()
                deleted += demo_discovery.wipe_discovery()
                deleted += demo_history.wipe_history()
        except (ProtectedError, RestrictedError) as exc:
            users = exc.protected_objects if isinstance(exc, ProtectedError) else exc.restricted_objects
            raise CommandError(
                f"Cannot wipe the register: other records point at its items ({name_objects(users)})."
            ) from exc
        self.stdout.write(f"Register and demo history wiped ({deleted} rows).")

    def users(self) -> dict[str, User]:
        teams = {
            name: Team.objects.get_or_create(name=name, defaults={"description": d})[0]
            for name, d in TEAMS.items()
        }
        hashed = make_password(PASSWORD)  # hashed once: PBKDF2 costs ~0.3 s a time
        users = {}
        for username, (first, last, role, team) in USERS.items():
            user, created = User.objects.get_or_create(
                username=username,
                defaults={
                    "first_name": first,
                    "last_name": last,
                    "email": f"{username}@demo.tikting.example",
                    "role": role,
                    "team": teams[team],
                    "is_staff": role == Role.ADMIN,
                    "is_superuser": role == Role.ADMIN,
                    "password": hashed,
                },
            )
            users[username] = user
        return users

    def services(self, users: dict[str, User]) -> dict[str, Service]:
        services = {}
        for name, (criticality, owner, description) in SERVICES.items():
            service, _ = Service.objects.get_or_create(
                name=name,
                defaults={"criticality": criticality, "owner": users[owner], "description": description},
            )
            services[name] = service
        return services

    def follow_ups(self, builder: Builder) -> None:
        """Children created at closure were identified when their parent closed."""
        for child in Item.objects.filter(parent__isnull=False).select_related("parent"):
            assert child.parent is not None  # (the filter)
            closed_at = child.parent.closed_at
            Item.objects.filter(pk=child.pk).update(
                identified_at=closed_at,
                created_at=closed_at,
                status_changed_at=closed_at,
                last_activity_at=closed_at,
            )
            AuditEntry.objects.filter(
                root_content_type=builder.timeline_ct(), root_object_id=str(child.pk)
            ).update(at=closed_at)
            StatusChange.objects.filter(content_type=builder.timeline_ct(), object_id=str(child.pk)).update(
                at=closed_at
            )
