"""Figures that do not mislead: incomplete periods, the date that places a record, units, full
precision and checked filters. Hand-computed; the suite runs on SQLite and PostgreSQL."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from tikting.accounts.models import Team
from tikting.changes.models import Change
from tikting.incidents.models import Incident, Interaction
from tikting.metrics.engine import compute
from tikting.metrics.models import CachedResult

from .conftest import at, incident

pytestmark = pytest.mark.django_db

APRIL = at(2024, 4, 15)  # "now" in the tests that pass one: March has ended, April has not


def by_label(result) -> dict:
    return {p.label: p for p in result.points}


# --- Incomplete periods ----------------------------------------------------------------------------


def test_a_month_with_open_incidents_is_incomplete_and_says_how_many(mttr_data):
    """MTTR of March leaves out its two open incidents: it looks better than it is, so it says so."""
    months = by_label(compute("mttr", by="month", now=APRIL))
    assert (months["2024-01"].extra["unresolved"], months["2024-01"].incomplete) == (0, False)
    assert (months["2024-02"].count, months["2024-02"].incomplete) == (0, False)
    assert (months["2024-03"].extra["unresolved"], months["2024-03"].incomplete) == (2, True)
    assert compute("mttr", by="month", now=APRIL).as_dict()["points"][2]["incomplete"] is True


def test_a_period_not_ended_yet_is_incomplete_even_without_open_records(services):
    incident(at(2024, 4, 2, 9), 3)
    incident(at(2024, 3, 2, 9), 5)
    months = by_label(compute("mttr", by="month", now=APRIL))
    assert (months["2024-03"].incomplete, months["2024-04"].incomplete) == (False, True)
    assert months["2024-04"].extra["unresolved"] == 0  # incomplete because April has not ended
    assert (months["2024-03"].ended, months["2024-04"].ended) == (True, False)
    weeks = compute("mttr", by="week", now=at(2024, 4, 7, 23, 59))  # Sunday night: week of 1 April
    assert [(p.key, p.incomplete) for p in weeks.points][-1] == ("2024-04-01", True)
    # a total over a window that ends today is incomplete too; one that has ended is not
    assert compute("mttr", filters={"date_to": "2024-04-15"}, now=APRIL).total.incomplete is True
    assert compute("mttr", filters={"date_to": "2024-03-31"}, now=APRIL).total.incomplete is False


def test_every_family_counts_its_open_records_per_period(services):
    """Rates by month leave open records out of their figure too (a reopen, a reassignment, an SLA
    verdict, a change outcome still to come): each period says how many, from the same query."""
    incident(at(2024, 1, 3), 1, reassignment_count=0)
    incident(at(2024, 1, 4), status="in_progress", reassignment_count=1)
    Change.objects.create(number="CH1", opened_at=at(2024, 1, 5), outcome="successful", status="closed")
    Change.objects.create(number="CH2", opened_at=at(2024, 1, 6), status="implementing")
    Interaction.objects.create(number="SD1", opened_at=at(2024, 1, 7), first_contact_resolution=True)
    for key, unresolved in [
        ("reopen_rate", 1),
        ("reassignment_rate", 1),
        ("reassignment_mean", 1),
        ("sla_resolution", 1),
        ("incident_fcr_rate", 1),
        ("change_success_rate", 1),
        ("change_incident_rate", 1),
        ("fcr_rate", 1),  # no closed_at: the interaction is still open
    ]:
        (january,) = compute(key, by="month", now=APRIL).points
        assert (key, january.extra["unresolved"], january.incomplete) == (key, unresolved, True)


def test_resolved_date_places_records_by_resolution_and_past_periods_are_complete(mttr_data):
    """By resolution date a past period holds only resolved incidents: its figure is final."""
    r = compute("mttr", by="month", date_field="resolved", now=APRIL)
    # resolved: Jan 1, 2, 4, 10 h (all in January); Mar 3 and 20 h (the reopened one, final resolution)
    assert [(p.label, p.value, p.count, p.extra["unresolved"], p.incomplete) for p in r.points] == [
        ("2024-01", 4.25, 4, 0, False),
        ("2024-02", None, 0, 0, False),
        ("2024-03", 11.5, 2, 0, False),
    ]
    assert (r.date_field, r.as_dict()["date_field"]) == ("resolved", "resolved")
    # still-open incidents, and the one reopened and open again, are in no period
    assert r.total.count == 6 and r.total.extra["unresolved"] == 0
    # the window applies to the resolution date
    late = incident(at(2024, 3, 30, 20), 10)  # opened in March, resolved on 31 March 06:00
    assert late.resolved_at is not None and late.resolved_at.month == 3
    april = compute(
        "mttr", filters={"date_from": "2024-03-31", "date_to": "2024-03-31"}, date_field="resolved"
    )
    assert (april.total.value, april.total.count) == (10.0, 1)


def test_closed_date_for_changes_and_dates_a_kind_lacks_are_refused(services):
    Change.objects.create(
        number="C1", opened_at=at(2024, 1, 30), closed_at=at(2024, 2, 2), outcome="failed", status="closed"
    )
    Change.objects.create(number="C2", opened_at=at(2024, 1, 31), outcome="", status="implementing")
    r = compute("change_success_rate", by="month", date_field="closed", now=APRIL)
    assert [(p.label, p.value, p.count, p.incomplete) for p in r.points] == [("2024-02", 0.0, 1, False)]
    with pytest.raises(ValidationError) as caught:
        compute("change_success_rate", date_field="resolved")
    assert "Accepted: opened, closed" in str(caught.value)
    with pytest.raises(ValidationError, match="opened"):
        compute("csat_mean", date_field="closed")
    with pytest.raises(ValidationError, match="backlog"):
        compute("backlog", date_field="resolved")
    with pytest.raises(ValidationError, match="not a date field"):
        compute("mttr", date_field="reported")


def test_opened_from_is_the_window_of_the_opening_date_only(mttr_data):
    assert compute("mttr", filters={"opened_from": "2024-03-01"}).filters == {
        "date_from": dt.date(2024, 3, 1)
    }
    with pytest.raises(ValidationError, match="use date_from"):
        compute("mttr", filters={"opened_from": "2024-03-01"}, date_field="resolved")
    with pytest.raises(ValidationError, match="not both"):
        compute("mttr", filters={"opened_from": "2024-03-01", "date_from": "2024-02-01"})
    with pytest.raises(ValidationError, match="starts after it ends"):
        compute("mttr", filters={"date_from": "2024-03-01", "date_to": "2024-02-01"})


def test_backlog_of_a_period_not_ended_is_counted_now_not_at_its_future_end(services):
    """The current month's backlog "at its end" was counted at a future instant: every open
    incident aged by the days left in the month. It is counted now and marked incomplete."""
    incident(at(2024, 4, 5), status="in_progress")
    incident(at(2024, 3, 25), resolved_at=at(2024, 4, 10), status="resolved")
    r = compute("backlog_age", by="month", now=APRIL)
    march, april = r.points
    assert (march.value, march.count, march.incomplete) == (pytest.approx(7.0), 1, False)  # 25 → 1 April
    assert (april.value, april.count, april.incomplete) == (pytest.approx(10.0), 1, True)  # 5 → 15 April
    assert april.extra["as_of"] == APRIL.isoformat()
    # a window reaching into the future is counted now, and incomplete
    total = compute("backlog", filters={"date_to": "2024-04-30"}, now=APRIL).total
    assert (total.value, total.extra["as_of"], total.incomplete) == (1, APRIL.isoformat(), True)


def test_incomplete_is_judged_against_the_current_time_when_an_answer_is_reused(services):
    now = timezone.now()
    incident(now - dt.timedelta(hours=5), 1)
    first = compute("mttr", by="month")
    assert first.points[-1].incomplete is True  # this month has not ended
    assert CachedResult.objects.count() == 1
    again = compute("mttr", by="month")  # from the cache: judged again
    assert again.points[-1].incomplete is True
    assert "incomplete" not in str(CachedResult.objects.get().payload["points"])


# --- Units and precision ---------------------------------------------------------------------------


def test_durations_in_minutes_hours_or_days_unrounded(mttr_data):
    hours = compute("mttr")
    minutes = compute("mttr", unit="minutes")
    days = compute("mttr", unit="days")
    assert hours.total.value == pytest.approx(40 / 6, abs=1e-9)
    assert minutes.total.value == pytest.approx(400.0, abs=1e-6)  # 40/6 h × 60, unrounded
    assert days.total.value == pytest.approx(40 / 6 / 24, abs=1e-12)
    assert minutes.total.extra["median"] == pytest.approx(210.0) and minutes.total.extra[
        "p90"
    ] == pytest.approx(900.0)
    assert (minutes.unit, minutes.as_dict()["unit"], minutes.decimals) == ("minutes", "minutes", 1)
    assert minutes.columns()[:6] == [
        "key",
        "label",
        "value_minutes",
        "count",
        "median_minutes",
        "p90_minutes",
    ]
    assert compute("backlog_age", unit="hours").unit == "hours"
    assert compute("mttr", unit="hours").total.value == hours.total.value
    with pytest.raises(ValidationError, match="durations only"):
        compute("reopen_rate", unit="days")
    with pytest.raises(ValidationError, match="not a unit"):
        compute("mttr", unit="fortnights")
    # a different unit, or date field, is a different question for the cache
    assert CachedResult.objects.count() == 4


def test_csv_has_the_unit_in_its_headers_and_unrounded_values(mttr_data):
    text = compute("mttr", by="month", unit="days").to_csv()
    header, january = text.splitlines()[:2]
    assert header == (
        "key,label,value_days,count,median_days,p90_days,unresolved,missing_timestamps,incomplete"
    )
    assert january.startswith(f"2024-01-01,2024-01,{4.25 / 24!r},4,")
    assert january.endswith(",0,0,false")
    assert compute("reopen_rate").columns()[2] == "value_percent"


# --- Filters that are checked ----------------------------------------------------------------------


def test_choice_values_match_case_insensitively(mttr_data):
    assert (
        compute("mttr", filters={"status": "Closed"}).total.count
        == compute("mttr", filters={"status": "closed"}).total.count
    )
    assert compute("mttr", filters={"status": "In progress"}).total.extra["unresolved"] == 2  # the label
    assert compute("mttr", filters={"priority": "high"}).total.count == 3
    assert compute("mttr", filters={"priority": "p2"}).total.count == 3
    assert compute("mttr", filters={"service": "e-mail"}).total.count == 3
    assert compute("mttr", filters={"group": "SERVICE DESK"}).total.count == 2
    assert compute("mttr", filters={"source": "BPIC2014"}).total.count == 1
    assert compute("mttr", filters={"category": "Hardware"}).total.count == 2


@pytest.mark.parametrize(
    ("filters", "field", "message"),
    [
        ({"status": "Shut"}, "status", "Accepted: new, in_progress, on_hold, resolved, closed, cancelled"),
        ({"priority": "9"}, "priority", "Accepted: 1-5, P1-P5"),
        ({"source": "bpic2041"}, "source", "checked against the values present in the records"),
        ({"category": "hardwear"}, "category", "Present: hardware"),
        ({"service": "Emial"}, "service", "Accepted (names or ids): E-mail, Network"),
        ({"service": "999999"}, "service", "No service with id 999999"),
        ({"group": "Nobody"}, "group", "Service desk"),
        ({"colour": "red"}, "colour", "the filters are source, date_from"),
    ],
)
def test_a_value_that_matches_nothing_is_an_error_listing_the_accepted(mttr_data, filters, field, message):
    with pytest.raises(ValidationError) as caught:
        compute("mttr", filters=filters)
    assert field in caught.value.message_dict
    assert message in " ".join(caught.value.message_dict[field])


def test_a_source_with_no_records_of_the_metrics_kind_is_known_not_an_error(mttr_data):
    """bpic2014 has incidents but no changes: its change rate is empty (null), not an error."""
    r = compute("change_success_rate", filters={"source": "bpic2014"})
    assert (r.total.value, r.total.count) == (None, 0)
    Team.objects.create(name="Empty team")
    assert compute("mttr", filters={"group": "Empty team"}).total.count == 0  # known, no incident
    assert Incident.objects.filter(status="cancelled").exists()  # (the fixture has every status)
