"""Indicators bound to a tikting metric: baselines and measurements computed from the records."""

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.utils import timezone

from tikting.improvement import choices as C
from tikting.improvement import services as S
from tikting.improvement.models import Measurement
from tikting.improvement.services.indicators import binding_date_field
from tikting.incidents.models import Incident
from tikting.lib.display import when
from tikting.test import noon, ready_item, resolved_incident

pytestmark = pytest.mark.django_db


def test_the_baseline_is_computed_from_the_records_in_scope(cast):
    today = timezone.localdate()
    for n, hours in enumerate([4, 8, 12]):
        resolved_incident(f"INC{n}", cast.email, noon(today - dt.timedelta(days=40 + n)), hours)
    resolved_incident(
        "INC-P3", cast.email, noon(today - dt.timedelta(days=41)), 100, priority=3
    )  # out of scope
    resolved_incident("INC-NET", cast.network, noon(today - dt.timedelta(days=41)), 100)  # out of scope
    resolved_incident("INC-OLD", cast.email, noon(today - dt.timedelta(days=200)), 100)  # before the window
    item = ready_item(cast)
    indicator = item.indicators.get()
    indicator = S.bind_indicator(
        indicator,
        actor=cast.owner,
        metric_key="mttr",
        scope={"service": "E-mail", "priority": "2"},
        window_start=today - dt.timedelta(days=90),
        window_end=today - dt.timedelta(days=30),
    )
    assert indicator.baseline_value == Decimal("8")
    assert indicator.direction == "lower"
    assert "3 records" in indicator.baseline_method and indicator.baseline_method.startswith("computed")


def test_binding_explains_what_cannot_be_used(cast):
    indicator = ready_item(cast).indicators.get()
    today = timezone.localdate()
    window: dict[str, Any] = {"window_start": today - dt.timedelta(days=30), "window_end": today}
    with pytest.raises(ValidationError) as err:
        S.bind_indicator(indicator, actor=cast.owner, metric_key="speed", **window)
    assert "metric_key" in err.value.message_dict
    with pytest.raises(ValidationError) as err:
        S.bind_indicator(indicator, actor=cast.owner, metric_key="mttr", **window)
    assert "window_start" in err.value.message_dict  # no incidents at all: no baseline


def acting_on_mail_mttr(cast, settings, today: dt.date) -> tuple[Any, Any]:
    """An item bound to MTTR of E-mail (baseline 10 h, 60 days ago), measured every 30 days."""
    settings.TIKTING_MEASUREMENT_INTERVAL_DAYS = 30
    resolved_incident("INC-B", cast.email, noon(today - dt.timedelta(days=60)), 10)
    item = ready_item(cast)
    indicator = S.bind_indicator(
        item.indicators.get(),
        actor=cast.owner,
        metric_key="mttr",
        scope={"service": "E-mail"},
        window_start=today - dt.timedelta(days=90),
        window_end=today - dt.timedelta(days=31),
    )
    return item, indicator


def test_acting_items_are_measured_from_the_records_each_interval(cast, settings):
    today = timezone.localdate()
    item, indicator = acting_on_mail_mttr(cast, settings, today)
    S.update_indicator(indicator, actor=cast.owner, target_value="6")
    item = S.transition_item(item, actor=cast.owner, to="action")
    resolved_incident("INC-1", cast.email, noon(today - dt.timedelta(days=3)), 4)
    resolved_incident("INC-2", cast.email, noon(today - dt.timedelta(days=2)), 6)
    assert S.take_computed_measurements(today=today) == 1
    assert S.take_computed_measurements(today=today) == 0  # once per interval
    measurement = indicator.measurements.get()
    assert measurement.value == Decimal("5") and measurement.source == Measurement.Source.COMPUTED
    S.update_action(item.actions.get(), actor=cast.owner, done=True)
    item = S.transition_item(item, actor=cast.owner, to="evaluation")
    assert S.evaluate_item(item, actor=cast.owner).evaluation_result == C.EvaluationResult.ACHIEVED


def test_housekeeping_takes_the_computed_measurements(cast, capsys):
    call_command("register", "housekeeping")
    assert "Measurements computed from records: 0" in capsys.readouterr().out


def test_the_api_binds_an_indicator_and_names_bad_input(cast, client):
    today = timezone.localdate()
    resolved_incident("INC-A", cast.email, noon(today - dt.timedelta(days=10)), 6)
    indicator = ready_item(cast).indicators.get()
    client.force_login(cast.owner)
    body = {
        "metric_key": "mttr",
        "scope": {"service": "E-mail"},
        "expected_version": indicator.version,
        "window_start": (today - dt.timedelta(days=30)).isoformat(),
        "window_end": today.isoformat(),
    }
    url = f"/api/indicators/{indicator.pk}/bind"
    response = client.post(url, body, content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json()["baseline_value"] in ("6", "6.0000", "6.0")
    response = client.post(
        url,
        {**body, "metric_key": "speed", "expected_version": indicator.version + 1},
        content_type="application/json",
    )
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["detail"]} == {"metric_key"}


def test_computed_measurements_are_final_figures_placed_by_resolution_date(cast, settings):
    """By opening date the last interval left out the long incident opened before it and the one
    still open, and counted today, which has not ended: MTTR looked like 2 h while an incident had
    taken 35 days. Measured by resolution date up to yesterday, the figure is final."""
    today = timezone.localdate()
    item, indicator = acting_on_mail_mttr(cast, settings, today)
    S.transition_item(item, actor=cast.owner, to="action")
    resolved_incident(
        "INC-LONG", cast.email, noon(today - dt.timedelta(days=40)), 35 * 24
    )  # resolved 5 days ago
    resolved_incident("INC-1", cast.email, noon(today - dt.timedelta(days=3)), 4)
    Incident.objects.create(
        number="INC-OPEN",
        service=cast.email,
        priority=2,
        status="in_progress",
        opened_at=noon(today - dt.timedelta(days=4)),
    )
    resolved_incident(
        "INC-TODAY", cast.email, timezone.now() - dt.timedelta(minutes=2), 1 / 60
    )  # today: not ended
    assert S.take_computed_measurements(today=today) == 1
    measurement = indicator.measurements.get()
    assert measurement.value == Decimal("422")  # (840 + 4) / 2
    start, end = today - dt.timedelta(days=30), today - dt.timedelta(days=1)
    assert measurement.note == f"{when(start)} to {when(end)} by resolved date, 2 records"
    assert S.metric_value("mttr", {"service": "E-mail"}, start, end).complete is True
    assert S.metric_value("mttr", {"service": "E-mail"}, start, today).complete is False  # today


def test_a_baseline_over_a_window_not_ended_says_what_it_covers(cast):
    today = timezone.localdate()
    resolved_incident("INC-A", cast.email, noon(today - dt.timedelta(days=10)), 6)
    resolved_incident(
        "INC-EARLY", cast.email, noon(today - dt.timedelta(days=100)), 80 * 24
    )  # resolved 20 days ago
    indicator = S.bind_indicator(
        ready_item(cast).indicators.get(),
        actor=cast.owner,
        metric_key="mttr",
        scope={"service": "E-mail"},
        window_start=today - dt.timedelta(days=30),
        window_end=today,
    )
    assert indicator.baseline_value == Decimal("963")  # (6 + 1920) / 2: resolved in the window
    assert (
        f"{when(today - dt.timedelta(days=30))} to {when(today)} by resolved date (window not ended: as of "
        in (indicator.baseline_method)
    )
    assert binding_date_field("change_success_rate") == "closed"
    assert binding_date_field("csat_mean") == "opened" and binding_date_field("backlog") == "opened"
