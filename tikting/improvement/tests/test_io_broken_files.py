"""Broken and hostile register files (`tikting register import`, POST /api/items/import): a file
that cannot be read to its end (a quote never closed, a cell over the CSV limit, JSON nested too
deeply, not UTF-8) imports nothing and says so, naming the line; an empty file says it is empty;
a NUL character fails its row only."""

from __future__ import annotations

import csv
import io as stdio
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client

from tikting.accounts.models import ApiToken
from tikting.improvement import io
from tikting.improvement.models import Item

pytestmark = pytest.mark.django_db

HEADER = "external_id,title,impact,effort\n"
GOOD = "A-1,Good row,4,2\nA-2,Another good row,3,3\n"


def run(cast: Any, text: str, fmt: str = "csv", **kw: Any) -> io.ImportResult:
    return io.import_items(stdio.StringIO(text), fmt=fmt, actor=cast.manager, **kw)


def errors(result: io.ImportResult) -> list[tuple[int, str, str]]:
    return [(e.line, e.field, e.message) for e in result.errors]


def test_an_unterminated_quote_imports_nothing_and_names_its_line(cast):
    result = run(cast, HEADER + GOOD + 'A-3,"Never closed,3,3\nA-4,Swallowed,2,2\n')
    [(line, field, message)] = errors(result)
    assert (line, field) == (4, "file")
    assert "never closed" in message and "Nothing was imported" in message
    assert result.created == 0 and not Item.objects.exists()


def test_a_cell_over_the_csv_limit_imports_nothing(cast):
    huge = "x" * (csv.field_size_limit() + 1)
    result = run(cast, HEADER + GOOD + f"A-3,{huge},3,3\n")
    [(line, field, message)] = errors(result)
    assert (line, field) == (4, "file") and "longer than" in message
    assert not Item.objects.exists()


@pytest.mark.parametrize("fmt,text", [("csv", ""), ("csv", "\n"), ("json", ""), ("jsonl", " \n ")])
def test_an_empty_file_says_it_is_empty(cast, fmt, text):
    result = run(cast, text, fmt=fmt)
    assert [(line, field) for line, field, _m in errors(result)] == [(1, "file")]
    assert errors(result)[0][2].startswith("The file is empty.")
    assert result.failed == 1


def test_a_nul_in_a_cell_fails_its_row_and_keeps_the_others(cast):
    result = run(cast, HEADER + GOOD + "A-3,Bad\x00title,3,3\n")
    [(line, field, message)] = errors(result)
    assert (line, field) == (4, "row") and "title" in message and "U+0000" in message
    assert result.created == 2
    assert set(Item.objects.values_list("external_id", flat=True)) == {"A-1", "A-2"}


def test_a_dry_run_says_nothing_would_be_imported(cast):
    result = run(cast, HEADER + GOOD + 'A-3,"Never closed,3,3\n', dry_run=True)
    assert "Nothing was imported" in errors(result)[0][2]


def test_the_command_exits_1_with_the_file_error(cast, tmp_path):
    path = tmp_path / "items.csv"
    path.write_text(HEADER + GOOD + 'A-3,"Never closed,3,3\n')
    err = stdio.StringIO()
    with pytest.raises(CommandError):
        call_command("register", "import", str(path), stdout=stdio.StringIO(), stderr=err)
    assert "line 4" in err.getvalue() and "Nothing was imported" in err.getvalue()
    assert not Item.objects.exists()


# --- Over the API --------------------------------------------------------------------------------


def upload(cast: Any, name: str, data: bytes) -> Any:
    _, raw = ApiToken.issue(cast.manager, "tests")
    file = SimpleUploadedFile(name, data)
    return Client().post("/api/items/import", {"file": file}, headers={"Authorization": f"Bearer {raw}"})


def test_deeply_nested_json_is_a_422_not_a_crash(cast):
    response = upload(cast, "items.json", b"[" * 100_000 + b"]" * 100_000)
    assert response.status_code == 422
    [entry] = response.json()["detail"]
    assert entry["field"] == "file" and "nested too deeply" in entry["message"]
    response = upload(cast, "items.json", b'[{"external_id": "A-1", "title": "x"},' + b"[" * 100_000)
    assert response.status_code == 422
    assert not Item.objects.exists()


def test_a_deeply_nested_json_line_fails_its_row(cast):
    deep = b'{"external_id": "A-2", "title": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    response = upload(cast, "items.jsonl", b'{"external_id": "A-1", "title": "Fine"}\n' + deep + b"\n")
    assert response.status_code == 200
    body = response.json()
    assert body["created"] == 1 and body["failed"] == 1
    assert body["errors"][0]["line"] == 2 and "nested too deeply" in body["errors"][0]["message"]


def test_a_file_error_over_the_api_is_a_422_naming_the_line(cast):
    response = upload(cast, "items.csv", (HEADER + GOOD + 'A-3,"Never closed,3,3\n').encode())
    assert response.status_code == 422
    [entry] = response.json()["detail"]
    assert entry["field"] == "file" and entry["message"].startswith("Line 4: ")
    assert not Item.objects.exists()


def test_a_utf16_file_over_the_api_says_so(cast):
    response = upload(cast, "items.csv", (HEADER + GOOD).encode("utf-16"))
    assert response.status_code == 422
    assert "UTF-16" in response.json()["detail"][0]["message"]


@pytest.mark.parametrize(
    "cell,problem",
    [('"' + "[" * 60_000 + '"', "nested too deeply"), ('"[{""name"": ""a\\u0000b""}]"', "U+0000")],
)
def test_json_text_in_a_csv_cell_is_checked_like_json(cast, cell, problem):
    # `indicators` is JSON text in CSV: a NUL escaped in it, or nesting, would pass the cell checks.
    result = run(cast, "external_id,title,indicators\nA-1,Fine,\nA-2,Deep," + cell + "\n")
    [(line, field, message)] = errors(result)
    assert (line, field) == (3, "indicators") and problem in message
    assert list(Item.objects.values_list("external_id", flat=True)) == ["A-1"]
