"""`tikting import` on files it cannot take: every error is one clear line and a non-zero exit,
never a traceback; through call_command and through the real `tikting` entry point."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tikting.imports.tests.test_command import call
from tikting.incidents.models import Incident

SAMPLE = Path(__file__).parent / "fixtures" / "servicenow" / "incident_event_log_sample.csv"
ROOT = Path(__file__).resolve().parents[3]  # the checkout under test, whatever .venv installed
UTF16_MESSAGE = "The file is UTF-16 text, not UTF-8: save it as UTF-8"


def utf16_incidents(tmp_path: Path) -> Path:
    path = tmp_path / "incidents.csv"
    path.write_text("number,opened_at\nINC1,2025-03-01T10:00:00Z\n", encoding="utf-16")
    return path


def without_column(tmp_path: Path, column: str) -> Path:
    """The ServiceNow sample without one of its optional columns."""
    rows = [line.split(",") for line in SAMPLE.read_text().splitlines()]
    drop = rows[0].index(column)
    path = tmp_path / "log.csv"
    path.write_text("\n".join(",".join(c for i, c in enumerate(row) if i != drop) for row in rows) + "\n")
    return path


@pytest.mark.django_db
def test_a_utf16_file_is_one_clear_error(tmp_path):
    exc, _out, err = call("import", "incident", str(utf16_incidents(tmp_path)))
    assert exc is not None and exc.returncode == 1
    [line] = err.splitlines()
    assert line.startswith(f"incidents.csv:1: file: {UTF16_MESSAGE}")
    assert not Incident.objects.exists()


@pytest.mark.django_db
def test_a_file_not_utf8_halfway_names_the_line(tmp_path):
    path = tmp_path / "incidents.csv"
    path.write_bytes(b"number,opened_at\nINC1,2025-03-01T10:00:00Z\nINC2,2025-03-0\xff\n")
    exc, _out, err = call("import", "incident", str(path))
    assert exc is not None and exc.returncode == 1
    assert "not UTF-8 text (byte 0xff on line" in err


@pytest.mark.django_db
@pytest.mark.parametrize("column", ["assignment_group", "sys_updated_by"])
def test_servicenow_without_an_optional_column_imports(tmp_path, column):
    exc, out, err = call("import", "servicenow", str(without_column(tmp_path, column)))
    assert exc is None, err
    assert "servicenow-uci: 0 error(s)" in out
    assert Incident.objects.count() == 33
    if column == "assignment_group":
        assert not Incident.objects.filter(assignment_group__isnull=False).exists()


@pytest.mark.django_db
def test_servicenow_utf16_folder_and_broken_zip_are_one_line_each(tmp_path):
    utf16 = tmp_path / "log.csv"
    utf16.write_text(SAMPLE.read_text(), encoding="utf-16")
    exc, _out, err = call("import", "servicenow", str(utf16))
    assert exc.returncode == 1 and err.splitlines() == [
        f"log.csv:1: file: {UTF16_MESSAGE} (in Excel: “CSV UTF-8”) and import again. Nothing was imported."
    ]
    exc, _out, _err = call("import", "servicenow", str(tmp_path))
    assert exc is not None and str(exc).startswith(f"Cannot read {tmp_path}")
    broken = tmp_path / "log.zip"
    broken.write_bytes(b"PK\x05\x06" + b"\x00" * 18)  # an empty zip's end record only: no members
    exc, _out, err = call("import", "servicenow", str(broken))
    assert exc is not None and "log.zip holds no .csv file" in err


@pytest.mark.django_db
def test_servicenow_nul_in_a_cell_fails_that_row(tmp_path):
    lines = SAMPLE.read_text().splitlines()
    lines[1] = lines[1].replace("Category 55", "Category\x0055")
    path = tmp_path / "log.csv"
    path.write_text("\n".join(lines) + "\n")
    exc, _out, err = call("import", "servicenow", str(path))
    assert exc.returncode == 1
    assert err.splitlines() == ["log.csv:2: category: Text may not contain the NUL character (U+0000)."]
    assert Incident.objects.count() == 33  # its incident is kept from its other rows


# --- Through the `tikting` console script -------------------------------------------------------


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    """A migrated SQLite database of its own: the subprocess cannot see the test's."""
    folder = tmp_path_factory.mktemp("cli")
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}",
        "TIKTING_VAR_DIR": str(folder / "var"),
        "PYTHONPATH": str(ROOT),
    }
    tikting(env, "migrate", "--noinput", "-v0", check=True)
    return env


def tikting(env: dict[str, str], *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("tikting")
    command = [str(script)] if script.exists() else [shutil.which("tikting") or "tikting"]
    done = subprocess.run(
        [*command, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert not check or done.returncode == 0, done.stderr
    return done


def test_the_entry_point_reports_a_utf16_file_in_one_line(database, tmp_path):
    done = tikting(database, "import", "incident", str(utf16_incidents(tmp_path)))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[0].startswith(f"incidents.csv:1: file: {UTF16_MESSAGE}")
    assert done.stderr.splitlines()[-1] == "CommandError: 1 error(s); see above."


def test_the_entry_point_imports_servicenow_without_assignment_group(database, tmp_path):
    done = tikting(database, "import", "servicenow", str(without_column(tmp_path, "assignment_group")))
    assert done.returncode == 0, done.stderr
    assert "servicenow-uci: 0 error(s)" in done.stdout


def test_the_entry_point_says_no_such_file_in_one_line(database, tmp_path):
    done = tikting(database, "import", "incident", str(tmp_path / "missing.csv"))
    assert done.returncode == 1
    assert done.stderr.strip() == f"CommandError: No such file or folder: {tmp_path / 'missing.csv'}"
