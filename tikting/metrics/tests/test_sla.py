"""SLA due times (24×7 and business hours), apply_slas, and compliance on both bases."""

import datetime as dt
import zoneinfo

import pytest
from django.core.exceptions import ValidationError

from tikting.incidents.models import Incident
from tikting.metrics.engine import compute
from tikting.slas.models import SLADefinition
from tikting.slas.verdicts import (
    BusinessCalendar,
    add_working_minutes,
    apply_slas,
    select_definition,
    working_minutes_between,
)

from .conftest import at, incident

OFFICE = BusinessCalendar(
    always=False, day_start=8, day_end=18, weekdays=frozenset({0, 1, 2, 3, 4}), tz=dt.UTC
)


def test_friday_17h_plus_4_business_hours_is_monday_11h():
    friday = at(2024, 3, 1, 17)  # a Friday
    assert add_working_minutes(friday, 240, OFFICE) == at(2024, 3, 4, 11)
    assert working_minutes_between(friday, at(2024, 3, 4, 11), OFFICE) == 240
    assert add_working_minutes(friday, 240, BusinessCalendar()) == at(2024, 3, 1, 21)


def test_business_hours_edges():
    # opened on Saturday: the clock starts Monday 08:00
    assert add_working_minutes(at(2024, 3, 2, 10), 60, OFFICE) == at(2024, 3, 4, 9)
    # opened before the day starts; exactly one full day
    assert add_working_minutes(at(2024, 3, 4, 6), 600, OFFICE) == at(2024, 3, 4, 18)
    # a full day plus one minute runs into the next day
    assert add_working_minutes(at(2024, 3, 4, 8), 601, OFFICE) == at(2024, 3, 5, 8, 1)
    assert working_minutes_between(at(2024, 3, 1, 19), at(2024, 3, 4, 7), OFFICE) == 0
    assert working_minutes_between(at(2024, 3, 4, 9), at(2024, 3, 4, 8), OFFICE) == 0


def test_business_hours_follow_local_time_across_dst():
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    cal = BusinessCalendar(always=False, tz=berlin)
    # Friday 29 Mar 2024 17:00 CET = 16:00 UTC; DST starts Sunday; Monday 11:00 CEST = 09:00 UTC
    start = dt.datetime(2024, 3, 29, 17, tzinfo=berlin)
    assert add_working_minutes(start, 240, cal) == dt.datetime(2024, 4, 1, 9, tzinfo=dt.UTC)


@pytest.fixture
def sla_data(services):
    email, network = services
    SLADefinition.objects.create(name="P1 24x7", priority=1, response_minutes=15, resolution_minutes=120)
    SLADefinition.objects.create(
        name="P2 office", priority=2, response_minutes=60, resolution_minutes=240, calendar="business"
    )
    fri, sat = at(2024, 3, 1, 17), at(2024, 3, 2, 10)
    mins = dt.timedelta(minutes=1)
    rows = [
        # P2 business hours: response due Fri 18:00, resolution due Mon 11:00
        incident(
            fri,
            priority=2,
            responded_at=fri + 30 * mins,
            resolved_at=at(2024, 3, 4, 10, 30),
            status="closed",
            source_sla_met=True,
            service=email,
        ),
        incident(
            fri,
            priority=2,
            responded_at=at(2024, 3, 4, 8, 30),
            resolved_at=at(2024, 3, 4, 11, 30),
            status="closed",
            source_sla_met=False,
            service=email,
        ),
        # P1 24×7: response due 10:15, resolution due 12:00
        incident(
            sat,
            priority=1,
            responded_at=sat + 10 * mins,
            resolved_at=sat + 90 * mins,
            status="closed",
            service=network,
        ),
        incident(
            sat,
            priority=1,
            responded_at=sat + 10 * mins,
            resolved_at=sat + 180 * mins,
            status="closed",
            service=network,
        ),
        # no SLA for P3; the source says met
        incident(sat, 1, priority=3, source_sla_met=True, service=network),
        # still open, long past due
        incident(sat, priority=1, status="in_progress", service=network),
    ]
    assert apply_slas(now=at(2024, 3, 10)) == 6
    return rows


def test_apply_slas_fills_due_times_and_flags(sla_data):
    first, second, p1_ok, p1_late, no_sla, still_open = (Incident.objects.get(pk=i.pk) for i in sla_data)
    assert first.resolution_due_at == at(2024, 3, 4, 11)
    assert first.response_due_at == at(2024, 3, 1, 18)
    assert (first.response_met, first.resolution_met) == (True, True)
    assert (second.response_met, second.resolution_met) == (False, False)
    assert (p1_ok.response_met, p1_ok.resolution_met) == (True, True)
    assert (p1_late.response_met, p1_late.resolution_met) == (True, False)
    assert (no_sla.resolution_due_at, no_sla.resolution_met, no_sla.source_sla_met) == (None, None, True)
    assert (still_open.response_met, still_open.resolution_met) == (False, False)


def test_pending_incident_is_not_evaluated(services):
    SLADefinition.objects.create(name="P1", priority=1, response_minutes=15, resolution_minutes=120)
    pending = incident(at(2024, 3, 2, 10), priority=1, status="new")
    apply_slas(now=at(2024, 3, 2, 10, 5))
    pending.refresh_from_db()
    assert (pending.response_met, pending.resolution_met) == (None, None)
    assert pending.resolution_due_at == at(2024, 3, 2, 12)


def test_service_definition_wins(services):
    email, network = services
    general = SLADefinition.objects.create(name="P1", priority=1, resolution_minutes=120)
    own = SLADefinition.objects.create(name="P1 net", priority=1, resolution_minutes=60, service=network)
    defs = {(d.service_id, d.priority): d for d in SLADefinition.objects.all()}
    assert select_definition(defs, network.pk, 1) == own
    assert select_definition(defs, email.pk, 1) == general
    assert select_definition(defs, None, 1) == general
    assert select_definition(defs, network.pk, None) is None


def test_sla_compliance_from_definitions(sla_data):
    r = compute("sla_response")
    # met: first, p1_ok, p1_late; breached: second, still_open; no SLA: P3
    assert (r.basis, r.total.value, r.total.count) == ("definitions", 60.0, 5)
    assert r.total.extra == {"met": 3, "breached": 2, "not_evaluated": 1, "unresolved": 1}  # still_open
    r = compute("sla_resolution")
    assert (r.basis, r.total.value, r.total.count) == ("definitions", 40.0, 5)
    assert r.as_dict()["points"] == [] and r.as_dict()["basis"] == "definitions"
    r = compute("sla_resolution", by="priority")
    assert [(p.key, p.value, p.count) for p in r.points] == [
        (1, pytest.approx(100 / 3), 3),
        (2, 50.0, 2),
        (3, None, 0),
    ]
    assert all(p["basis"] == "definitions" for p in r.as_dict()["points"])


def test_sla_compliance_from_source_flag(sla_data):
    r = compute("sla_resolution", basis="source")
    assert (r.basis, r.total.value, r.total.count) == ("source", pytest.approx(200 / 3), 3)
    # auto: no computed flag in this scope (P3 has no SLA definition) → the source's flag
    r = compute("sla_resolution", filters={"priority": "3"})
    assert (r.basis, r.total.value, r.total.count) == ("source", 100.0, 1)
    with pytest.raises(ValidationError):
        compute("sla_response", basis="source")
    with pytest.raises(ValidationError):
        compute("sla_resolution", basis="guess")
