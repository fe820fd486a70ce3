"""What every discovery parser shares: reading within the size limit, safe XML, times and text.

XML is parsed with defusedxml: a document declaring entities (billion laughs, quadratic blow-up)
or referring to external ones (XXE) is refused before anything is expanded or fetched. A DOCTYPE
without declarations is allowed, since nmap writes `<!DOCTYPE nmaprun>` in every -oX file.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from typing import IO
from xml.etree.ElementTree import Element
from xml.etree.ElementTree import ParseError as XMLSyntaxError

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET
from django.conf import settings
from django.utils import timezone

from tikting.lib import untrusted

from ..observations import ParseError

__all__ = [
    "Input",
    "InputTooLarge",
    "LimitedReader",
    "as_int",
    "clean",
    "local_time",
    "parse_xml",
    "read_all",
    "read_input",
    "read_request",
    "xml_problem",
]

# A file path is opened by the caller; parsers take bytes or a binary stream.
Input = IO[bytes] | bytes


class InputTooLarge(ValueError):
    """The input is over TIKTING_DISCOVERY_MAX_BYTES: nothing more of it is read."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(
            f"The input is larger than {limit:,} bytes (TIKTING_DISCOVERY_MAX_BYTES): refused. Split it, "
            "or raise the limit if the file is genuine."
        )


def max_bytes() -> int:
    return int(settings.TIKTING_DISCOVERY_MAX_BYTES)


class LimitedReader(io.RawIOBase):
    """A binary stream that raises InputTooLarge once more than `limit` bytes have been read from
    it, so a streaming parser stops at the limit instead of after the whole file."""

    def __init__(self, source: Input, limit: int | None = None) -> None:
        super().__init__()
        self.source: IO[bytes] = io.BytesIO(source) if isinstance(source, bytes) else source
        self.limit = max_bytes() if limit is None else limit
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.source.read(len(buffer))
        self.count += len(data)
        if self.count > self.limit:
            raise InputTooLarge(self.limit)
        buffer[: len(data)] = data
        return len(data)


def read_all(source: Input, limit: int | None = None) -> bytes:
    """All of `source`, or InputTooLarge past the limit (reads at most one byte more)."""
    limit = max_bytes() if limit is None else limit
    data = source if isinstance(source, bytes) else source.read(limit + 1)
    if len(data) > limit:
        raise InputTooLarge(limit)
    return data


def read_input(source: Input, errors: list[ParseError]) -> bytes | None:
    """All of `source` within the limit, or None with the error added to `errors`."""
    try:
        return read_all(source)
    except InputTooLarge as exc:
        errors.append(ParseError("input", str(exc)))
        return None


def read_request(source: Input, errors: list[ParseError]) -> tuple[Element, str] | None:
    """An agent's XML message (<REQUEST>…<QUERY>…</QUERY>) read within the limit and parsed
    safely: its root and its QUERY in upper case; None with the error added to `errors`."""
    data = read_input(source, errors)
    if data is None:
        return None
    root, problem = parse_xml(data)
    if problem is not None or root is None:
        errors.append(problem or ParseError("input", "Empty document."))
        return None
    return root, clean(root.findtext("QUERY"), 40).upper()


def xml_problem(exc: Exception) -> ParseError:
    """The ParseError for an XML document that cannot be read: where and why, in words."""
    if isinstance(exc, InputTooLarge):
        return ParseError("input", str(exc))
    if isinstance(exc, DefusedXmlException):
        return ParseError(
            "input",
            f"The XML declares entities or refers to external resources ({type(exc).__name__}): refused, "
            "since no discovery format needs them and they are how XXE and entity-expansion attacks work.",
        )
    if isinstance(exc, XMLSyntaxError):
        line, column = getattr(exc, "position", (0, 0))
        reason = re.sub(r": line \d+, column \d+$", "", str(exc))
        return ParseError(
            f"line {line}, column {column}",
            f"Not well-formed XML ({reason}): the file is truncated or damaged; what was read before "
            "this point is kept.",
        )
    if isinstance(exc, UnicodeDecodeError):
        return ParseError("input", f"Not valid text in its declared encoding ({exc.reason}).")
    raise exc


def parse_xml(data: bytes) -> tuple[Element | None, ParseError | None]:
    """The document's root element, or the problem that stops it being read."""
    try:
        return SafeET.fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True), None
    except (DefusedXmlException, XMLSyntaxError, UnicodeDecodeError) as exc:
        return None, xml_problem(exc)


def clean(value: object, limit: int = 255) -> str:
    """A value as trimmed text (None → ""), cut to `limit` characters, without NUL characters."""
    if value is None:
        return ""
    return str(value).replace("\x00", "").strip()[:limit]


def as_int(value: object) -> int | None:
    """An integer from a number or numeric text ("7908", 7908, "2300.0"), else None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(float(str(value).strip()))
    except ValueError:
        return None


_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d")


def local_time(value: object) -> dt.datetime | None:
    """A time as agents write it ("2020-06-12 14:15:31", ISO 8601 with or without an offset), aware;
    a time without an offset is taken in the server's time zone (settings.TIME_ZONE)."""
    text = clean(value, 40)
    if not text:
        return None
    parsed: dt.datetime | None = None
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        for fmt in _TIME_FORMATS:
            try:
                parsed = dt.datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        return None
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, timezone.get_current_timezone())
    return parsed


def flag(value: object) -> bool:
    """A yes/no as JSON (true) or XML ("1", "true", "yes") writes it."""
    if isinstance(value, bool):
        return value
    return clean(value, 10).lower() in {"1", "true", "yes", "y", "on"}


_TICKS = re.compile(r"^\((\d+)\)")
_UPTIME_PART = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s*(days?|hours?|minutes?|seconds?)\b")
_CLOCK = re.compile(r"(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)\s*$")
_UNIT_SECONDS = {"day": 86400, "hour": 3600, "minute": 60, "second": 1}


def snmp_uptime(value: object) -> int | None:
    """Seconds from an SNMP sysUpTime as agents write it: "(78894038) 9 days, 3:09:00.38" (timeticks,
    hundredths of a second), "65 days, 20:13:08.93", "3 hours, 45:24.76", "10.18 seconds"."""
    text = clean(value, 80)
    if not text:
        return None
    ticks = _TICKS.match(text)
    if ticks:
        return int(ticks.group(1)) // 100
    seconds = 0.0
    found = False
    clock = _CLOCK.search(text)
    if clock:
        hours, minutes, secs = clock.groups()
        if hours is None and "hour" in text:  # "3 hours, 45:24.76": the clock is minutes:seconds
            seconds += int(minutes) * 60 + float(secs)
        else:
            seconds += int(hours or 0) * 3600 + int(minutes) * 60 + float(secs)
        text = text[: clock.start()]
        found = True
    for number, unit in _UPTIME_PART.findall(text):
        seconds += float(number) * _UNIT_SECONDS[unit.rstrip("s")]
        found = True
    if not found:
        try:
            seconds, found = float(text), True
        except ValueError:
            return None
    return int(seconds)


def too_deep(value: object, limit: int = untrusted.MAX_JSON_DEPTH) -> bool:
    """Does a parsed JSON value nest deeper than `limit` (the project's limit for outside JSON)?
    Looks at containers only, iteratively: a fraction of untrusted.problems_in's time on large
    inventories, whose strings the parsers clean of NUL characters themselves."""
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        current, depth = stack.pop()
        children = (
            current.values() if isinstance(current, dict) else current if isinstance(current, list) else None
        )
        if children is None:
            continue
        if depth >= limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False
