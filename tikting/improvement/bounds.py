"""Bounds on what the register takes in, in one place: the services (UI and API) and the register
import call these same checks, so a value refused in one is refused in all, with the same words.

- **Indicator range**: an indicator states the values it can take (`min_value`, `max_value`);
  baseline, target and every measurement lie within. Left empty when the indicator is created,
  the range follows the unit (`infer_range`): 0 to 100 for a percentage, a to b for a scale
  written "a-b" (1-5), otherwise 0 or more (counts, durations, amounts are never negative).
- **Measurement dates**: not in the future (a few minutes of clock skew allowed), and not more
  than MEASUREMENT_YEARS_BEFORE_BASELINE years before the indicator's baseline date (or, without
  one, the day the item was identified): a date decades back is a typing slip (2002 for 2025),
  and it would draw the whole chart out of shape.
- **Long texts** (descriptions, comments, minutes): tikting.core.bounds.LONG_TEXT_LIMIT, checked
  by model validation.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.utils import timezone

from tikting.lib.display import number as shown

if TYPE_CHECKING:
    from .models import Indicator, Item

MEASUREMENT_YEARS_BEFORE_BASELINE = 10
FUTURE_SKEW = dt.timedelta(minutes=5)  # clocks of a browser and the server may disagree a little
SCALE_RE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*[-–]\s*(-?\d+(?:\.\d+)?)\s*$")


def infer_range(unit: str) -> tuple[Decimal | None, Decimal | None]:
    """The range an indicator in `unit` takes when none is stated (see the module docstring)."""
    text = (unit or "").strip()
    if text == "%":
        return Decimal(0), Decimal(100)
    scale = SCALE_RE.match(text)
    if scale:
        low, high = Decimal(scale.group(1)), Decimal(scale.group(2))
        if low < high:
            return low, high
    return Decimal(0), None


def range_errors(
    *,
    min_value: Decimal | None,
    max_value: Decimal | None,
    unit: str,
    values: dict[str, Decimal | None],
) -> dict[str, str]:
    """Errors of an indicator's range and of the values that must lie within it (baseline_value,
    target_value …), by field."""
    if min_value is not None and max_value is not None and min_value > max_value:
        return {
            "max_value": f"The highest value ({shown(max_value)}) is below the lowest ({shown(min_value)})."
        }
    errors = {}
    for field, value in values.items():
        if value is not None and not _within(value, min_value, max_value):
            errors[field] = out_of_range_message(value, min_value, max_value, unit)
    return errors


def _within(value: Decimal, low: Decimal | None, high: Decimal | None) -> bool:
    return (low is None or value >= low) and (high is None or value <= high)


def out_of_range_message(value: Decimal, low: Decimal | None, high: Decimal | None, unit: str) -> str:
    unit = f" {unit}" if unit else ""
    if low is not None and high is not None:
        allowed = f"between {shown(low)} and {shown(high)}{unit}"
    elif low is not None:
        allowed = f"{shown(low)}{unit} or more"
    else:
        assert high is not None
        allowed = f"{shown(high)}{unit} or less"
    return (
        f"{shown(value)} is outside the indicator's range: give a value {allowed} "
        "(or widen the range on the indicator)."
    )


def earliest_measurement(indicator: Indicator, item: Item) -> dt.datetime:
    """The earliest time a measurement of `indicator` may be dated."""
    anchor = indicator.baseline_date or timezone.localdate(item.identified_at)
    try:
        earliest = anchor.replace(year=anchor.year - MEASUREMENT_YEARS_BEFORE_BASELINE)
    except ValueError:  # 29 February
        earliest = anchor.replace(year=anchor.year - MEASUREMENT_YEARS_BEFORE_BASELINE, day=28)
    return timezone.make_aware(dt.datetime.combine(earliest, dt.time()))


def measurement_errors(
    indicator: Indicator,
    item: Item,
    *,
    value: Decimal,
    measured_at: dt.datetime,
    now: dt.datetime | None = None,
) -> dict[str, str]:
    """Errors of one measurement of `indicator` (value in range, date not in the future nor
    decades back), by field (`value`, `measured_at`)."""
    now = now or timezone.now()
    errors: dict[str, str] = {}
    if not indicator.in_range(value):
        errors["value"] = out_of_range_message(
            value, indicator.min_value, indicator.max_value, indicator.unit
        )
    if measured_at > now + FUTURE_SKEW:
        errors["measured_at"] = (
            f"{timezone.localtime(measured_at):%Y-%m-%d %H:%M} is in the future: a measurement is "
            "dated when it was taken."
        )
    else:
        earliest = earliest_measurement(indicator, item)
        if measured_at < earliest:
            anchor = "baseline date" if indicator.baseline_date else "date the item was identified"
            errors["measured_at"] = (
                f"{timezone.localtime(measured_at):%Y-%m-%d} is more than "
                f"{MEASUREMENT_YEARS_BEFORE_BASELINE} years before the indicator's {anchor}: give a "
                f"date from {timezone.localdate(earliest):%Y-%m-%d} on."
            )
    return errors


def check(errors: dict[str, str]) -> None:
    if errors:
        raise ValidationError(errors)
