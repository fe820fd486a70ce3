"""The SLA breach detector: hot spots and their probable cause in hand-built scenarios."""

from __future__ import annotations

import datetime as dt
import itertools
import json

import pytest

from tikting.accounts.models import Team
from tikting.cmdb.models import ConfigurationItem, Service
from tikting.incidents.models import Incident, IncidentActivity
from tikting.signals.detectors import sla_breaches
from tikting.signals.proposals import Window

pytestmark = pytest.mark.django_db

MONDAY = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
WINDOW = Window(dt.datetime(2026, 1, 1, tzinfo=dt.UTC), dt.datetime(2026, 7, 1, tzinfo=dt.UTC))
_numbers = itertools.count(1)


def incident(service, opened, *, met=True, hours=4.0, kind="resolution", **fields) -> Incident:
    n = next(_numbers)
    flags = {"resolution_met": met} if kind == "resolution" else {"response_met": met}
    return Incident.objects.create(
        number=f"INC{n:05d}",
        external_key=f"INC{n:05d}",
        source="test",
        opened_at=opened,
        resolved_at=opened + dt.timedelta(hours=hours),
        status=Incident.Status.CLOSED,
        service=service,
        **flags,
        **fields,
    )


def run(**overrides: float):
    return sla_breaches.detect(
        WINDOW, thresholds={**sla_breaches.THRESHOLDS, **overrides}, progress=lambda d, t: None
    )


def rules_of(proposal):
    return {r["rule"]: r for r in proposal.figures["causes"]}


@pytest.fixture
def org():
    """The rest of the organisation: 200 incidents on Mail, one in ten breached, spread over the week."""
    team = Team.objects.create(name="Messaging")
    mail = Service.objects.create(name="Mail")
    for i in range(200):
        opened = MONDAY + dt.timedelta(days=i % 28, hours=i % 7)
        incident(mail, opened, met=i % 10 != 0, assignment_group=team, reassignment_count=i % 2)
    return mail


def test_it_finds_the_service_whose_targets_are_missed_and_calls_it_process(org):
    vpn = Service.objects.create(name="VPN", criticality=Service.Criticality.HIGH)
    team = Team.objects.create(name="Network Operations")
    for i in range(40):
        breached = i % 2 == 0
        incident(
            vpn,
            MONDAY + dt.timedelta(days=i % 28, hours=i % 7),
            met=not breached,
            hours=40 if breached else 3,
            assignment_group=team,
            reassignment_count=4 if breached else 0,
        )

    found = run()

    assert [p.figures["service"] for p in found] == ["VPN"]  # Mail's 10 % is the norm, not a hot spot
    p = found[0]
    assert (p.figures["breaches"], p.figures["incidents"]) == (20, 40)
    assert p.figures["cause"] == "process" and p.practice == "incident"
    rule = rules_of(p)["reassignments"]
    assert rule["passed"] and rule["figure"] == 4.0 and rule["against"] == 0.0
    assert "reassigned 4.00 times on average against 0.00" in p.explanation
    assert p.figures["baseline"] == 50.0 and p.figures["lower_is_better"] is False
    assert p.figures["metric"] == "sla_resolution"
    assert {e.role for e in p.evidence} == {"breach"} and len(p.evidence) == 20
    assert p.fingerprint == f"sla_breaches:resolution:service={vpn.pk}"
    assert p.impact == 3  # 20 breaches (2) on a critical service (+1)
    json.dumps(p.figures)


def test_waiting_states_are_process_too(org):
    erp = Service.objects.create(name="ERP")
    for i in range(40):
        breached = i % 2 == 0
        inc = incident(erp, MONDAY + dt.timedelta(days=i % 28, hours=i % 7), met=not breached, hours=20)
        IncidentActivity.objects.create(incident=inc, at=inc.opened_at, activity_type="Assignment")
        if breached:  # 12 of its 20 hours waiting for the vendor
            at = inc.opened_at + dt.timedelta(hours=2)
            IncidentActivity.objects.create(incident=inc, at=at, activity_type="Pending vendor")
            IncidentActivity.objects.create(
                incident=inc, at=at + dt.timedelta(hours=12), activity_type="Update"
            )

    p = run()[0]

    assert p.figures["cause"] == "process"
    rule = rules_of(p)["waiting"]
    assert rule["passed"] and rule["figure"] == pytest.approx(60.0)


def test_breaches_on_one_weekday_are_resource(org):
    desk = Service.objects.create(name="Portal")
    for week in range(16):
        for day in range(5):
            opened = MONDAY + dt.timedelta(weeks=week, days=day)
            incident(desk, opened, met=day != 0)  # Mondays breach, other days do not

    p = run()[0]

    assert p.figures["service"] == "Portal"
    assert p.figures["cause"] == "resource" and p.practice == "service_desk"
    rule = rules_of(p)["when"]
    assert rule["cell"] == "Monday" and rule["figure"] == 100.0 and rule["against"] == 0.0
    assert p.figures["when"]["weekday"]["Monday"] == {"incidents": 16, "breaches": 16, "share_pct": 100.0}


def test_a_deep_queue_is_resource(org):
    hr = Service.objects.create(name="HR")
    team = Team.objects.create(name="HR Applications")
    # Each afternoon the group gets 12 incidents; the morning's one arrives to an empty queue.
    for day in range(20):
        base = MONDAY + dt.timedelta(days=day)
        incident(hr, base - dt.timedelta(hours=2), met=True, hours=1, assignment_group=team)
        for j in range(12):
            incident(hr, base + dt.timedelta(hours=4, minutes=j), met=j < 10, hours=5, assignment_group=team)

    p = run()[0]

    rule = rules_of(p)["queue"]
    assert rule["passed"], rule
    assert rule["figure"] > 1.3 * rule["against"]
    assert p.figures["cause"] == "resource"


def test_one_configuration_item_behind_the_breaches_is_tooling(org):
    erp = Service.objects.create(name="ERP")
    batch = ConfigurationItem.objects.create(name="ERP batch scheduler", source="test", external_key="batch")
    app = ConfigurationItem.objects.create(name="ERP app", source="test", external_key="app")
    for i in range(60):
        on_batch = i % 3 == 0
        incident(
            erp,
            MONDAY + dt.timedelta(days=i % 28, hours=i % 7),
            met=not on_batch or i % 4 == 3,
            ci=batch if on_batch else app,
        )

    p = run()[0]

    assert p.figures["cause"] == "tooling" and p.practice == "problem"
    rule = rules_of(p)["ci"]
    assert rule["ci"] == "ERP batch scheduler" and rule["share_of_breaches_pct"] == 100.0
    assert "ERP batch scheduler carries 100 % of the breaches" in p.explanation


def test_no_rule_passing_leaves_the_cause_undetermined(org):
    hr = Service.objects.create(name="HR")
    for i in range(40):
        incident(hr, MONDAY + dt.timedelta(days=i % 20, hours=i % 5), met=i % 2 == 0)

    p = run()[0]

    assert p.figures["cause"] == "undetermined" and p.practice == "sla"
    assert "undetermined" in p.explanation


def test_response_targets_are_judged_apart(org):
    hr = Service.objects.create(name="HR")
    for i in range(30):
        incident(hr, MONDAY + dt.timedelta(days=i), met=i % 3 == 0, kind="response")
        incident(org, MONDAY + dt.timedelta(days=i), met=True, kind="response")

    found = run()

    assert [(p.figures["kind"], p.figures["service"]) for p in found] == [("response", "HR")]
    assert found[0].figures["metric"] == "sla_response"


def test_incidents_without_a_verdict_or_outside_the_window_are_left_out(org):
    hr = Service.objects.create(name="HR")
    for i in range(40):
        incident(hr, MONDAY + dt.timedelta(days=i), met=None)
        incident(hr, WINDOW.end + dt.timedelta(days=i), met=False)

    assert run() == []
