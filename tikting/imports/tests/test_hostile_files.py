"""Broken and hostile files in the record importer (and the shared reader, tikting/lib/tabular.py):
a NUL character fails its row only, a quote never closed or a cell over the CSV limit stops the read
naming the line, an empty file says so, JSON nested too deeply is refused."""

from __future__ import annotations

import csv
import io

import pytest

from tikting.imports.records import import_records
from tikting.incidents.models import Incident
from tikting.lib.tabular import FileFormatError, read_csv, read_json

pytestmark = pytest.mark.django_db

HEADER = "number,opened_at,short_description\n"


def run(text: str, fmt: str = "csv"):
    return import_records("incident", io.StringIO(text), fmt=fmt, file="in." + fmt)


def errors(report) -> list[tuple[int, str, str]]:
    return [(e.line, e.field, e.message) for e in report.errors]


def test_a_nul_in_a_csv_cell_fails_its_row_by_line_and_keeps_the_others():
    text = HEADER + "INC1,2025-03-01,fine\nINC2,2025-03-01,bad\x00cell\nINC3,2025-03-02,ok\n"
    report = run(text)
    [(line, field, message)] = errors(report)
    assert (line, field) == (3, "row")
    assert "short_description" in message and "U+0000" in message
    assert set(Incident.objects.values_list("number", flat=True)) == {"INC1", "INC3"}


def test_a_nul_in_a_json_line_fails_its_row():
    text = (
        '{"number": "INC1", "opened_at": "2025-03-01T10:00:00Z"}\n'
        '{"number": "INC2", "opened_at": "2025-03-01T10:00:00Z", "raw": {"note": "a\\u0000b"}}\n'
    )
    report = run(text, fmt="jsonl")
    [(line, field, message)] = errors(report)
    assert (line, field) == (2, "row") and "raw.note" in message and "U+0000" in message
    assert list(Incident.objects.values_list("number", flat=True)) == ["INC1"]


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_json_nested_too_deeply_is_refused_not_a_crash(fmt):
    deep = '{"number": "INC2", "opened_at": "2025-03-01", "raw": ' + "[" * 50_000 + "]" * 50_000 + "}"
    good = '{"number": "INC1", "opened_at": "2025-03-01T10:00:00Z"}'
    text = f"{good}\n{deep}\n" if fmt == "jsonl" else f"[{good},\n{deep}]"
    report = run(text, fmt=fmt)
    [(line, _field, message)] = errors(report)
    assert line == 2 and "nested too deeply" in message
    assert list(Incident.objects.values_list("number", flat=True)) == ["INC1"]


def test_an_unterminated_quote_is_an_error_naming_its_line():
    text = HEADER + 'INC1,2025-03-01,fine\nINC2,2025-03-01,"never closed\nINC3,2025-03-02,ok\n'
    report = run(text)
    [(line, field, message)] = errors(report)
    assert (line, field) == (3, "file")
    assert "never closed" in message and "line 3" in message
    # The row before it was written (the record import commits as it goes) and the error says so.
    assert "rows before line 3 were imported" in message
    assert list(Incident.objects.values_list("number", flat=True)) == ["INC1"]


def test_a_stray_quote_fails_its_row_only():
    text = HEADER + 'INC1,2025-03-01T10:00:00Z,"quoted" then text\nINC2,2025-03-01T10:00:00Z,ok\n'
    report = run(text)
    [(line, field, _message)] = errors(report)
    assert (line, field) == (2, "row")
    assert list(Incident.objects.values_list("number", flat=True)) == ["INC2"]


def test_a_cell_over_the_csv_limit_stops_the_read_naming_the_line():
    huge = "x" * (csv.field_size_limit() + 1)
    text = HEADER + f"INC1,2025-03-01T10:00:00Z,ok\nINC2,2025-03-01T10:00:00Z,{huge}\nINC3,2025-03-02,ok\n"
    report = run(text)
    [(line, field, message)] = errors(report)
    assert (line, field) == (3, "file") and "longer than" in message


@pytest.mark.parametrize("fmt,text", [("csv", ""), ("csv", "\n\n"), ("json", ""), ("jsonl", "  \n")])
def test_an_empty_file_says_it_is_empty(fmt, text):
    report = run(text, fmt=fmt)
    assert errors(report) == [(1, "file", "The file is empty.")]
    assert not report.ok


def test_the_shared_reader_raises_for_file_errors_and_yields_row_errors():
    with pytest.raises(FileFormatError) as caught:
        list(read_csv(io.StringIO(""), ["a"]))
    assert caught.value.line == 1
    rows = list(read_csv(io.StringIO('a,b\n1,2\n3,"x" y\n5,6\n'), ["a", "b"]))
    assert [line for line, _row in rows] == [2, 3, 4]
    assert isinstance(rows[1][1], ValueError) and rows[2][1] == {"a": "5", "b": "6"}
    with pytest.raises(FileFormatError):
        list(read_json(io.StringIO("\n")))


@pytest.mark.parametrize(
    "cell,problem",
    [('"' + "[" * 60_000 + '"', "nested too deeply"), ('"{""note"": ""a\\u0000b""}"', "U+0000")],
)
def test_json_text_in_a_csv_cell_is_checked_like_json(cell, problem):
    # `raw` is JSON text in CSV: a NUL escaped in it, or nesting, would pass the cell checks.
    text = "number,opened_at,raw\nINC1,2025-03-01,{}\nINC2,2025-03-01," + cell + "\n"
    report = run(text)
    [(line, field, message)] = errors(report)
    assert (line, field) == (3, "raw") and problem in message
    assert list(Incident.objects.values_list("number", flat=True)) == ["INC1"]
