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

from tikting.lib import untrusted

FORMATS = ("csv", "json", "jsonl")
EMPTY_MESSAGE = "The file is empty."


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

    def __reduce__(self) -> tuple[type, tuple[int, str]]:  # pickled by a reading process (imports.piped)
        return (type(self), (self.line, self.message))


UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def not_utf8(exc: UnicodeDecodeError, line: int) -> FileFormatError:
    """The FileFormatError for text that does not decode as UTF-8, met while reading `line` (text is
    decoded in blocks, so the bad byte is on that line or a later one)."""
    if line <= 1 and bytes(exc.object[:2]) in UTF16_BOMS:
        return FileFormatError(
            1,
            "The file is UTF-16 text, not UTF-8: save it as UTF-8 (in Excel: “CSV UTF-8”) and import again.",
        )
    byte = exc.object[exc.start]
    return FileFormatError(
        line,
        f"The file is not UTF-8 text (byte 0x{byte:02x} on line {line} or after it): save it as UTF-8 "
        "and import again.",
    )


def read_json(stream: IO[str]) -> Iterator[tuple[int, Any]]:
    """JSON Lines (one object a line) or a JSON array of objects, told apart by the first character.

    A value holding a NUL character or nested too deeply comes as a ValueError for its row
    (tikting.lib.untrusted); an empty file or text that is not UTF-8 raises FileFormatError.
    """
    line = 0
    try:
        for line, value in _read_json(stream):
            yield line, value
    except UnicodeDecodeError as exc:
        raise not_utf8(exc, line + 1) from exc


def _read_json(stream: IO[str]) -> Iterator[tuple[int, Any]]:
    first = stream.read(1)
    while first and first.isspace():
        first = stream.read(1)
    if not first:
        raise FileFormatError(1, EMPTY_MESSAGE)
    if first == "[":
        for number, value in read_json_array(stream):
            yield number, _checked(value)
        return
    # JSON Lines: the first line is the character we read and the rest of its line.
    head = first + stream.readline()
    for number, line in enumerate(chain([head], stream), start=1):
        if not line.strip():
            continue
        try:
            yield number, _checked(untrusted.loads(line))
        except json.JSONDecodeError as exc:
            yield number, ValueError(f"Not valid JSON: {exc.msg} (column {exc.colno})")
        except untrusted.UntrustedInputError as exc:
            yield number, ValueError(str(exc))


def _checked(value: Any) -> Any:
    """The value, or a ValueError naming where it holds a NUL or nests too deeply."""
    problems = untrusted.problems_in(value)
    return ValueError(str(untrusted.UntrustedInputError(problems))) if problems else value


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
            except RecursionError:
                # Where the value ends is unknown: the array cannot be read on.
                raise FileFormatError(line, untrusted.DEPTH_MESSAGE) from None
        yield line, value
        line += buf.count("\n", pos, end)
        pos = end
        expect_value = False


def read_csv(stream: IO[str], allowed: Iterable[str]) -> Iterator[tuple[int, Any]]:
    """(first line of the row, row dict) pairs; a bad row (too many cells, a stray quote, a NUL
    character) comes as a ValueError naming what is wrong, and the read goes on.

    Errors that stop the read (FileFormatError, naming the line): an empty file; columns outside
    `allowed` (a misspelt column would otherwise be ignored silently); a quoted cell never closed
    (it would swallow every line after it); a cell over the CSV field size limit. Cells are
    un-escaped (csv_unescape).
    """
    # strict: a quote in the wrong place is an error for its row, and a quote never closed is an
    # error at the end of the file, instead of both being read silently as text.
    reader = csv.DictReader(stream, strict=True)
    try:
        fieldnames = reader.fieldnames
    except csv.Error as exc:
        raise FileFormatError(1, f"Not a CSV file: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise not_utf8(exc, 1) from exc
    if not fieldnames:
        raise FileFormatError(1, EMPTY_MESSAGE)
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
        except UnicodeDecodeError as exc:
            raise not_utf8(exc, start) from exc
        except csv.Error as exc:
            # DictReader.line_num moves on success only: the underlying reader's counts the lines.
            last = reader.reader.line_num
            csv_file_error(exc, start, last)
            yield start, ValueError(f"Unreadable CSV: {exc}.")
            continue
        last = reader.line_num
        if None in row:  # more cells than columns
            yield start, ValueError(f"{len(row[None])} cell(s) more than there are columns")
            continue
        nul = [key for key, value in row.items() if isinstance(value, str) and untrusted.NUL in value]
        if nul:
            yield start, ValueError(f"{', '.join(nul)}: {untrusted.NUL_MESSAGE}")
            continue
        yield start, {key: csv_unescape(value) for key, value in row.items()}


def csv_file_error(exc: csv.Error, start: int, end: int) -> None:
    """Raise FileFormatError for the csv errors after which the file cannot be read on (a quote
    never closed, a cell over the field size limit); return for the others (a row error)."""
    text = str(exc)
    if "unexpected end of data" in text:
        raise FileFormatError(
            start,
            f"The quoted cell opened on line {start} is never closed: every line after it "
            f"(to line {end}, the end of the file) would be read into it.",
        ) from exc
    if "field larger than field limit" in text:
        raise FileFormatError(
            start,
            f"A cell in the row starting on line {start} is longer than {csv.field_size_limit():,} "
            "characters, the CSV limit (often a quote never closed).",
        ) from exc


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
