"""Numbers and dates as people read them (tikting/lib/display.py, the `number` and `when` filters)."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.template import Context, Template
from django.test import override_settings

from tikting.lib import display


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal("40.0000"), "40"),
        (Decimal("4E+1"), "40"),
        (Decimal("1E+2"), "100"),
        (Decimal("2.500"), "2.5"),
        (Decimal("-0.1250"), "-0.125"),
        (Decimal("0E-10"), "0"),
        (Decimal("-0.00"), "0"),
        (Decimal("0.00001"), "0.00001"),
        (17.3, "17.3"),
        (3.0, "3"),
        (1e-07, "0.0000001"),
        (40, "40"),
        ("40.50", "40.5"),
        (None, ""),
        ("", ""),
        ("n/a", "n/a"),
    ],
)
def test_number_as_people_write_it(value, shown):
    assert display.number(value) == shown


@override_settings(TIME_ZONE="Europe/Paris", DATE_FORMAT="j M Y", DATETIME_FORMAT="j M Y, H:i")
def test_when_uses_the_settings_and_the_time_zone():
    at = dt.datetime(2026, 12, 31, 23, 30, tzinfo=dt.UTC)  # 1 Jan 2027, 00:30 in Paris
    assert display.when(at) == "1 Jan 2027, 00:30"
    assert display.when(at, "date") == "1 Jan 2027"
    assert display.when(dt.date(2026, 3, 5)) == "5 Mar 2026"
    # as the audit trail keeps them: ISO text
    assert display.when("2026-03-05") == "5 Mar 2026"
    assert display.when("2026-12-31T23:30:00+00:00") == "1 Jan 2027, 00:30"
    assert display.when(None) == display.when("") == ""
    assert display.when("not a date") == "not a date"


@override_settings(DATE_FORMAT="d/m/Y", DATETIME_FORMAT="d/m/Y H:i")
def test_the_format_is_a_setting():
    assert display.when(dt.date(2026, 3, 5)) == "05/03/2026"


def test_template_filters_are_builtin():
    """No {% load %}: every template, fragment or page, has them."""
    text = Template('{{ d|number }} · {{ day|when }} · {{ at|when:"date" }}').render(
        Context(
            {
                "d": Decimal("4E+1"),
                "day": dt.date(2026, 12, 5),
                "at": dt.datetime(2026, 12, 5, 10, 0, tzinfo=dt.UTC),
            }
        )
    )
    assert text == "40 · 5 Dec 2026 · 5 Dec 2026"


@override_settings(TIME_ZONE="America/New_York")
def test_time_ticks_fall_on_local_boundaries():
    zone = ZoneInfo("America/New_York")
    start = dt.datetime(2026, 7, 22, 9, 0, tzinfo=zone)
    # four months: a tick on the first of each month, local midnight
    ticks = display.time_ticks(start, dt.datetime(2026, 11, 20, 9, 0, tzinfo=zone))
    assert [label for _, label in ticks] == ["Aug 2026", "Sep 2026", "Oct 2026", "Nov 2026"]
    assert all(at.astimezone(zone).hour == 0 and at.astimezone(zone).day == 1 for at, _ in ticks)
    # ten days: daily ticks; two years: at most eight
    daily = display.time_ticks(start, start + dt.timedelta(days=5))
    assert [label for _, label in daily] == ["23 Jul", "24 Jul", "25 Jul", "26 Jul", "27 Jul"]
    assert len(display.time_ticks(start, start + dt.timedelta(days=730))) <= 8


def test_number_rounds_for_display_when_asked():
    assert display.number(579.6064814814815, 2) == "579.61"
    assert display.number(0.3877551020408163, 2) == "0.39"
    assert display.number(35.0, 2) == "35"
    assert display.number(Decimal("4E+1"), 2) == "40"
    assert display.number("VPN access", 2) == "VPN access"  # text passes as it is
    assert display.number(True, 2) == "True"
    rendered = Template("{{ a|number:2 }} {{ b|number:2 }}").render(Context({"a": 2.0 / 3, "b": "x<y"}))
    assert rendered == "0.67 x&lt;y"  # still escaped


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, ""),
        (0.42, "0.4 s"),
        (dt.timedelta(seconds=12.3), "12 s"),
        (dt.timedelta(minutes=3, seconds=5), "3 min 5 s"),
        (dt.timedelta(minutes=38), "38 min"),
        (dt.timedelta(hours=3, minutes=10), "3 h 10 min"),
        (dt.timedelta(days=3, hours=4, minutes=59), "3 d 4 h"),
        (-75, "-1 min 15 s"),
    ],
)
def test_duration_in_its_two_largest_units(value, shown):
    assert display.duration(value) == shown
    assert Template("{{ v|duration }}").render(Context({"v": value})) == shown
