"""Reading and writing tabular files (CSV, JSON, JSON Lines) as streams: shared by every importer.

Nothing here knows a model: it turns a stream into (line number, row) pairs without reading the
whole file, and makes CSV cells safe to open in a spreadsheet.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

FORMATS = ("csv", "json", "jsonl")


def format_for(path: str | None, given: str | None = None) -> str:
    """The format asked for, else the one a file name's suffix says, else CSV."""
    if given:
        return given
    suffix = Path(path).suffix.lower().lstrip(".") if path else ""
    if suffix in {"json", "jsonl"}:
        return suffix
    return "jsonl" if suffix == "ndjson" else "csv"


# CSV formula injection: a spreadsheet runs a cell that starts with one of these as a formula
# (=HYPERLINK(...), @SUM(...), a tab or carriage return before one). Text cells starting with them
# are exported with a leading apostrophe (the spreadsheet convention for "this is text"); so are
# cells that already start with an apostrophe, which keeps the mapping reversible: the CSV import
# strips exactly one apostrophe before such a character (`csv_unescape`), so export → import
# round-trips every value. Plain numbers ("-2.5", the realised delta) are left alone. CSV only:
# JSON and JSON Lines are not opened by spreadsheets and are written as they are.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
NUMBER_RE = re.compile(r"^[+-]?\d+(?:\.\d+)?$")


def csv_cell(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.startswith((*FORMULA_TRIGGERS, "'")) and not NUMBER_RE.match(value):
        return "'" + value
    return value


def csv_unescape(value: Any) -> Any:
    """Undo csv_cell's apostrophe: only before a formula character or another apostrophe."""
    if isinstance(value, str) and value.startswith("'") and value[1:].startswith((*FORMULA_TRIGGERS, "'")):
        return value[1:]
    return value


class FileFormatError(Exception):
    """The file cannot be read any further (not a row error: the reader cannot resynchronise)."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line
        self.message = message


def read_json(stream: IO[str]) -> Iterator[tuple[int, Any]]:
    """JSON Lines (one object a line) or a JSON array of objects, told apart by the first character."""
    first = stream.read(1)
    while first and first.isspace():
        first = stream.read(1)
    if not first:
        return
    if first == "[":
        yield from read_json_array(stream)
        return
    # JSON Lines: the first line is the character we read and the rest of its line.
    head = first + stream.readline()
    for number, line in enumerate(chain([head], stream), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, ValueError(f"Not valid JSON: {exc.msg} (column {exc.colno})")


def chain(first: Iterable[str], rest: Iterable[str]) -> Iterator[str]:
    yield from first
    yield from rest


def read_json_array(stream: IO[str], chunk: int = 1 << 16) -> Iterator[tuple[int, Any]]:
    """Objects of a JSON array, one at a time, reading the stream in chunks (never all of it)."""
    decoder = json.JSONDecoder()
    buf, pos, line, eof = "", 0, 1, False

    def fill() -> bool:
        nonlocal buf, pos, eof
        if eof:
            return False
        data = stream.read(chunk)
        if not data:
            eof = True
            return False
        buf, pos = buf[pos:] + data, 0
        return True

    expect_value = True
    while True:
        # Skip whitespace (counting lines) and the comma between values.
        while True:
            while pos < len(buf) and buf[pos] in " \t\r\n":
                if buf[pos] == "\n":
                    line += 1
                pos += 1
            if pos < len(buf) or not fill():
                break
        if pos >= len(buf):
            raise FileFormatError(line, "The JSON array is not closed with ']'.")
        char = buf[pos]
        if char == "]":
            return
        if char == ",":
            if expect_value:
                raise FileFormatError(line, "Unexpected ',' in the JSON array.")
            pos += 1
            expect_value = True
            continue
        if not expect_value:
            raise FileFormatError(line, f"Expected ',' or ']' in the JSON array, found {char!r}.")
        while True:
            try:
                value, end = decoder.raw_decode(buf, pos)
                break
            except json.JSONDecodeError as exc:
                if not fill():
                    raise FileFormatError(line, f"Not valid JSON: {exc.msg}.") from exc
        yield line, value
        line += buf.count("\n", pos, end)
        pos = end
        expect_value = False


def read_csv(stream: IO[str], allowed: Iterable[str]) -> Iterator[tuple[int, Any]]:
    """(first line of the row, row dict) pairs; a row with too many cells comes as a ValueError.

    Columns outside `allowed` stop the read (FileFormatError on line 1): a misspelt column would
    otherwise be ignored silently. Cells are un-escaped (csv_unescape).
    """
    reader = csv.DictReader(stream)
    try:
        fieldnames = reader.fieldnames
    except csv.Error as exc:
        raise FileFormatError(1, f"Not a CSV file: {exc}") from exc
    if not fieldnames:
        return
    allowed = set(allowed)
    unknown = [f for f in fieldnames if f not in allowed]
    if unknown:
        raise FileFormatError(1, f"Unknown column(s): {', '.join(unknown)}.")
    last = reader.line_num
    while True:
        start = last + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise FileFormatError(start, f"Unreadable CSV: {exc}") from exc
        last = reader.line_num
        if None in row:  # more cells than columns
            yield start, ValueError(f"{len(row[None])} cell(s) more than there are columns")
            continue
        yield start, {key: csv_unescape(value) for key, value in row.items()}


class ChunkedImport:
    """Rows fed one at a time (from read_csv / read_json), written `chunk_size` at a time by the
    subclass's flush(). A row naming a record already waiting in the chunk flushes the chunk
    first, so the second row matches the record the first one wrote. Subclasses give
    row_keys(raw) (the keys a row can match a record on), fail(line, errors) and flush(), and
    keep `pending` (line, raw) and `pending_keys`."""

    chunk_size = 1000
    pending: list[tuple[int, Any]]
    pending_keys: set[Any]

    def row_keys(self, raw: dict[str, Any]) -> set[Any]:
        raise NotImplementedError

    def fail(self, line: int, errors: dict[str, str]) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        raise NotImplementedError

    def feed(self, line: int, raw: Any) -> None:
        if isinstance(raw, Exception):
            self.fail(line, {"row": str(raw)})
            return
        if not isinstance(raw, dict):
            self.fail(line, {"row": "Each row must be a JSON object."})
            return
        keys = self.row_keys(raw)
        if keys & self.pending_keys:
            self.flush()  # the same record twice in one chunk: write the first before matching the second
        self.pending.append((line, raw))
        self.pending_keys |= keys
        if len(self.pending) >= self.chunk_size:
            self.flush()
