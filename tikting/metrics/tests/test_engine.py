"""Hand-computed figures; the suite runs on SQLite and PostgreSQL. Values are unrounded (rounding
is for display): a figure published with two decimals is checked as round(value, 2)."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from tikting.changes.models import Change
from tikting.incidents.models import Interaction
from tikting.metrics.engine import compute
from tikting.surveys.models import SurveyResponse

from .conftest import at, incident

pytestmark = pytest.mark.django_db


def test_mttr_total_mean_median_p90(mttr_data):
    # resolved: 1, 2, 3, 4, 10, 20 → mean 40/6; median rank 2.5 → 3.5; p90 rank 4.5 → 15
    r = compute("mttr")
    assert r.total.value == pytest.approx(40 / 6, abs=1e-9)  # unrounded: not 6.67
    assert r.total.value is not None and round(r.total.value, 2) == 6.67
    assert r.total.count == 6
    assert r.total.extra == {"median": 3.5, "p90": 15.0, "unresolved": 2, "missing_timestamps": 1}
    assert compute("mttr_median").total.value == 3.5
    assert compute("mttr_p90").total.value == 15.0


def test_mttr_by_month_fills_empty_months(mttr_data):
    r = compute("mttr", by="month")
    assert [p.label for p in r.points] == ["2024-01", "2024-02", "2024-03"]
    jan, feb, mar = r.points
    assert (jan.value, jan.count, jan.extra["median"], jan.extra["p90"]) == pytest.approx((4.25, 4, 3.0, 8.2))
    assert (feb.value, feb.count, feb.extra["median"]) == (None, 0, None)
    assert (mar.value, mar.count, mar.extra["median"], mar.extra["p90"]) == pytest.approx(
        (11.5, 2, 11.5, 18.3)
    )
    assert (mar.extra["unresolved"], mar.extra["missing_timestamps"]) == (2, 1)
    assert jan.key == "2024-01-01"


def test_mttr_by_week(mttr_data):
    r = compute("mttr", by="week", filters={"opened_from": "2024-01-01", "opened_to": "2024-01-21"})
    assert [(p.key, p.count, p.value) for p in r.points] == [
        ("2024-01-01", 3, pytest.approx(7 / 3)),
        ("2024-01-08", 1, 10.0),
        ("2024-01-15", 0, None),
    ]
    # Jan 8 2024 is a Monday: the 10 h incident opened on it belongs to the second week
    r = compute("mttr", by="week", filters={"opened_from": "2024-01-01", "opened_to": "2024-01-14"})
    assert [(p.key, p.count, p.value) for p in r.points] == [
        ("2024-01-01", 3, pytest.approx(7 / 3)),
        ("2024-01-08", 1, 10.0),
    ]


def test_mttr_sliced_by_priority_and_service(mttr_data):
    r = compute("mttr", by="priority")
    assert [(p.key, p.label, p.value, p.count, p.extra["median"], p.extra["p90"]) for p in r.points] == [
        (2, "2 - High", 2.0, 3, 2.0, pytest.approx(2.8)),
        (3, "3 - Moderate", pytest.approx(34 / 3), 3, 10.0, 18.0),
    ]
    email, network = mttr_data
    r = compute("mttr_median", by="service")
    assert [(p.key, p.label, p.value) for p in r.points] == [
        (email.pk, "E-mail", 2.0),
        (network.pk, "Network", 10.0),
    ]
    r = compute("mttr", by="practice")
    assert [(p.key, p.label, p.count) for p in r.points] == [("incident", "Incident management", 6)]


def test_mttr_filters(mttr_data):
    assert compute("mttr", filters={"priority": "2"}).total.value == 2.0
    assert compute("mttr", filters={"priority": "P3"}).total.value == pytest.approx(34 / 3)
    assert compute("mttr", filters={"service": "Network"}).total.count == 3
    assert compute("mttr", filters={"opened_from": "2024-03-01"}).total.value == 11.5
    assert compute("mttr", filters={"opened_to": "2024-01-31"}).total.value == 4.25
    assert compute("mttr", filters={"source": "bpic2014"}).total.value == 3.0
    assert compute("mttr", filters={"category": "hardware"}).total.value == 7.0
    assert compute("mttr", filters={"group": "Service desk"}).total.value == 1.5
    assert compute("mttr", filters={"status": "in_progress"}).total.extra["unresolved"] == 2
    assert compute("mttr", filters={"priority": "2,3"}).total.count == 6
    with pytest.raises(ValidationError):
        compute("mttr", filters={"colour": "red"})
    with pytest.raises(ValidationError):
        compute("mttr", filters={"opened_from": "yesterday"})
    with pytest.raises(ValidationError):
        compute("mttr", by="colour")
    with pytest.raises(ValidationError):
        compute("nope")


def test_empty_scope_gives_nulls(db):
    r = compute("mttr", by="month")
    assert (r.total.value, r.total.count, r.points) == (None, 0, [])
    assert compute("fcr_rate").total.value is None


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PERCENTILE_CONT is PostgreSQL's")
def test_percentile_cont_and_offset_agree(mttr_data):
    for by in (None, "month", "priority", "service"):
        sql = compute("mttr", by=by, percentiles="sql").as_dict()
        offset = compute("mttr", by=by, percentiles="offset").as_dict()
        assert sql == offset


def test_percentiles_odd_counts(services):
    for hours in (5, 1, 3, 2, 4, 100, 7):  # sorted 1 2 3 4 5 7 100
        incident(at(2024, 5, 1), hours)
    r = compute("mttr")
    # median rank 3 → 4; p90 rank 5.4 → 7 + 0.4 × 93 = 44.2
    assert (r.total.extra["median"], r.total.extra["p90"]) == pytest.approx((4.0, 44.2))


def test_fcr_interactions_and_incidents(mttr_data):
    for i, flag in enumerate([True, True, True, False, None]):
        Interaction.objects.create(
            number=f"SD{i}", opened_at=at(2024, 1, 2 + i), first_contact_resolution=flag
        )
    r = compute("fcr_rate")
    assert (r.total.value, r.total.count, r.total.extra) == (
        75.0,
        4,
        {"resolved_first_contact": 3, "unknown": 1, "unresolved": 5},  # no closed_at: still open
    )
    r = compute("incident_fcr_rate")
    assert (r.total.value, r.total.count, r.total.extra["unknown"]) == (50.0, 2, 8)


def test_changes_causing_incidents(services):
    """Outcome caused_incident, or an incident naming the change as its cause; cancelled left out."""
    made = [
        Change.objects.create(number=f"CHC{i}", opened_at=at(2024, 2, 1 + i), outcome=outcome, status=status)
        for i, (outcome, status) in enumerate(
            [("caused_incident", "closed"), ("", "closed"), ("", "closed"), ("", "new"), ("", "cancelled")]
        )
    ]
    incident(at(2024, 2, 10), 1, caused_by_change=made[1])
    incident(at(2024, 2, 11), 1, caused_by_change=made[1])  # two incidents, one change
    incident(at(2024, 2, 12), 1, caused_by_change=made[4])  # cancelled: not counted
    r = compute("change_incident_rate")
    assert (r.total.value, r.total.count) == (50.0, 4)
    assert r.total.extra == {"caused_incident": 2, "cancelled": 1, "unresolved": 1}  # the new one
    assert compute("change_success_rate").total.value == 0.0  # only one (caused_incident) outcome


def test_change_success(services):
    outcomes = ["successful", "successful", "successful", "failed", "backed_out", "caused_incident", ""]
    for i, outcome in enumerate(outcomes):
        Change.objects.create(
            number=f"CHG{i}",
            opened_at=at(2024, 2, 1 + i),
            outcome=outcome,
            unplanned=i in (0, 6),
            service=services[i % 2],
        )
    r = compute("change_success_rate")
    assert (r.total.value, r.total.count) == (50.0, 6)
    assert r.total.extra == {
        "successful": 3,
        "failed": 1,
        "backed_out": 1,
        "caused_incident": 1,
        "unplanned": 2,
        "no_outcome": 1,
        "unresolved": 7,  # every change is still new
    }
    r = compute("change_success_rate", by="service")
    # E-mail: 0 ok,2 ok,4 backed out,6 none → 2/3; Network: 1 ok,3 failed,5 caused → 1/3
    assert [(p.label, p.value, p.count) for p in r.points] == [
        ("E-mail", pytest.approx(200 / 3), 3),
        ("Network", pytest.approx(100 / 3), 3),
    ]
    with pytest.raises(ValidationError):
        compute("change_success_rate", by="priority")


def test_reopen_and_reassignment(services):
    incident(at(2024, 1, 1), 1, reassignment_count=0)
    incident(at(2024, 1, 2), 1, reassignment_count=2, reopen_count=1)
    incident(at(2024, 1, 3), 1, reassignment_count=1)
    incident(at(2024, 1, 4), status="in_progress")  # never resolved, count unknown
    r = compute("reopen_rate")
    assert (r.total.value, r.total.count, r.total.extra) == (
        pytest.approx(100 / 3),
        3,
        {"reopened": 1, "reopens": 1, "unresolved": 1},
    )
    r = compute("reassignment_rate")
    assert (r.total.value, r.total.count, r.total.extra) == (
        pytest.approx(200 / 3),
        3,
        {"reassigned": 2, "unknown": 1, "unresolved": 1},
    )
    r = compute("reassignment_mean")
    assert (r.total.value, r.total.count, r.total.extra) == (1.0, 3, {"unknown": 1, "unresolved": 1})


def test_backlog_and_age(services):
    incident(at(2024, 1, 10), resolved_at=at(2024, 2, 5), status="closed")
    incident(at(2024, 1, 20), status="in_progress")
    incident(at(2024, 2, 10), resolved_at=at(2024, 3, 15), status="resolved")
    incident(at(2024, 3, 1), closed_at=at(2024, 3, 2), status="closed")  # no resolved_at: closed_at ends it
    incident(at(2024, 3, 5), status="closed")  # no timestamp at all: left out
    now = at(2024, 4, 1)
    r = compute("backlog", by="month", now=now)
    assert [(p.label, p.value) for p in r.points] == [("2024-01", 2), ("2024-02", 2), ("2024-03", 1)]
    assert r.total.value == 1
    r = compute("backlog_age", by="month", now=now)
    # end Jan: 22 and 12 days; end Feb: 41 and 20; end Mar: 72
    assert [(p.label, p.value, p.count) for p in r.points] == [
        ("2024-01", 17.0, 2),
        ("2024-02", 30.5, 2),
        ("2024-03", 72.0, 1),
    ]
    assert (r.total.value, r.total.count) == (72.0, 1)
    # opened_to sets the "as of" instant of the total, not the population
    r = compute("backlog", filters={"opened_to": "2024-02-29"}, now=now)
    assert r.total.value == 2
    r = compute("backlog", by="priority", now=now)
    assert [(p.label, p.value) for p in r.points] == [("(none)", 1)]


def test_csat(services):
    email = services[0]
    for day, score in enumerate([5, 4, 3, 2], start=1):
        SurveyResponse.objects.create(score=score, responded_at=at(2024, 1, day), service=email)
    SurveyResponse.objects.create(score=5, responded_at=at(2024, 3, 1))
    r = compute("csat_mean")
    assert (r.total.value, r.total.count) == (3.8, 5)
    r = compute("csat_satisfied")
    assert (r.total.value, r.total.count, r.total.extra) == (60.0, 5, {"satisfied": 3, "unresolved": 0})
    r = compute("csat_mean", by="month")
    assert [(p.label, p.value, p.count) for p in r.points] == [
        ("2024-01", 3.5, 4),
        ("2024-02", None, 0),
        ("2024-03", 5.0, 1),
    ]
    r = compute("csat_mean", by="service")
    assert [(p.label, p.value) for p in r.points] == [("E-mail", 3.5), ("(none)", 5.0)]


def test_result_json_has_value_count_definition(mttr_data):
    d = compute("mttr", by="month").as_dict()
    assert d["metric"] == "mttr" and d["unit"] == "hours"
    assert d["definition"]["formula"].startswith("AVG(resolved_at")
    point = d["points"][0]
    assert {"value", "count", "definition"} <= set(point)
    assert dt.date.fromisoformat(point["key"]) == dt.date(2024, 1, 1)


def test_months_follow_the_site_time_zone(services, settings):
    incident(at(2024, 1, 31, 23, 30), 1)  # 00:30 on 1 February in Berlin
    assert [p.label for p in compute("mttr", by="month").points] == ["2024-01"]
    settings.TIME_ZONE = "Europe/Berlin"
    assert [(p.label, p.extra["median"]) for p in compute("mttr", by="month").points] == [("2024-02", 1.0)]
    assert [(p.key, p.value) for p in compute("mttr_p90", by="week").points] == [("2024-01-29", 1.0)]
    assert compute("mttr", filters={"opened_from": "2024-02-01"}).total.count == 1


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_wide_percentile_settings_are_put_back_for_the_callers_transaction(mttr_data):
    def setting(name):
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting(%s)", [name])
            return cursor.fetchone()[0]

    before = {name: setting(name) for name in ("work_mem", "parallel_setup_cost")}
    # wide: no selective filter (from the records: the rollup answers whole months)
    assert compute("mttr", by="month", cache=False, rollup=False).total.count == 6
    assert {name: setting(name) for name in before} == before
    # the rollup's rebuild raises work_mem for itself only too
    incident(at(2024, 3, 1, 9), 2)
    assert compute("mttr", by="month", cache=False).total.count == 7
    assert {name: setting(name) for name in before} == before
