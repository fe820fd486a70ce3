"""Numbers and dates as people write and read them: one definition for pages, messages, history,
form inputs and exports (the template filters `number` and `when` call these).

- **Numbers**: `40`, `2.5`, `-0.125`: no exponent (`Decimal("4E+1")`), no trailing zeros
  (`Decimal("40.0000")`, as the database hands a decimal back), full precision: rounding is for
  the caller to ask for.
- **Dates and times**: settings.DATE_FORMAT / settings.DATETIME_FORMAT (Django's date format
  syntax), times in the configured time zone (settings.TIME_ZONE), never a raw ISO timestamp.
- **Durations**: `0.4 s`, `12 s`, `3 min 5 s`, `2 h 10 min`, `3 d 4 h`: the two largest units,
  never `11400.00 s`.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.utils import dateformat, timezone

# A date as ISO 8601 writes it (the start of a date or a date-time): what the API and the records'
# forms take as a date, where a bare number is refused (pydantic would read 0 as 1970-01-01).
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def number(value: Any, places: int | None = None) -> str:
    """A number as people write it: Decimal("4E+1") → "40", Decimal("2.500") → "2.5", 3.0 → "3".

    `places`: round to at most that many decimals first (for display only: data outputs keep full
    precision). None and "" give ""; text that is not a number is returned unchanged; booleans are
    not numbers.
    """
    if value is None or value == "" or isinstance(value, bool):
        return "" if value is None or value == "" else str(value)
    if isinstance(value, int):
        return str(value)
    try:
        # floats through repr: 0.1 stays 0.1 (not 0.1000000000000000055511151231257827…)
        if isinstance(value, Decimal):
            decimal = value
        else:
            decimal = Decimal(repr(value) if isinstance(value, float) else str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    if not decimal.is_finite():
        return str(value)
    if places is not None:
        decimal = round(decimal, places)
    text = format(decimal, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in {"-0", ""} else text


def when(value: Any, part: str = "") -> str:
    """A date or time as the UI shows it everywhere (settings.DATE_FORMAT / DATETIME_FORMAT).

    A datetime is shown in the configured time zone; `part="date"` shows only its (local) day.
    None and "" give "". An ISO string (as kept in the audit trail) is read first.
    """
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        parsed = _parse(value)
        if parsed is None:
            return value
        value = parsed
    if isinstance(value, dt.datetime):
        if timezone.is_aware(value):
            value = timezone.localtime(value)
        if part == "date":
            return dateformat.format(value.date(), settings.DATE_FORMAT)
        return dateformat.format(value, settings.DATETIME_FORMAT)
    if isinstance(value, dt.date):
        return dateformat.format(value, settings.DATE_FORMAT)
    return str(value)


def duration(value: Any) -> str:
    """A duration (a timedelta, or seconds) in its two largest units: "0.4 s" and "12 s" below a
    minute, then "3 min 5 s", "2 h 10 min", "3 d 4 h". None and "" give ""."""
    if value is None or value == "":
        return ""
    seconds = value.total_seconds() if isinstance(value, dt.timedelta) else float(value)
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds < 10:
        return f"{sign}{seconds:.1f} s"
    if seconds < 60:
        return f"{sign}{seconds:.0f} s"
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "min"), (secs, "s")]
    first = next(i for i, (n, _unit) in enumerate(parts) if n)
    shown = [f"{n} {unit}" for n, unit in parts[first : first + 2] if n]
    return sign + " ".join(shown)


def _parse(text: str) -> dt.date | dt.datetime | None:
    try:
        if len(text) == 10:
            return dt.date.fromisoformat(text)
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None


def time_ticks(start: dt.datetime, end: dt.datetime, *, most: int = 8) -> list[tuple[dt.datetime, str]]:
    """Ticks of a time axis from `start` to `end` (aware datetimes), at whole days, weeks (Mondays),
    months or years of the configured time zone, whichever gives at most `most` of them; each with
    its label ("5 Dec", "Dec 2026", "2026"). Charts place points by time and label these."""
    start, end = timezone.localtime(start), timezone.localtime(end)
    zone = start.tzinfo
    first, last = start.date(), end.date()

    def at(day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, dt.time.min, tzinfo=zone)

    def inside(days: list[dt.date], fmt: str) -> list[tuple[dt.datetime, str]]:
        return [(at(d), dateformat.format(d, fmt)) for d in days if start <= at(d) <= end]

    span = (last - first).days
    for step in (1, 2, 7, 14):
        if span // step < most:
            begin = first if step < 7 else first - dt.timedelta(days=first.weekday())
            days = [begin + dt.timedelta(days=k * step) for k in range(span // step + 2)]
            return inside(days, "j M")
    months = (last.year - first.year) * 12 + last.month - first.month
    for step in (1, 2, 3, 6):
        if months // step < most:
            base = first.year * 12 + first.month - 1
            base -= base % step
            days = [
                dt.date((base + k * step) // 12, (base + k * step) % 12 + 1, 1)
                for k in range(months // step + 2)
            ]
            return inside(days, "M Y")
    years = last.year - first.year
    step = max(1, -(-years // most))
    return inside([dt.date(first.year + k, 1, 1) for k in range(0, years + 2, step)], "Y")


def size(count: int) -> str:
    """A number of bytes as people read it: '512 bytes', '2.5 KiB', '10 MiB' (powers of 1024)."""
    value = float(count)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            if unit == "bytes":
                return f"{int(value)} byte{'' if int(value) == 1 else 's'}"
            return f"{number(round(value, 1))} {unit}"
        value /= 1024
    return f"{count} bytes"  # pragma: no cover
