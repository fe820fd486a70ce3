"""Which discovery format a file is, from its content (never its name), and parsing it with it.

    XML, root <nmaprun>                                    nmap-xml          (nmap.py)
    XML, root <REQUEST>, QUERY INVENTORY                   glpi-xml          (glpi.py)
    XML, root <REQUEST>, QUERY NETDISCOVERY                netdiscovery-xml  (netdiscovery.py)
    XML, root <REQUEST>, QUERY SNMPQUERY                   snmpquery-xml     (netdiscovery.py)
    JSON object with "deviceid" / "content" keys           glpi-json         (glpi.py)
    text whose first line names a CSV column we read        csv               (csv_cis.py)

The XML root is found by skipping the prolog (declaration, comments, processing instructions,
DOCTYPE) with a pattern, before any XML parser runs; the parser then reads it safely.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path

from ..observations import ParseError, ParseResult
from .common import read_input
from .csv_cis import FORMAT as CSV_FORMAT
from .csv_cis import column_for, parse_csv_cis
from .glpi import JSON_FORMAT, XML_FORMAT, parse_glpi_json, parse_glpi_xml
from .netdiscovery import NETDISCOVERY_FORMAT, SNMPQUERY_FORMAT, parse_netdiscovery
from .nmap import FORMAT as NMAP_FORMAT
from .nmap import parse_nmap

__all__ = [
    "FORMATS",
    "UnknownFormat",
    "agent_deviceid",
    "agent_query",
    "detect",
    "parse_bytes",
    "parse_file",
    "xml_root",
]

Parser = Callable[..., ParseResult]
FORMATS: dict[str, Parser] = {
    NMAP_FORMAT: parse_nmap,
    XML_FORMAT: parse_glpi_xml,
    JSON_FORMAT: parse_glpi_json,
    NETDISCOVERY_FORMAT: parse_netdiscovery,
    SNMPQUERY_FORMAT: parse_netdiscovery,
    CSV_FORMAT: parse_csv_cis,
}
# The XML prolog: declaration, comments, processing instructions, a DOCTYPE (with or without an
# internal subset), whitespace.
_PROLOG = re.compile(
    rb"\A(?:\s+|<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^\[>]*(?:\[.*?\])?\s*>)*",
    re.DOTALL,
)
_ROOT = re.compile(rb"<([A-Za-z_][\w.\-]*)")
_QUERY = re.compile(rb"<QUERY>\s*([A-Za-z_]+)\s*</QUERY>")
_DEVICEID = re.compile(rb"<DEVICEID>\s*([^<]{1,200}?)\s*</DEVICEID>")
_JSON_KEYS = re.compile(rb'"(deviceid|content)"\s*:')
_BOMS = (b"\xef\xbb\xbf",)
# gzip's magic number and zlib's headers (0x78 then the check byte of each compression level).
_COMPRESSED = {b"\x1f\x8b", b"\x78\x01", b"\x78\x5e", b"\x78\x9c", b"\x78\xda"}


class UnknownFormat(ValueError):
    """The content is none of the discovery formats; the message says what it looked like."""


def xml_root(data: bytes) -> str:
    """The name of an XML document's root element (after its prolog), "" if there is none."""
    body = data[3:] if data.startswith(_BOMS) else data
    prolog = _PROLOG.match(body)
    root = _ROOT.match(body, prolog.end() if prolog else 0)
    return root.group(1).decode("ascii", "replace") if root else ""


def agent_query(data: bytes) -> str:
    """The QUERY of an agent's XML message (<REQUEST>…<QUERY>PROLOG</QUERY>), upper case; "" if
    the document is not a <REQUEST> or has none. Agents write QUERY last: it is looked for there."""
    if xml_root(data) != "REQUEST":
        return ""
    query = _QUERY.search(data, max(0, data.rfind(b"<QUERY>") - 1))
    return query.group(1).decode("ascii").upper() if query else ""


def agent_deviceid(data: bytes) -> str:
    """The DEVICEID of an agent's XML message (the agent's own id), "" if it has none."""
    found = _DEVICEID.search(data)
    return found.group(1).decode("utf-8", "replace").strip() if found else ""


def detect(data: bytes) -> str:
    """The format of `data` (a key of FORMATS), or UnknownFormat saying what was found."""
    body = data[3:] if data.startswith(_BOMS) else data
    head = body.lstrip()[:1]
    if head == b"<":
        name = xml_root(body)
        if name == "nmaprun":
            return NMAP_FORMAT
        if name == "REQUEST":
            kind = agent_query(body)
            if kind == "INVENTORY":
                return XML_FORMAT
            if kind == "NETDISCOVERY":
                return NETDISCOVERY_FORMAT
            if kind == "SNMPQUERY":
                return SNMPQUERY_FORMAT
            raise UnknownFormat(
                f"An agent message with QUERY '{kind or 'missing'}': only INVENTORY, NETDISCOVERY and "
                "SNMPQUERY carry devices."
            )
        raise UnknownFormat(
            f"XML whose root element is <{name or '?'}>: expected <nmaprun> (nmap -oX) or <REQUEST> (an "
            "agent's inventory)."
        )
    if head in (b"{", b"["):
        if head == b"{" and _JSON_KEYS.search(body[:65536]):
            return JSON_FORMAT
        raise UnknownFormat('JSON that is not a GLPI inventory (no "deviceid" or "content" key).')
    if body[:2] in _COMPRESSED:
        raise UnknownFormat("Compressed data (gzip or zlib): decompress it first.")
    first_line = body.split(b"\n", 1)[0].decode("utf-8", "replace")
    if any(column_for(cell.strip().strip('"')) for cell in re.split(r"[,;\t]", first_line)):
        return CSV_FORMAT
    raise UnknownFormat(
        "Not a discovery format: expected nmap XML, a GLPI/FusionInventory inventory (XML or JSON), network "
        "discovery / SNMP XML, or a CSV whose header names CI columns (docs/discovery.md)."
    )


def parse_bytes(
    data: bytes, *, source_name: str | None = None, seen_at: dt.datetime | None = None
) -> ParseResult:
    """`data` parsed by the parser of its format; an unknown format is one error, not an exception."""
    try:
        fmt = detect(data)
    except UnknownFormat as exc:
        return ParseResult(format="unknown", errors=[ParseError("input", str(exc))])
    return FORMATS[fmt](data, source_name=source_name, seen_at=seen_at)


def parse_file(path: str | Path, *, source_name: str | None = None) -> ParseResult:
    """A file parsed by the parser of its content's format; devices whose input says nothing of
    when they were seen take the file's modification time (so importing it again changes nothing)."""
    file = Path(path)
    seen_at = dt.datetime.fromtimestamp(file.stat().st_mtime, tz=dt.UTC)
    errors: list[ParseError] = []
    with file.open("rb") as stream:
        data = read_input(stream, errors)
    if data is None:
        return ParseResult(format="unknown", errors=errors)
    return parse_bytes(data, source_name=source_name, seen_at=seen_at)
