"""Importer of the BPI Challenge 2014 data set (Rabobank Group ICT, HP Service Manager export).

`import_bpic2014(path)` reads the folder holding the data set's zips (as shipped) or the CSVs
extracted from them. Files are recognised by their header row, not by their name:

- ``Detail Incident.csv`` (``Incident ID`` + ``Open Time``)       → incidents
- ``Detail Interaction.csv`` (``Interaction ID``)                 → interactions
- ``Detail Change.csv`` (``Change ID``)                           → changes (+ affected CIs)
- ``EventLog.csv`` (derived, ``,``) or the original
  ``Detail_Incident_Activity.csv`` (``;``) (``IncidentActivity_Type``) → incident activities

Every record gets ``source="bpic2014"`` and its key in the data set as ``external_key``, so a
re-run updates or leaves records unchanged and never duplicates them. The mapping follows
docs/datasets.md §1:

- services: one per WBS code (Service has no external key: matched by name);
- configuration items: one per CI name (aff and caused-by columns of the three detail files);
  type, subtype and service are each the most frequent value seen for the CI, ``ci_class`` is
  mapped from type/subtype (name prefix as a fallback), every value seen is kept in ``raw``;
- knowledge articles: one stub per KM number, ``uses`` = incidents + interactions naming it;
- changes: collapsed per Change ID, fields from the first (valid) row of the change, every CI
  row becomes an ``affected_cis`` link (duplicates collapsed), ``ci``/``service`` from the first
  row; ``outcome = caused_incident`` when ``# Related Incidents`` > 0 or an incident names the
  change in ``Related Change`` (no other outcome is in the data); status derived from the times
  (close time → closed, actual end → review, actual start → implementing, else new);
- incidents: every mapped field of the doc; ``Related Change`` (a single ID that resolves) sets
  both ``related_change`` and ``caused_by_change``; ``#MULTIVALUE`` / ``#N/B`` / unknown IDs are
  kept in ``raw`` only; ``reopen_count`` = 1 when ``Reopen Time`` is set; the closure code is
  normalised in case (``SOFTWARE`` → ``Software``), the raw value stays in ``raw``;
- interactions: linked to their incident when ``Related Incident`` resolves;
- incident activities: key = the activity number when the original file is given, else
  ``incident|type|timestamp|group`` (unique in the derived file); ``Incident.assignment_group``
  = group of the incident's last Assignment/Reassignment activity (else of its Closed activity);
  teams (assignment groups) are matched by name and created with ``source="bpic2014"``.

Times are naive, day-first, made aware in `tz` (``fold=0`` for the repeated DST hour).

Speed and memory: every file is streamed (csv over ``zipfile`` + ``io.TextIOWrapper``); rows are
parsed with explicit cheap parsers (no ``full_clean``, no model instances, no query per row) and
written in batches of 2,000 by tikting.imports.bulk.TableWriter: new rows with one ``executemany``
INSERT (SQLite) or ``COPY … FROM STDIN`` (PostgreSQL), bypassing the ORM's per-field preparation
(values are already clean; omitted fields get their model default), changed rows with
``bulk_update``. Incidents, interactions and activities (the large files) are read as lists of
cells, never as a dict per row, and become tuples of their **stored form** (insert_rows): a
timestamp is the text the database keeps (`Stamps`: a local date and hour converted to UTC once per
run, minutes and seconds copied), ``raw`` the JSON text built from one template per file
(`raw_encoder`, the very text json.dumps gives for the row's dict), looked-up ids cached per cell
text (`RefIds`). The dimension pass counts the cells as read and reads each distinct one once.
Existing rows are looked up once per batch on (source, external_key) with one plain query on the
partial unique index and compared as stored (no model instances; on PostgreSQL ``raw`` is compared
by the database, which keeps jsonb), and not at all while a table was empty at the start (first
import). A table empty at the start is **bulk loaded** (tikting.imports.bulk): its
indexes that enforce nothing (and on PostgreSQL its foreign keys) are dropped for the run and
created again at its end, and triggers with a registered rebuild (full-text search) are replaced by
one rebuild. In memory: key → id dictionaries, per-CI and per-incident summaries, and the activity
keys of the run (to report duplicates). On PostgreSQL the loaded tables are ANALYZEd after the run
(a re-run's lookups need the statistics). On SQLite, for the import's connection only and restored
after: a 64 MiB page cache, and (when the import is not inside a caller's transaction)
synchronous=OFF and temp_store=MEMORY. The run is one transaction; a dry run rolls it back.

Not stored in a field (kept in ``raw`` only, as docs/datasets.md allows): Handle Time (Hours)
(checked as a decimal-comma number), Alert Status, CAB-approval needed, Originated from,
scheduled downtime, Related Interaction / # Related … counts, the interaction's status, impact,
urgency and closure code. A raw-only value that does not parse never loses its row: it is a
**warning** (file, line, field, message; ImportReport.warnings) and the row is imported with the
value as read in ``raw``.

SLA: ``response_due_at``, ``resolution_due_at``, ``response_met``, ``resolution_met`` are computed
from the active SLA definitions for each incident row (tikting.slas.verdicts.evaluate, the rules of
apply_slas; ``now`` = the start of the run) and written with the row, so that they are compared
like the other fields on a re-import. Not written on a dry run (rolled back).

History: **no audit rows are written** by this importer, neither per record nor per run. The
returned ImportReport is the record of the run (the `tikting import` command prints / logs it).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import zipfile
from collections import Counter
from collections.abc import Callable, Generator, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection, models, transaction
from django.db.models import Q
from django.utils import timezone

from tikting.lib.archives import open_member
from tikting.lib.tabular import FileFormatError
from tikting.lib.untrusted import NUL, NUL_MESSAGE
from tikting.slas.verdicts import (
    SLA_FIELDS,
    BusinessCalendar,
    definitions_by_key,
    evaluate,
    select_definition,
)

from . import piped as reading
from .base import UNREADABLE, ImportReport, Progress, discard_run, no_progress, zip_limits
from .bulk import TableWriter, bulk_load, sqlite_load_pragmas

__all__ = ["import_bpic2014", "SOURCE"]

log = logging.getLogger(__name__)

SOURCE = "bpic2014"
Mark = tuple[str, int, str]  # (at, line, team) of an activity
BATCH = 2000
PROGRESS_EVERY = 5000
NULL_MARKERS = {"", "#N/B", "#MULTIVALUE"}
csv.field_size_limit(1 << 20)


# --- Files ---------------------------------------------------------------------------------------


@dataclass
class DataFile:
    kind: str  # incident | interaction | change | activity
    label: str  # the name errors use: "detail_incident.zip/Detail Incident.csv"
    path: Path
    member: str | None
    encoding: str
    delimiter: str
    header: list[str]

    @contextmanager
    def rows(self) -> Iterator[Any]:
        """The file's rows (header already consumed); a zip member is read within the zip limits."""
        if self.member is None:
            with self.path.open(encoding=self.encoding, newline="") as text:
                reader = csv.reader(text, delimiter=self.delimiter)
                next(reader, None)
                yield Rows(reader, self.label)
        else:
            with (
                zipfile.ZipFile(self.path) as archive,
                open_member(archive, archive.getinfo(self.member), zip_limits(), self.path.name) as raw,
            ):
                text = io.TextIOWrapper(raw, encoding=self.encoding, newline="")
                reader = csv.reader(text, delimiter=self.delimiter)
                next(reader, None)
                yield Rows(reader, self.label)


class Rows:
    """A csv reader that holds back the rows holding a NUL character (no text column can store
    one): their lines are in `nul_lines`, for the pass that reports them (Importer.records). A file
    the csv module cannot read on raises FileFormatError (the run keeps nothing)."""

    def __init__(self, reader: Any, label: str) -> None:
        self.reader = reader
        self.label = label
        self.nul_lines: list[int] = []

    @property
    def line_num(self) -> int:
        return int(self.reader.line_num)

    def __iter__(self) -> Iterator[list[str]]:
        reader, nul_lines = self.reader, self.nul_lines
        try:
            for row in reader:
                if NUL in "".join(row):
                    nul_lines.append(reader.line_num)
                    continue
                yield row
        except csv.Error as exc:
            raise FileFormatError(self.line_num, f"{self.label}: unreadable CSV ({exc}).") from exc


def _normalise_header(cells: list[str]) -> list[str]:
    names = []
    for cell in cells:
        name = cell.replace("\ufeff", "").strip()
        if name.startswith("Detail Incident Activity."):
            name = name[len("Detail Incident Activity.") :]
        names.append(name)
    return names


def _kind_of(names: list[str]) -> str | None:
    cols = set(names)
    if "IncidentActivity_Type" in cols and "Incident ID" in cols:
        return "activity"
    if "Change ID" in cols:
        return "change"
    if "Incident ID" in cols and "Open Time" in cols:
        return "incident"
    if "Interaction ID" in cols and "Open Time (First Touch)" in cols:
        return "interaction"
    return None


def _sniff(path: Path, member: str | None, first: bytes) -> DataFile | None:
    line = first.splitlines()[0] if first else b""
    encoding = "utf-8-sig" if line.startswith(b"\xef\xbb\xbf") else "latin-1"
    text = line.decode("utf-8-sig" if encoding == "utf-8-sig" else "latin-1", errors="replace")
    delimiter = ";" if text.count(";") >= text.count(",") else ","
    names = _normalise_header(next(csv.reader([text], delimiter=delimiter), []))
    kind = _kind_of(names)
    if kind is None:
        return None
    label = f"{path.name}/{member}" if member else path.name
    return DataFile(kind, label, path, member, encoding, delimiter, names)


def find_files(folder: Path) -> dict[str, DataFile]:
    """The data set's files in `folder` by kind; extracted CSVs win over zips of the same kind."""
    found: list[DataFile] = []
    limits = zip_limits()
    entries = sorted(p for p in folder.iterdir() if p.is_file())
    for path in sorted(entries, key=lambda p: (p.suffix.lower() == ".zip", p.name)):
        try:
            if zipfile.is_zipfile(path):
                with zipfile.ZipFile(path) as archive:
                    for info in archive.infolist():
                        if info.is_dir():
                            continue
                        with archive.open(info) as raw:
                            sniffed = _sniff(path, info.filename, raw.readline(65536))
                        if sniffed:
                            limits.check(info, path.name)  # refused before anything is imported
                        if sniffed:
                            found.append(sniffed)
            elif path.suffix.lower() in {".csv", ".txt", ""}:
                with path.open("rb") as raw:
                    sniffed = _sniff(path, None, raw.readline(65536))
                if sniffed:
                    found.append(sniffed)
        except (OSError, zipfile.BadZipFile) as exc:
            log.warning("bpic2014: cannot read %s: %s", path, exc)
    by_kind: dict[str, DataFile] = {}
    for data_file in found:
        if data_file.kind in by_kind:
            log.warning(
                "bpic2014: %s is a second %s file; using %s",
                data_file.label,
                data_file.kind,
                by_kind[data_file.kind].label,
            )
            continue
        by_kind[data_file.kind] = data_file
    return by_kind


# --- Parsing -------------------------------------------------------------------------------------


class BadField(Exception):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def _ref(value: str) -> str | None:
    """An ID, or None for the null markers (#N/B, #MULTIVALUE, empty)."""
    if "\ufeff" in value:
        value = value.replace("\ufeff", "")
    value = value.strip()
    return None if value in NULL_MARKERS else value


# Parsed date and time parts by their text (few distinct values: days of a few years, minutes of a
# day), so that a row's timestamps cost two dictionary look-ups; cleared past CACHE_LIMIT entries.
_DATES: dict[str, tuple[int, int, int]] = {}
_TIMES: dict[str, tuple[int, int, int]] = {}
CACHE_LIMIT = 100_000


def _date_part(text: str) -> tuple[int, int, int]:
    """(year, month, day) of `dd/mm/YYYY`, `d-m-YYYY` or `YYYY-MM-DD`; ValueError if not one."""
    sep = "/" if "/" in text else "-"
    a, b, c = text.split(sep)
    if len(a) == 4:
        return int(a), int(b), int(c)
    if len(c) != 4:
        raise ValueError
    return int(c), int(b), int(a)


def _time_part(text: str) -> tuple[int, int, int]:
    """(hour, minute, second) of `H:MM` or `HH:MM:SS` (midnight when empty); ValueError if not one."""
    hms = text.split(":") if text else ["0", "0"]
    if len(hms) not in (2, 3):
        raise ValueError
    return int(hms[0]), int(hms[1]), int(hms[2]) if len(hms) == 3 else 0


def parse_datetime(value: str, zone: dt.tzinfo, field: str) -> dt.datetime | None:
    """Day-first `dd/mm/YYYY HH:MM:SS`, `d-m-YYYY H:MM`, or ISO `YYYY-MM-DD HH:MM:SS`; aware in `zone`."""
    value = value.strip()
    if not value:
        return None
    try:
        if len(value) == 19 and value[4] == "-" and value[10] == " " and value[13] == ":" == value[16]:
            local = dt.datetime.fromisoformat(value).replace(tzinfo=zone)  # ISO: the activity log's
        else:
            date_text, _, time_text = value.partition(" ")
            ymd = _DATES.get(date_text)
            if ymd is None:
                if len(_DATES) > CACHE_LIMIT:
                    _DATES.clear()
                ymd = _DATES[date_text] = _date_part(date_text)
            hms = _TIMES.get(time_text)
            if hms is None:
                if len(_TIMES) > CACHE_LIMIT:
                    _TIMES.clear()
                hms = _TIMES[time_text] = _time_part(time_text)
            local = dt.datetime(*ymd, *hms, tzinfo=zone)
    except ValueError:
        raise BadField(field, f"not a date/time: {value!r}") from None
    # In UTC: aware datetimes in a repeated (DST) hour never compare equal across zones.
    return local.astimezone(dt.UTC)


# Stored text of timestamps, the fast path of the tuple writers (TableWriter.insert_rows): the
# local time's date and hour are converted to UTC once per (date text, hour) of the run, the
# minutes and seconds are copied. Same values as parse_datetime (then stored_datetime) gives.
_ISO_DATES: dict[str, tuple[int, int, int]] = {}
_ISO_TIMES: dict[str, tuple[int, str]] = {}
_DAY_TIMES: dict[str, tuple[int, str]] = {}


def _iso_time(text: str) -> tuple[int, str]:
    t = dt.time.fromisoformat(text)
    return t.hour, f":{t.minute:02d}:{t.second:02d}"


def _day_time(text: str) -> tuple[int, str]:
    h, m, s = _time_part(text)
    dt.time(h, m, s)  # ValueError if out of range, as dt.datetime(...) would raise
    return h, f":{m:02d}:{s:02d}"


class Stamps:
    """`text(value, field)`: the timestamp `value` (the formats of parse_datetime, local time in
    `zone`) as a TableWriter stores it (`stored_datetime`), None when empty; BadField if not one.
    Whole hours of local time are converted once (cached by date text and hour); an hour the zone
    does not shift by a whole number of hours throughout goes through parse_datetime."""

    def __init__(self, zone: dt.tzinfo, suffix: str):
        self.zone = zone
        self.suffix = suffix  # "" (SQLite) or "+00" (PostgreSQL)
        self.hours: dict[tuple[str, int], str | None] = {}
        # text before the first ":" -> "YYYY-MM-DD HH" in UTC; text after it -> ":MM:SS" + suffix
        self.heads: dict[str, str] = {}
        self.tails: dict[str, str] = {}
        self.iso_heads: dict[str, str] = {}
        self.iso_tails: dict[str, str] = {}

    def hour(self, date_text: str, ymd: tuple[int, int, int], h: int) -> str | None:
        start = dt.datetime(*ymd, h, 0, 0, tzinfo=self.zone).astimezone(dt.UTC)
        end = dt.datetime(*ymd, h, 59, 59, tzinfo=self.zone).astimezone(dt.UTC)
        prefix = None
        if start.minute == 0 and start.second == 0 and (end - start).total_seconds() == 3599:
            prefix = str(start.replace(tzinfo=None))[:13]  # "YYYY-MM-DD HH"
        if len(self.hours) > CACHE_LIMIT:
            self.hours.clear()
        self.hours[(date_text, h)] = prefix
        return prefix

    def text(self, value: str, field: str) -> str | None:
        # Fast path: the text up to the first ":" (date and hour) and the rest (minutes, seconds)
        # both seen before; `slow` reads every other value and fills the caches.
        value = value.strip()
        head, _, rest = value.partition(":")
        if len(value) == 19 and len(head) == 13 and value[4] == "-" and value[10] == " " and value[16] == ":":
            prefix = self.iso_heads.get(head)
            tail = self.iso_tails.get(rest)
        else:
            prefix = self.heads.get(head)
            tail = self.tails.get(rest)
        if prefix is None or tail is None:
            return self.slow(value, field)
        return prefix + tail

    def slow(self, value: str, field: str) -> str | None:
        if not value:
            return None
        date_text, _, time_text = value.partition(" ")
        try:
            if len(value) == 19 and value[4] == "-" and value[10] == " " and value[13] == ":" == value[16]:
                ymd = _ISO_DATES.get(date_text)
                if ymd is None:
                    if len(_ISO_DATES) > CACHE_LIMIT:
                        _ISO_DATES.clear()
                    d = dt.date.fromisoformat(date_text)
                    ymd = _ISO_DATES[date_text] = (d.year, d.month, d.day)
                hm = _ISO_TIMES.get(time_text)
                if hm is None:
                    if len(_ISO_TIMES) > CACHE_LIMIT:
                        _ISO_TIMES.clear()
                    hm = _ISO_TIMES[time_text] = _iso_time(time_text)
            else:
                ymd = _DATES.get(date_text)
                if ymd is None:
                    if len(_DATES) > CACHE_LIMIT:
                        _DATES.clear()
                    ymd = _DATES[date_text] = _date_part(date_text)
                hm = _DAY_TIMES.get(time_text)
                if hm is None:
                    if len(_DAY_TIMES) > CACHE_LIMIT:
                        _DAY_TIMES.clear()
                    hm = _DAY_TIMES[time_text] = _day_time(time_text)
            h, tail = hm
            key = (date_text, h)
            prefix = self.hours[key] if key in self.hours else self.hour(date_text, ymd, h)
        except ValueError:
            raise BadField(field, f"not a date/time: {value!r}") from None
        if prefix is None:
            parsed = parse_datetime(value, self.zone, field)
            assert parsed is not None  # value is not empty
            return str(parsed.replace(tzinfo=None)) + self.suffix
        hour_text, colon, rest = time_text.partition(":")
        if colon and " " not in hour_text and len(self.heads) + len(self.iso_heads) < CACHE_LIMIT:
            # value = date_text + " " + hour_text + ":" + rest: the hour and the rest were read apart
            iso = len(value) == 19 and value[4] == "-" and value[10] == " " and value[13] == ":" == value[16]
            heads, tails = (self.iso_heads, self.iso_tails) if iso else (self.heads, self.tails)
            heads[f"{date_text} {hour_text}"] = prefix
            tails[rest] = tail + self.suffix
        return prefix + tail + self.suffix


def raw_encoder(names: list[str]) -> Callable[[list[str]], str]:
    """row → the JSON text of {name: value} over the named columns (unnamed ones left out; a
    repeated name: its first place, its last value), the very text json.dumps gives for that
    dict (ensure_ascii, ", " and ": "), built from one template per file."""
    places: dict[str, int] = {}
    for i, name in enumerate(names):
        if name:
            places[name] = i  # a dict keeps the first place of a key, with its last value
    encode = json.encoder.encode_basestring_ascii
    keys = [encode(n).replace("%", "%%") for n in places]
    template = "{" + ", ".join(f"{k}: %s" for k in keys) + "}"
    quoted = "{" + ", ".join(f'{k}: "%s"' for k in keys) + "}"
    indexes = list(places.values())
    if len(indexes) == 1:
        only = indexes[0]
        return lambda row: template % encode(row[only])
    getter = itemgetter(*indexes)
    width = len(indexes)

    def raw_json(row: list[str]) -> str:
        # The values joined by NUL and encoded in one call, then split at the NUL's escape; one
        # by one when a value has a backslash (it could hold that escape's text) or a NUL.
        joined = "\0".join(getter(row))
        if "\\" not in joined:
            parts = encode(joined)[1:-1].split("\\u0000")
            if len(parts) == width:
                return quoted % tuple(parts)
        return template % tuple(map(encode, getter(row)))

    return raw_json


def parse_int(value: str, field: str) -> int | None:
    value = value.strip()
    if not value:
        return None
    try:
        number = int(value)
    except ValueError:
        raise BadField(field, f"not a whole number: {value!r}") from None
    if number < 0:
        raise BadField(field, f"negative: {value!r}")
    return number


def parse_level(value: str, field: str) -> int | None:
    """1 … 5 from `4` or `5 - Very Low` (the leading digit)."""
    value = value.strip()
    if not value:
        return None
    if value[0].isdigit() and (len(value) == 1 or not value[1].isdigit()):
        level = int(value[0])
        if 1 <= level <= 5:
            return level
    raise BadField(field, f"not a level 1-5: {value!r}")


def parse_decimal_comma(value: str, field: str) -> float | None:
    value = value.strip()
    if not value:
        return None
    try:
        return float(value.replace(",", "."))
    except ValueError:
        raise BadField(field, f"not a number: {value!r}") from None


def parse_yn(value: str, field: str) -> bool | None:
    value = value.strip().upper()
    if not value:
        return None
    if value in ("Y", "N"):
        return value == "Y"
    raise BadField(field, f"expected Y or N: {value!r}")


def normalise_closure_code(value: str) -> str:
    value = " ".join(value.split())
    return value[:1].upper() + value[1:].lower() if value else ""


_WORKSTATIONS = {"laptop", "desktop", "tablet", "thin client"}
_PREFIX_CLASS = {
    "WSR": "server",
    "LSR": "server",
    "USR": "server",
    "LAP": "workstation",
    "DTA": "workstation",
    "VDI": "vm",
    "SBA": "application",
    "WBA": "application",
    "SUB": "application",
    "DBA": "database",
    "NET": "network",
    "PRN": "printer",
}


def ci_class_for(ci_type: str, subtype: str, name: str = "") -> str:
    """Our CI class from the BPIC CI type and subtype (the name prefix when both are unknown)."""
    t, s = ci_type.lower(), subtype.lower()
    if t in {"application", "subapplication", "applicationcomponent", "software"}:
        return "application"
    if t == "database":
        return "database"
    if t == "storage":
        return "storage"
    if t == "networkcomponents":
        return "network"
    if t == "officeelectronics":
        return "printer" if s == "printer" else "other"
    if t == "computer":
        if s in _WORKSTATIONS:
            return "workstation"
        if s == "vdi":
            return "vm"
        if s in {"banking device", "omgeving", "footprint"}:
            return "other"
        return "server"
    if t in {"hardware", "displaydevice", "phone"}:
        return "other"
    return _PREFIX_CLASS.get(name[:3].upper(), "other")


def _most_frequent(counter: Counter) -> str:
    """The most frequent known value (empty only when no other was seen); ties: first seen."""
    for value, _ in counter.most_common():
        if value:
            return value
    return ""


def _cells(indexes: list[int | None]) -> Callable[[list[str]], tuple[str, ...]]:
    """row → the tuple of its cells at `indexes` ("" for a column the file does not have)."""
    present = [i for i in indexes if i is not None]
    if len(present) == len(indexes) > 1:
        return itemgetter(*present)  # type: ignore[return-value]
    return lambda row: tuple(row[i] if i is not None else "" for i in indexes)


class Refs(dict[str, str]):
    """{cell as read: the cell read by _ref, "" for a null marker}, filled as cells are looked up."""

    def __missing__(self, cell: str) -> str:
        found = self[cell] = _ref(cell) or ""
        return found


class RefIds(dict[str, int | None]):
    """{cell as read: id of the record it names in `ids`, or None} (the cell read by _ref; a
    null marker names nothing), filled as cells are looked up."""

    def __init__(self, ids: dict[str, int]):
        super().__init__()
        self.ids = ids

    def __missing__(self, cell: str) -> int | None:
        found = self[cell] = self.ids.get(_ref(cell) or "")
        return found


# --- Writing -------------------------------------------------------------------------------------


class Importer:
    def __init__(self, folder: Path, report: ImportReport, progress: Progress, zone: dt.tzinfo):
        self.folder = folder
        self.report = report
        self.progress = progress
        self.zone = zone
        self.stamps = Stamps(zone, "" if connection.vendor == "sqlite" else "+00")
        self.now = timezone.now()
        self.writers: dict[type[models.Model], TableWriter] = {}
        self.row_warnings: list[BadField] = []  # raw-only values of the current row that did not parse
        self.empty: dict[type[models.Model], bool] = {}

    # Generic batch upsert on (source, external_key) ------------------------------------------

    def writer(self, model: type[models.Model]) -> TableWriter:
        writer = self.writers.get(model)
        if writer is None:
            writer = self.writers[model] = TableWriter(model, self.now)
        return writer

    def upsert(
        self,
        model: type[models.Model],
        kind: str,
        batch: dict[str, tuple[str, int, dict[str, Any]]],
        fields: list[str],
        want_ids: bool = False,
    ) -> dict[str, tuple[int, str]]:
        """Create or update the batch's records {key: (file, line, values)}; {key: (id, outcome)}.

        The ids of created records are 0 unless `want_ids` (one more query).
        """
        result: dict[str, tuple[int, str]] = {}
        if not batch:
            return result
        writer = self.writer(model)
        keys = list(batch)
        if model not in self.empty:  # an empty table at the start: nothing to look up (first import)
            self.empty[model] = not model._default_manager.exists()
        existing = {} if self.empty[model] else writer.existing(SOURCE, keys, fields)
        has_number = "number" in writer.column_of
        if has_number and not self.empty[model]:
            missing = [k for k in keys if k not in existing]
            if missing:
                for number, source in model._default_manager.filter(number__in=missing).values_list(
                    "number", "source"
                ):
                    label, line, _ = batch.pop(number)
                    self.report.error(
                        label, line, "number", f"{number} already exists (source {source or 'manual'})"
                    )
                    self.report.count(kind, "failed")
        new: list[dict[str, Any]] = []
        new_keys: list[str] = []
        changed: list[models.Model] = []
        unchanged = writer.unchanged
        for key, (_label, _line, values) in batch.items():
            rec = existing.get(key)
            if rec is None:
                values["source"] = SOURCE
                values["external_key"] = key
                new.append(values)
                new_keys.append(key)
                continue
            pk, version, stored = rec
            if unchanged(stored, values, fields):
                result[key] = (pk, "unchanged")
            else:
                changed.append(model(id=pk, version=version + 1, updated_at=self.now, **values))
                result[key] = (pk, "updated")
        if new:
            writer.insert(new)
            ids: dict[str, int] = {}
            if want_ids:
                ids = dict(
                    model._default_manager.filter(
                        ~Q(external_key=""), source=SOURCE, external_key__in=new_keys
                    ).values_list("external_key", "id")
                )
            for key in new_keys:
                result[key] = (ids.get(key, 0), "created")
        if changed:
            model._default_manager.bulk_update(changed, [*fields, "version", "updated_at"], batch_size=500)
        return result

    def upsert_rows(
        self,
        model: type[models.Model],
        kind: str,
        batch: list[tuple[str, int, tuple[Any, ...]]],
        fields: tuple[str, ...],
    ) -> None:
        """Create or update the batch's records, (file, line, row) with row the values of `fields`
        in their stored form (TableWriter.insert_rows), ``source`` and ``external_key`` first (the
        keys of the batch are distinct); the outcomes are counted in the report."""
        if not batch:
            return
        writer = self.writer(model)
        if model not in self.empty:
            self.empty[model] = not model._default_manager.exists()
        if self.empty[model]:  # a first import: nothing to look up
            writer.insert_rows(fields, [row for _label, _line, row in batch])
            self.report.count(kind, "created", len(batch))
            return
        compared = fields[2:]
        keys = [row[1] for _label, _line, row in batch]
        json_texts = None
        if not writer.sqlite and any(name in writer.json_fields for name in compared):
            at = next(i for i, name in enumerate(compared) if name in writer.json_fields)
            json_texts = [row[2 + at] for _label, _line, row in batch]
        existing = writer.existing_rows(SOURCE, keys, compared, json_texts)
        if "number" in writer.column_of:
            missing = [k for k in keys if k not in existing]
            taken = dict(
                model._default_manager.filter(number__in=missing).values_list("number", "source")
                if missing
                else ()
            )
            if taken:
                kept = []
                for label, line, row in batch:
                    source = taken.get(row[1])
                    if source is None:
                        kept.append((label, line, row))
                        continue
                    self.report.error(
                        label, line, "number", f"{row[1]} already exists (source {source or 'manual'})"
                    )
                    self.report.count(kind, "failed")
                batch = kept
        new: list[tuple[Any, ...]] = []
        changed: list[models.Model] = []
        unchanged = 0
        same_row, sqlite = writer.same_row, writer.sqlite
        # PostgreSQL, JSON last: the stored JSON read back as "equal to ours" (existing_rows)
        json_last = not sqlite and compared[-1] in writer.json_fields
        for _label, _line, row in batch:
            rec = existing.get(row[1])
            if rec is None:
                new.append(row)
                continue
            pk, version, stored = rec
            ours = row[2:]
            if (
                stored == ours if sqlite else json_last and stored[-1] is True and stored[:-1] == ours[:-1]
            ) or same_row(stored, ours, compared):
                unchanged += 1
            else:
                values = writer.python_values(ours, compared)
                changed.append(model(id=pk, version=version + 1, updated_at=self.now, **values))
        writer.insert_rows(fields, new)
        if changed:
            model._default_manager.bulk_update(changed, [*compared, "version", "updated_at"], batch_size=500)
        for outcome, n in (("created", len(new)), ("updated", len(changed)), ("unchanged", unchanged)):
            if n:
                self.report.count(kind, outcome, n)

    def tally(self, kind: str, outcomes: dict[str, tuple[int, str]]) -> None:
        counts = Counter(outcome for _, outcome in outcomes.values())
        for outcome, n in counts.items():
            self.report.count(kind, outcome, n)

    def raw_only(self, parse: Callable[..., Any], value: str, *args: Any) -> None:
        """Check a value kept in `raw` only: a bad one is a warning, never the row's loss."""
        try:
            parse(value, *args)
        except BadField as bad:
            self.row_warnings.append(bad)

    def row_values(
        self, data_file: DataFile, line: int, values: Callable[..., dict[str, Any]], *args: Any
    ) -> dict[str, Any]:
        """values(*args) for the row at `line`, reporting its raw-only warnings; BadField passes."""
        self.row_warnings = []
        try:
            result = values(*args)
        finally:
            warnings, self.row_warnings = self.row_warnings, []
        for bad in warnings:
            self.report.warning(data_file.label, line, bad.field, f"{bad.message} (kept in raw only)")
        return result

    def piped(self, produce: Callable[[], Generator[Any, None, Any]]) -> Generator[Any, None, Any]:
        """The batches of `produce()`, read in a second process while this one writes them
        (tikting.imports.piped): the report and progress of the reading process come back here."""

        def swap(recorder: reading.Recorder) -> None:
            self.report = recorder  # type: ignore[assignment]
            self.progress = recorder.progress

        def replay(calls: list[reading.Call]) -> None:
            for name, args, kwargs in calls:
                target = self.progress if name == "progress" else getattr(self.report, name)
                target(*args, **kwargs)

        return reading.piped(produce, swap=swap, replay=replay)

    def fail(self, data_file: DataFile, line: int, kind: str, field: str, message: str) -> None:
        self.report.error(data_file.label, line, field, message)
        self.report.count(kind, "failed")

    def ids(self, model: type[models.Model], key_field: str = "external_key") -> dict[str, int]:
        qs = model._default_manager.all()
        if key_field == "external_key":
            qs = qs.filter(source=SOURCE).exclude(external_key="")
        return dict(qs.values_list(key_field, "id").iterator(chunk_size=10_000))

    # Reading helpers -----------------------------------------------------------------------------

    def rows(self, data_file: DataFile) -> Iterator[tuple[int, list[str]]]:
        """(line, cells) for every row with data; reports short rows; calls progress."""
        width = max(i for i, n in enumerate(data_file.header) if n) + 1
        unreported = 0
        progress, label = self.progress, data_file.label
        with data_file.rows() as reader:
            csv_reader = reader.reader
            for row in reader:
                unreported += 1
                if unreported >= PROGRESS_EVERY:
                    progress(unreported, label)
                    unreported = 0
                if not any(row):
                    continue  # empty / padding row
                if len(row) < width:
                    self.fail(
                        data_file,
                        csv_reader.line_num,
                        data_file.kind,
                        "row",
                        f"{len(row)} fields, expected at least {width}",
                    )
                    continue
                yield csv_reader.line_num, row
            for line in reader.nul_lines:
                self.fail(data_file, line, data_file.kind, "row", NUL_MESSAGE)
        if unreported:
            progress(unreported, label)

    def records(self, data_file: DataFile) -> Iterator[tuple[int, dict[str, str]]]:
        """(line, {column: value}) for every row with data (see rows)."""
        names = data_file.header
        unnamed = not all(names)
        for line, row in self.rows(data_file):
            record = dict(zip(names, row, strict=False))  # C speed; unnamed (padding) columns dropped below
            if unnamed:
                record.pop("", None)
            yield line, record

    # Pass 1: the dimensions (services, CIs, articles) -------------------------------------------

    def scan(self, files: dict[str, DataFile]) -> None:
        self.ci_stats: dict[str, list[Counter]] = {}
        self.wbs: set[str] = set()
        self.km_uses: Counter = Counter()
        self.changes_named: set[str] = set()
        # The cells as read, counted (few distinct values), then read by _ref once each. The CI
        # cells (name, type, subtype, WBS) are counted as one combination, in the order of their
        # first row (aff before CBy in a row), so that per CI the counts and the order values are
        # first seen in (_most_frequent's ties) are those of reading the rows one by one.
        ci_cells: dict[tuple[str, ...], int] = {}
        km_cells: dict[str, int] = {}
        change_cells: set[str] = set()
        blank = ("", "", "", "")

        for kind in ("incident", "interaction", "change"):
            data_file = files.get(kind)
            if data_file is None:
                continue
            wbs_col = "Service Comp WBS (aff)" if kind == "interaction" else "Service Component WBS (aff)"
            names = data_file.header
            idx = {n: i for i, n in enumerate(names) if n}
            aff = [idx.get(c) for c in ("CI Name (aff)", "CI Type (aff)", "CI Subtype (aff)", wbs_col)]
            cby = [
                idx.get(c)
                for c in ("CI Name (CBy)", "CI Type (CBy)", "CI Subtype (CBy)", "ServiceComp WBS (CBy)")
            ]
            i_km, i_change = idx.get("KM number"), idx.get("Related Change")
            i_key = idx[{"incident": "Incident ID", "interaction": "Interaction ID"}.get(kind, "Change ID")]
            width = len([n for n in names if n])
            cells_aff = _cells(aff)
            cells_cby = _cells(cby) if kind == "incident" else None
            change_cell = kind == "incident"
            km_cell = kind != "change"
            get = ci_cells.get
            with data_file.rows() as reader:
                read = 0
                for row in reader:
                    read += 1
                    if read >= PROGRESS_EVERY:
                        self.progress(read, f"scan {data_file.label}")
                        read = 0
                    if len(row) < width or not _ref(row[i_key]):
                        continue
                    cells = cells_aff(row)
                    ci_cells[cells] = get(cells, 0) + 1
                    if cells_cby is not None:
                        cells = cells_cby(row)
                        ci_cells[cells] = get(cells, 0) + 1
                    if change_cell:
                        change_cells.add(row[i_change] if i_change is not None else "")
                    if km_cell:
                        km = row[i_km] if i_km is not None else ""
                        km_cells[km] = km_cells.get(km, 0) + 1
                if read:
                    self.progress(read, f"scan {data_file.label}")

        for cells, n in ci_cells.items():
            if cells == blank:
                continue
            name, ci_type, subtype, wbs = cells
            wbs_ref = _ref(wbs)
            if wbs_ref:
                self.wbs.add(wbs_ref)
            name_ref = _ref(name)
            if not name_ref:
                continue
            stats = self.ci_stats.get(name_ref)
            if stats is None:
                stats = self.ci_stats[name_ref] = [Counter(), Counter(), Counter()]
            ci_type = _ref(ci_type) or ""
            subtype = _ref(subtype) or ""
            stats[0]["" if ci_type == "no type" else ci_type] += n
            stats[1]["" if subtype == "no subtype" else subtype] += n
            stats[2][wbs_ref or ""] += n
        for cell in change_cells:
            change = _ref(cell)
            if change:
                self.changes_named.add(change)
        for cell, n in km_cells.items():
            km = _ref(cell)
            if km:
                self.km_uses[km] += n

    def import_dimensions(self) -> None:
        from tikting.cmdb.models import ConfigurationItem, Service
        from tikting.knowledge.models import Article

        # Services, by name (no external key on Service).
        existing = set(Service.objects.filter(name__in=self.wbs).values_list("name", flat=True))
        Service.objects.bulk_create(
            [
                Service(name=code, description=f"BPI Challenge 2014 service component {code}", source=SOURCE)
                for code in sorted(self.wbs - existing)
            ],
            batch_size=BATCH,
        )
        if self.wbs - existing:
            self.report.count("service", "created", len(self.wbs - existing))
        if existing:
            self.report.count("service", "unchanged", len(existing))
        self.service_ids = dict(Service.objects.filter(name__in=self.wbs).values_list("name", "id"))

        # Configuration items.
        fields = ["ci_class", "ci_type", "service_id", "raw"]
        batch: dict[str, tuple[str, int, dict[str, Any]]] = {}
        for name in sorted(self.ci_stats):
            types, subtypes, services = self.ci_stats[name]
            ci_type, subtype, wbs = (_most_frequent(c) for c in (types, subtypes, services))
            raw: dict[str, Any] = {"CI Name": name, "CI Type": ci_type, "CI Subtype": subtype, "WBS": wbs}
            if len(types) > 1 or len(subtypes) > 1 or len(services) > 1:
                raw["seen"] = {
                    "CI Type": dict(types.most_common()),
                    "CI Subtype": dict(subtypes.most_common()),
                    "WBS": dict(services.most_common()),
                }
            batch[name] = (
                "(configuration items)",
                0,
                {
                    "name": name,
                    "ci_class": ci_class_for(ci_type, subtype, name),
                    "ci_type": " / ".join(v for v in (ci_type, subtype) if v)[:100],
                    "service_id": self.service_ids.get(wbs),
                    "raw": raw,
                },
            )
            if len(batch) >= BATCH:
                self.tally("ci", self.upsert(ConfigurationItem, "ci", batch, fields))
                batch = {}
        self.tally("ci", self.upsert(ConfigurationItem, "ci", batch, fields))
        self.ci_ids = self.ids(ConfigurationItem)
        del self.ci_stats

        # Knowledge article stubs.
        batch = {}
        for number in sorted(self.km_uses):
            batch[number] = (
                "(knowledge articles)",
                0,
                {"number": number, "raw": {"KM number": number}},
            )
            if len(batch) >= BATCH:
                self.tally("article", self.upsert(Article, "article", batch, ["raw"]))
                batch = {}
        self.tally("article", self.upsert(Article, "article", batch, ["raw"]))
        self.article_ids = self.ids(Article)

    # Changes ---------------------------------------------------------------------------------

    CHANGE_FIELDS = [
        "number",
        "change_type",
        "status",
        "risk",
        "opened_at",
        "closed_at",
        "planned_start",
        "planned_end",
        "actual_start",
        "actual_end",
        "outcome",
        "service_id",
        "ci_id",
        "raw",
    ]

    def change_values(self, row: dict[str, str]) -> dict[str, Any]:
        z = self.zone
        emergency = parse_yn(row["Emergency Change"], "Emergency Change")
        self.raw_only(parse_yn, row.get("CAB-approval needed", ""), "CAB-approval needed")
        change_type_raw = row["Change Type"].strip()
        if emergency:
            change_type = "emergency"
        elif change_type_raw.startswith(("Standard Change Type", "Standard Activity Type")):
            change_type = "standard"
        else:
            change_type = "normal"
        opened = parse_datetime(row["Change record Open Time"], z, "Change record Open Time")
        if opened is None:
            raise BadField("Change record Open Time", "missing")
        closed = parse_datetime(row["Change record Close Time"], z, "Change record Close Time")
        actual_start = parse_datetime(row["Actual Start"], z, "Actual Start")
        actual_end = parse_datetime(row["Actual End"], z, "Actual End")
        for name in ("Scheduled Downtime Start", "Scheduled Downtime End", "Requested End Date"):
            self.raw_only(parse_datetime, row.get(name, ""), z, name)
        self.raw_only(parse_int, row.get("# Related Interactions", ""), "# Related Interactions")
        caused = parse_int(row["# Related Incidents"], "# Related Incidents") or 0
        number = row["Change ID"].replace("\ufeff", "").strip()
        if closed:
            status = "closed"
        elif actual_end:
            status = "review"
        elif actual_start:
            status = "implementing"
        else:
            status = "new"
        return {
            "number": number,
            "change_type": change_type,
            "status": status,
            "risk": row["Risk Assessment"].strip()[:40],
            "opened_at": opened,
            "closed_at": closed,
            "planned_start": parse_datetime(row["Planned Start"], z, "Planned Start"),
            "planned_end": parse_datetime(row["Planned End"], z, "Planned End"),
            "actual_start": actual_start,
            "actual_end": actual_end,
            "outcome": "caused_incident" if caused > 0 or number in self.changes_named else "",
            "service_id": self.service_ids.get(_ref(row["Service Component WBS (aff)"]) or ""),
            "ci_id": self.ci_ids.get(_ref(row["CI Name (aff)"]) or ""),
            "raw": row,
        }

    def import_changes(self, data_file: DataFile) -> None:
        from tikting.changes.models import Change

        through = Change.affected_cis.through
        link_writer = self.writer(through)

        def flush(batch: dict[str, tuple[str, int, dict[str, Any]]], links: dict[str, set[int]]) -> None:
            outcomes = self.upsert(Change, "change", batch, self.CHANGE_FIELDS, want_ids=True)
            ids = {key: pk for key, (pk, _) in outcomes.items()}
            have: dict[int, set[int]] = {}
            for change_id, ci_id in through.objects.filter(change_id__in=list(ids.values())).values_list(
                "change_id", "configurationitem_id"
            ):
                have.setdefault(change_id, set()).add(ci_id)
            add: list[tuple[int, int]] = []
            remove: list[tuple[int, int]] = []
            for key, change_id in ids.items():
                want = links.get(key, set())
                got = have.get(change_id, set())
                add += [(change_id, ci) for ci in want - got]
                remove += [(change_id, ci) for ci in got - want]
                if want != got and outcomes[key][1] == "unchanged":
                    outcomes[key] = (change_id, "updated")
            add.sort()  # the links' ids in one order, however the sets were built (or sent)
            link_writer.insert_rows(("change_id", "configurationitem_id"), add)
            for change_id, ci in remove:
                through.objects.filter(change_id=change_id, configurationitem_id=ci).delete()
            self.tally("change", outcomes)

        late_links: set[tuple[str, int]] = reading.drain(
            self.piped(lambda: self.change_batches(data_file)), lambda batch: flush(*batch)
        )
        if late_links:
            change_ids = self.ids(Change)
            through.objects.bulk_create(
                [
                    through(change_id=change_ids[key], configurationitem_id=ci)
                    for key, ci in late_links
                    if key in change_ids
                ],
                ignore_conflicts=True,
            )

    def change_batches(
        self, data_file: DataFile
    ) -> Generator[
        tuple[dict[str, tuple[str, int, dict[str, Any]]], dict[str, set[int]]], None, set[tuple[str, int]]
    ]:
        """The changes in batches ({key: (file, line, values)}, {key: CI ids}): a change's rows
        are consecutive, one per CI it affects, and a batch ends between two changes. Returns the
        (key, CI id) links of rows that come after their change's batch. Reports the rows that
        fail. Reads only (runs in the reading process: piped)."""
        done: set[str] = set()  # changes already sent (their later rows add CI links only)
        late_links: set[tuple[str, int]] = set()
        batch: dict[str, tuple[str, int, dict[str, Any]]] = {}
        links: dict[str, set[int]] = {}
        current: str | None = None
        for line, row in self.records(data_file):
            key = _ref(row["Change ID"])
            if not key:
                self.fail(data_file, line, "change", "Change ID", "missing")
                continue
            ci_id = self.ci_ids.get(_ref(row["CI Name (aff)"]) or "")
            if key in done:
                if ci_id:
                    late_links.add((key, ci_id))
                continue
            if key != current and len(batch) >= BATCH:
                yield batch, links
                done.update(batch)
                batch, links = {}, {}
            current = key
            if key not in batch:
                try:
                    values = self.row_values(data_file, line, self.change_values, row)
                    batch[key] = (data_file.label, line, values)
                except BadField as bad:
                    self.fail(data_file, line, "change", bad.field, bad.message)
                    continue
            if ci_id:
                links.setdefault(key, set()).add(ci_id)
        yield batch, links
        return late_links

    # Incidents -------------------------------------------------------------------------------

    INCIDENT_FIELDS = (
        "source",
        "external_key",
        "number",
        "status",
        "opened_at",
        "resolved_at",
        "closed_at",
        "priority",
        "impact",
        "urgency",
        "category",
        "service_id",
        "ci_id",
        "caused_by_ci_id",
        "reassignment_count",
        "reopen_count",
        "closure_code",
        "related_change_id",
        "caused_by_change_id",
        "knowledge_article_id",
        *SLA_FIELDS,
        "raw",
    )
    INCIDENT_STATUS = {
        "closed": "closed",
        "work in progress": "in_progress",
        "open": "new",
        "resolved": "resolved",
    }

    def import_incidents(self, data_file: DataFile) -> None:
        from tikting.incidents.models import Incident

        for batch in self.piped(lambda: self.incident_batches(data_file)):
            self.upsert_rows(Incident, "incident", batch, self.INCIDENT_FIELDS)

    def incident_batches(
        self, data_file: DataFile
    ) -> Generator[list[tuple[str, int, tuple[Any, ...]]], None, None]:
        """The incidents' rows in batches of (file, line, INCIDENT_FIELDS values), their SLA due
        times and verdicts computed; reports the rows that fail. Reads only (runs in the reading
        process: piped)."""
        from tikting.incidents.models import Incident

        header = data_file.header
        col = {n: i for i, n in enumerate(header) if n}  # a repeated name: its last column
        named = list(col.values())
        i_key, i_status, i_open = col["Incident ID"], col["Status"], col["Open Time"]
        i_reopen, i_resolved, i_close = col["Reopen Time"], col["Resolved Time"], col["Close Time"]
        i_hours, i_change = col["Handle Time (Hours)"], col["Related Change"]
        i_priority, i_impact, i_urgency = col["Priority"], col["Impact"], col["Urgency"]
        i_category, i_service, i_ci = (
            col["Category"],
            col["Service Component WBS (aff)"],
            col["CI Name (aff)"],
        )
        i_cby, i_reassign = col.get("CI Name (CBy)"), col["# Reassignments"]
        i_closure, i_km = col["Closure Code"], col["KM number"]
        counts = [
            (col.get(name), name)
            for name in ("# Related Interactions", "# Related Incidents", "# Related Changes")
        ]
        services, cis, articles = RefIds(self.service_ids), RefIds(self.ci_ids), RefIds(self.article_ids)
        changes = RefIds(self.change_ids)
        raw_json = raw_encoder(header)
        stamp = self.stamps.text
        writer = self.writer(Incident)
        fields = self.INCIDENT_FIELDS[2:-5]  # the values SLA definitions are selected and evaluated on
        statuses = self.INCIDENT_STATUS
        label = data_file.label
        seen: set[str] = set()
        batch: list[tuple[str, int, tuple[Any, ...]]] = []
        for line, row in self.rows(data_file):
            key = _ref(row[i_key])
            if not key:
                if any(row[i].strip() for i in named):
                    self.fail(data_file, line, "incident", "Incident ID", "missing")
                continue  # padding row (quirk 1): not an error
            if key in seen:
                self.fail(data_file, line, "incident", "Incident ID", f"duplicate {key}")
                continue
            warnings = []
            try:
                status = statuses.get(row[i_status].strip().lower())
                if status is None:
                    raise BadField("Status", f"unknown status: {row[i_status]!r}")
                opened = stamp(row[i_open], "Open Time")
                if opened is None:
                    raise BadField("Open Time", "missing")
                reopened = stamp(row[i_reopen], "Reopen Time")
                try:  # raw only
                    parse_decimal_comma(row[i_hours], "Handle Time (Hours)")
                except BadField as bad:
                    warnings.append(bad)
                for i, name in counts:
                    try:
                        parse_int(row[i] if i is not None else "", name)
                    except BadField as bad:
                        warnings.append(bad)
                change_id = changes[row[i_change]]
                values = (
                    key,
                    status,
                    opened,
                    stamp(row[i_resolved], "Resolved Time"),
                    stamp(row[i_close], "Close Time"),
                    parse_level(row[i_priority], "Priority"),
                    parse_level(row[i_impact], "Impact"),
                    parse_level(row[i_urgency], "Urgency"),
                    row[i_category].strip()[:100],
                    services[row[i_service]],
                    cis[row[i_ci]],
                    cis[row[i_cby] if i_cby is not None else ""],
                    parse_int(row[i_reassign], "# Reassignments"),
                    1 if reopened else 0,
                    normalise_closure_code(row[i_closure])[:100],
                    change_id,
                    change_id,
                    articles[row[i_km]],
                )
            except BadField as bad:
                self.fail(data_file, line, "incident", bad.field, bad.message)
                continue
            for warning in warnings:
                self.report.warning(label, line, warning.field, f"{warning.message} (kept in raw only)")
            seen.add(key)
            slas: tuple[Any, ...] = (None, None, None, None)
            if self.slas:
                slas = self.sla_values(writer.python_values(values, fields))
                slas = (writer.stored_datetime(slas[0]), writer.stored_datetime(slas[1]), *slas[2:])
            batch.append((label, line, (SOURCE, key, *values, *slas, raw_json(row))))
            if len(batch) >= BATCH:
                yield batch
                batch = []
        if batch:
            yield batch

    def sla_values(self, values: dict[str, Any]) -> tuple:
        """The SLA due times and met flags of an incident row, by the rules of apply_slas
        (tikting.slas.verdicts.evaluate), computed before the row is written: writing them with the
        row costs nothing, an UPDATE of every incident after the COPY would (one entry in each of
        the table's indexes per row: ~10 s for 46k incidents on PostgreSQL)."""
        definition = select_definition(self.slas, values["service_id"], values["priority"])
        if definition is None:
            return None, None, None, None
        calendar = self.calendars.get(definition.pk)
        if calendar is None:
            calendar = self.calendars[definition.pk] = BusinessCalendar.of(definition)
        incident = SimpleNamespace(responded_at=None, **values)
        return evaluate(incident, definition, now=self.now, calendar=calendar)

    # Interactions ----------------------------------------------------------------------------

    INTERACTION_FIELDS = (
        "source",
        "external_key",
        "number",
        "opened_at",
        "closed_at",
        "handle_time_seconds",
        "first_contact_resolution",
        "category",
        "priority",
        "service_id",
        "ci_id",
        "incident_id",
        "knowledge_article_id",
        "raw",
    )

    def import_interactions(self, data_file: DataFile) -> None:
        from tikting.incidents.models import Interaction

        for batch in self.piped(lambda: self.interaction_batches(data_file)):
            self.upsert_rows(Interaction, "interaction", batch, self.INTERACTION_FIELDS)

    def interaction_batches(
        self, data_file: DataFile
    ) -> Generator[list[tuple[str, int, tuple[Any, ...]]], None, None]:
        """The interactions' rows in batches of (file, line, INTERACTION_FIELDS values); reports the
        rows that fail. Reads only (runs in the reading process: piped)."""
        header = data_file.header
        col = {n: i for i, n in enumerate(header) if n}  # a repeated name: its last column
        named = list(col.values())
        i_key, i_open, i_close = col["Interaction ID"], col["Open Time (First Touch)"], col["Close Time"]
        i_impact, i_urgency, i_priority = col["Impact"], col["Urgency"], col["Priority"]
        i_handle, i_fcr, i_category = col["Handle Time (secs)"], col["First Call Resolution"], col["Category"]
        i_service, i_ci = col["Service Comp WBS (aff)"], col["CI Name (aff)"]
        i_incident, i_km = col["Related Incident"], col["KM number"]
        services, cis = RefIds(self.service_ids), RefIds(self.ci_ids)
        incidents, articles = RefIds(self.incident_ids), RefIds(self.article_ids)
        raw_json = raw_encoder(header)
        stamp = self.stamps.text
        label = data_file.label
        seen: set[str] = set()
        batch: list[tuple[str, int, tuple[Any, ...]]] = []
        for line, row in self.rows(data_file):
            key = _ref(row[i_key])
            if not key:
                if any(row[i].strip() for i in named):
                    self.fail(data_file, line, "interaction", "Interaction ID", "missing")
                continue  # padding row (quirk 1): not an error
            if key in seen:
                self.fail(data_file, line, "interaction", "Interaction ID", f"duplicate {key}")
                continue
            warnings = []
            try:
                opened = stamp(row[i_open], "Open Time (First Touch)")
                if opened is None:
                    raise BadField("Open Time (First Touch)", "missing")
                for i, name in ((i_impact, "Impact"), (i_urgency, "Urgency")):  # raw only
                    try:
                        parse_level(row[i], name)
                    except BadField as bad:
                        warnings.append(bad)
                values = (
                    SOURCE,
                    key,
                    key,
                    opened,
                    stamp(row[i_close], "Close Time"),
                    parse_int(row[i_handle], "Handle Time (secs)"),
                    parse_yn(row[i_fcr], "First Call Resolution"),
                    row[i_category].strip()[:100],
                    parse_level(row[i_priority], "Priority"),
                    services[row[i_service]],
                    cis[row[i_ci]],
                    incidents[row[i_incident]],
                    articles[row[i_km]],
                    raw_json(row),
                )
            except BadField as bad:
                self.fail(data_file, line, "interaction", bad.field, bad.message)
                continue
            for warning in warnings:
                self.report.warning(label, line, warning.field, f"{warning.message} (kept in raw only)")
            seen.add(key)
            batch.append((label, line, values))
            if len(batch) >= BATCH:
                yield batch
                batch = []
        if batch:
            yield batch

    # Activities ------------------------------------------------------------------------------

    ACTIVITY_FIELDS = (
        "source",
        "external_key",
        "incident_id",
        "at",
        "activity_type",
        "assignment_group_id",
        "raw",
    )

    def import_activities(self, data_file: DataFile) -> None:
        from tikting.accounts.models import Team
        from tikting.incidents.models import Incident, IncidentActivity

        team_ids = dict(Team.objects.values_list("name", "id"))
        known_teams: set[str] = set()

        def flush(batch: list[tuple[str, int, tuple[Any, ...]]]) -> None:
            """The batch's teams created when new (then counted), their ids put in, the rows written."""
            missing = {values[5] for _f, _n, values in batch if values[5]} - known_teams
            if missing:
                new = sorted(missing - set(team_ids))
                Team.objects.bulk_create(
                    [
                        Team(name=n, description="BPI Challenge 2014 assignment group", source=SOURCE)
                        for n in new
                    ]
                )
                if new:
                    self.report.count("group", "created", len(new))
                    team_ids.update(Team.objects.filter(name__in=new).values_list("name", "id"))
                if len(missing) - len(new):
                    self.report.count("group", "unchanged", len(missing) - len(new))
                known_teams.update(missing)
            team_id = team_ids.get
            rows = [
                (f, n, (s, k, i, at, t, team_id(g) if g else None, r))
                for f, n, (s, k, i, at, t, g, r) in batch
            ]
            self.upsert_rows(IncidentActivity, "activity", rows, self.ACTIVITY_FIELDS)

        last_assign, last_closed = reading.drain(self.piped(lambda: self.activity_batches(data_file)), flush)

        # Incident.assignment_group: the last (re)assignment's group, else the Closed activity's.
        wanted: dict[int, int | None] = {
            k: team_ids.get(v[2]) if v[2] else None for k, v in last_closed.items()
        }
        wanted.update({k: team_ids.get(v[2]) if v[2] else None for k, v in last_assign.items()})
        current = dict(
            Incident.objects.filter(id__in=list(wanted)).values_list("id", "assignment_group_id")
            if len(wanted) < 5000
            else Incident.objects.filter(source=SOURCE).values_list("id", "assignment_group_id")
        )
        by_team: dict[int | None, list[int]] = {}
        for incident_id, team_id in wanted.items():
            if incident_id in current and current[incident_id] != team_id:
                by_team.setdefault(team_id, []).append(incident_id)
        for team_id, incident_ids in by_team.items():
            for start in range(0, len(incident_ids), BATCH):
                Incident.objects.filter(id__in=incident_ids[start : start + BATCH]).update(
                    assignment_group_id=team_id
                )

    # The run -----------------------------------------------------------------------------------

    def activity_batches(
        self, data_file: DataFile
    ) -> Generator[list[tuple[str, int, tuple[Any, ...]]], None, tuple[dict[int, Mark], dict[int, Mark]]]:
        """The activities' rows in batches of (file, line, (source, key, incident id, at, type,
        team name, raw)); reports the rows that fail. Returns, per incident id, the (at, line, team)
        of its last (re)assignment and of its last Closed activity. Reads only (runs in the reading
        process: piped)."""
        seen: set[str] = set()  # activity keys of this run
        header = data_file.header
        col = {n: i for i, n in enumerate(header) if n}  # a repeated name: its last column
        i_incident, i_type, i_stamp = col["Incident ID"], col["IncidentActivity_Type"], col["DateStamp"]
        i_group, i_number = col.get("Assignment Group"), col.get("IncidentActivity_Number")
        raw_json = raw_encoder(header)
        stamp = self.stamps.text
        teams = Refs()
        last_assign: dict[int, Mark] = {}
        last_closed: dict[int, Mark] = {}
        marks = {"Assignment": last_assign, "Reassignment": last_assign, "Closed": last_closed}
        # the Incident ID cell as read -> (incident key, its id or None)
        incidents: dict[str, tuple[str | None, int | None]] = {}
        batch: list[tuple[str, int, tuple[Any, ...]]] = []
        label = data_file.label
        for line, row in self.rows(data_file):
            cell = row[i_incident]
            found = incidents.get(cell)
            if found is None:
                incident = _ref(cell)
                found = incidents[cell] = (incident, self.incident_ids.get(incident) if incident else None)
            incident, incident_id = found
            if not incident:
                self.fail(data_file, line, "activity", "Incident ID", "missing")
                continue
            if incident_id is None:
                self.fail(
                    data_file, line, "activity", "Incident ID", f"{incident} is not an imported incident"
                )
                continue
            activity_type = row[i_type].strip()
            if not activity_type:
                self.fail(data_file, line, "activity", "IncidentActivity_Type", "missing")
                continue
            try:
                at = stamp(row[i_stamp], "DateStamp")
                if at is None:
                    raise BadField("DateStamp", "missing")
            except BadField as bad:
                self.fail(data_file, line, "activity", bad.field, bad.message)
                continue
            team = teams[row[i_group]] if i_group is not None else ""
            number = _ref(row[i_number]) if i_number is not None else None
            key = number or f"{incident}|{activity_type}|{row[i_stamp].strip()}|{team}"
            key = key[:120]
            if key in seen:
                self.fail(data_file, line, "activity", "key", f"duplicate activity {key}")
                continue
            seen.add(key)
            if "\ufeff" in cell:
                row = row.copy()
                row[i_incident] = incident
            batch.append(
                (label, line, (SOURCE, key, incident_id, at, activity_type[:100], team, raw_json(row)))
            )
            target = marks.get(activity_type[:100])
            if target is not None:
                last = target.get(incident_id)
                if last is None or (last[0], last[1]) <= (at, line):
                    target[incident_id] = (at, line, team)
            if len(batch) >= BATCH:
                yield batch
                batch = []
        if batch:
            yield batch
        return last_assign, last_closed

    def run(self) -> None:
        files = find_files(self.folder)
        if not files:
            self.report.error(str(self.folder), 0, "path", "no BPI Challenge 2014 CSV or zip found")
            return
        with ExitStack() as stack:
            # Tables empty at the start (a first import) are bulk loaded: indexes off, back after.
            # The three large files' writers keep the keys of the run in a set (a repeated key is a
            # failed row): their tables' unique (source, key) indexes are built after the load too.
            from tikting.incidents.models import Incident, IncidentActivity, Interaction

            checked = {m._meta.db_table for m in (Incident, Interaction, IncidentActivity)}
            for model in self.loaded_models():
                self.empty[model] = not model._default_manager.exists()
                table = model._meta.db_table
                stack.enter_context(bulk_load(table, enabled=self.empty[model], unique=table in checked))
            self.load(files)

    def loaded_models(self) -> list[type[models.Model]]:
        from tikting.changes.models import Change
        from tikting.cmdb.models import ConfigurationItem
        from tikting.incidents.models import Incident, IncidentActivity, Interaction
        from tikting.knowledge.models import Article

        return [
            ConfigurationItem,
            Article,
            Change,
            Change.affected_cis.through,
            Incident,
            Interaction,
            IncidentActivity,
        ]

    def load(self, files: dict[str, DataFile]) -> None:
        from tikting.changes.models import Change
        from tikting.incidents.models import Incident

        self.scan(files)
        self.import_dimensions()
        if "change" in files:
            self.import_changes(files["change"])
        self.change_ids = self.ids(Change)
        self.slas = definitions_by_key()
        self.calendars: dict[int, BusinessCalendar] = {}
        if "incident" in files:
            self.import_incidents(files["incident"])
        self.incident_ids = self.ids(Incident)
        if "interaction" in files:
            self.import_interactions(files["interaction"])
        if "activity" in files:
            self.import_activities(files["activity"])
        self.count_article_uses()

    def count_article_uses(self) -> None:
        """Article.uses = incidents + interactions of this source naming the article (one aggregate each)."""
        from tikting.incidents.models import Incident, Interaction
        from tikting.knowledge.models import Article

        uses: Counter = Counter()
        for model in (Incident, Interaction):
            for article_id, n in (
                model.objects.filter(source=SOURCE, knowledge_article__isnull=False)
                .values_list("knowledge_article")
                .annotate(n=models.Count("id"))
                .values_list("knowledge_article", "n")
            ):
                uses[article_id] += n
        by_value: dict[int, list[int]] = {}
        for article_id, current in Article.objects.filter(source=SOURCE).values_list("id", "uses"):
            if uses[article_id] != current:
                by_value.setdefault(uses[article_id], []).append(article_id)
        for value, ids in by_value.items():
            for start in range(0, len(ids), BATCH):
                Article.objects.filter(id__in=ids[start : start + BATCH]).update(uses=value)


def import_bpic2014(
    path: str | Path,
    *,
    dry_run: bool = False,
    progress: Progress = no_progress,
    tz: str = "Europe/Amsterdam",
) -> ImportReport:
    """Import the BPI Challenge 2014 files in the folder `path` (zips or CSVs); see the module doc."""
    report = ImportReport(source=SOURCE, dry_run=dry_run)
    folder = Path(path)
    if not folder.is_dir():
        report.error(str(folder), 0, "path", "not a folder")
        return report.finish()
    importer = Importer(folder, report, progress, ZoneInfo(tz))
    with sqlite_load_pragmas(), transaction.atomic():
        try:
            importer.run()
        except UNREADABLE as exc:  # a zip bomb, or a file unreadable past a line
            discard_run(report, str(folder), exc)
            return report.finish()
        if dry_run:
            transaction.set_rollback(True)
    if not dry_run:
        _analyze()
    return report.finish()


def _analyze() -> None:
    """PostgreSQL: refresh the planner's statistics of the tables just loaded. Without them a
    fresh table looks tiny and the next run's key lookups scan it whole (200 ms a batch).

    Every column but the JSON ones (each row's source copy, `raw`): no query filters or sorts on
    them by value, and their samples were more than half of the time ANALYZE took (1.8 s of the
    full data set's, 0.8 s without them). Autovacuum's own ANALYZE takes them later."""
    if connection.vendor != "postgresql":
        return
    from tikting.changes.models import Change
    from tikting.cmdb.models import ConfigurationItem
    from tikting.incidents.models import Incident, IncidentActivity, Interaction
    from tikting.knowledge.models import Article

    models_ = (ConfigurationItem, Article, Change, Change.affected_cis.through, Incident, Interaction)
    with connection.cursor() as cursor:
        for model in (*models_, IncidentActivity):
            quote = connection.ops.quote_name
            columns = [
                quote(f.column)
                for f in model._meta.concrete_fields
                if f.column and not isinstance(f, models.JSONField)
            ]
            cursor.execute(f"ANALYZE {quote(model._meta.db_table)} ({', '.join(columns)})")
