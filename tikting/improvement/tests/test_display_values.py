"""Decimals and dates on the item page as people write them: 40, not 4E+1; 5 Dec 2026, not ISO."""

import datetime as dt
import json
import re
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from tikting.core.models import AuditEntry
from tikting.improvement import services as S
from tikting.improvement.models import Measurement
from tikting.lib.display import when
from tikting.test import noon, ready_item, resolved_incident

pytestmark = pytest.mark.django_db


def url(name, item, *args):
    return reverse(f"improvement:{name}", args=[item.pk, *args])


@pytest.fixture
def item(cast):
    item = ready_item(cast)
    S.update_indicator(item.indicators.get(), actor=cast.owner, baseline_value="40", target_value="20")
    return item


def test_a_measurement_of_40_reads_40_in_the_message_the_history_and_the_page(cast, login, item):
    indicator = item.indicators.get()
    client = login(cast.owner)
    response = client.post(
        url("measurement_add", item, indicator.pk), {f"m{indicator.pk}-value": "40"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert "Measured MTTR: 40 h." in text
    assert "E+" not in text
    entry = AuditEntry.objects.filter(message__startswith="Measured").latest("id")
    assert entry.message == "Measured MTTR: 40"
    assert entry.changes["value"] == [None, "40"]
    assert str(Measurement.objects.get()).startswith("40 at ")
    page = client.get(item.get_absolute_url()).content.decode()
    assert "E+1" not in page
    assert "Measured MTTR: 40" in page


def test_form_inputs_show_decimals_as_written(cast, login, item):
    indicator = item.indicators.get()
    page = login(cast.owner).get(item.get_absolute_url()).content.decode()
    assert f'name="ind{indicator.pk}-baseline_value" value="40"' in page
    assert f'name="ind{indicator.pk}-target_value" value="20"' in page
    assert 'value="4E+1"' not in page and 'value="2E+1"' not in page


def test_dates_in_the_timeline_are_in_the_ui_format(cast, login, item):
    S.update_item(item, actor=cast.manager, target_date=dt.date(2027, 3, 5))
    page = login(cast.manager).get(item.get_absolute_url()).content.decode()
    assert "5 Mar 2027" in page  # the change of the target date
    assert "2027-03-05" not in page
    # no raw timestamp anywhere in the visible text (machine-readable attributes aside)
    visible = re.sub(r"<[^>]+>", " ", re.sub(r"<script.*?</script>", " ", page, flags=re.S))
    assert not re.search(r"\d{4}-\d{2}-\d{2}", visible)


def test_the_indicator_chart_places_points_by_time(cast, login, item):
    indicator = item.indicators.get()
    now = timezone.now()
    for days, value in ((30, "38"), (29, "35"), (1, "22.5")):
        S.record_measurement(
            indicator, actor=cast.owner, value=value, measured_at=now - dt.timedelta(days=days)
        )
    page = login(cast.owner).get(item.get_absolute_url()).content.decode()
    raw = re.search(
        r'<script id="indicator-chart-\d+-data" type="application/json">(.*?)</script>', page, re.S
    )
    assert raw is not None
    chart = json.loads(raw.group(1))
    xs = [p["x"] for p in chart["points"]]
    # spaced by date: one day between the first two, four weeks between the last two
    assert xs[1] - xs[0] == 86_400_000
    assert xs[2] - xs[1] == 28 * 86_400_000
    assert chart["values"] == ["38", "35", "22.5"]
    assert chart["min"] <= xs[0] and chart["max"] >= xs[-1]
    assert chart["ticks"] and all(chart["min"] <= t["value"] <= chart["max"] for t in chart["ticks"])
    assert Decimal(chart["values"][2]) == Decimal("22.5")


def test_a_bound_metric_is_named_and_its_window_dated_in_the_ui_format(cast, login, item):
    today = timezone.localdate()
    resolved_incident("INC-1", cast.email, noon(today - dt.timedelta(days=10)), 6)
    S.bind_indicator(
        item.indicators.get(),
        actor=cast.owner,
        metric_key="mttr",
        scope={"service": "E-mail"},
        window_start=today - dt.timedelta(days=30),
        window_end=today - dt.timedelta(days=1),
    )
    page = login(cast.owner).get(item.get_absolute_url()).content.decode()
    timeline = page[page.index('id="item-timeline"') :]
    assert "MTTR (mean time to resolve)" in timeline  # the metric key's change, by name
    assert '<span class="tk-new">mttr</span>' not in timeline
    window = f"{when(today - dt.timedelta(days=30))} to {when(today - dt.timedelta(days=1))}"
    assert f"computed: MTTR (mean time to resolve), service E-mail, {window} by resolved date" in page
