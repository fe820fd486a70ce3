"""Zip bombs: an archive member that unpacks past TIKTING_IMPORT_MAX_UNPACKED_BYTES, or is compressed
more than TIKTING_IMPORT_MAX_ZIP_RATIO to 1, is refused before a byte of it is imported, in the
ServiceNow and BPI Challenge 2014 importers alike (both read zips through tikting.lib.archives)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from tikting.imports.base import zip_limits
from tikting.imports.bpic2014 import import_bpic2014
from tikting.imports.servicenow import import_servicenow
from tikting.imports.tests.test_command import call
from tikting.incidents.models import Incident

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLE = FIXTURES / "servicenow" / "incident_event_log_sample.csv"
DATA = Path("/work/shared/data")

pytestmark = pytest.mark.django_db


def make_bomb(path: Path, member: str, header: bytes, megabytes: int) -> Path:
    """A zip whose one member is `header` then `megabytes` MB of zeros: about 1000 to 1 (a
    64 MB member takes 64 KB on disk), written a megabyte at a time."""
    zeros = b"0" * (1 << 20)
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive,
        archive.open(member, "w", force_zip64=True) as out,
    ):
        out.write(header)
        for _ in range(megabytes):
            out.write(zeros)
    return path


def test_a_servicenow_zip_bomb_is_refused_before_reading(tmp_path):
    bomb = make_bomb(tmp_path / "log.zip", "incident_event_log.csv", SAMPLE.read_bytes(), 64)
    assert bomb.stat().st_size < 200_000
    report = import_servicenow(bomb)
    [error] = report.errors
    assert (error.line, error.field) == (0, "file")
    assert "compressed" in error.message and "zip bomb" in error.message
    assert "Nothing was imported" in error.message
    assert report.counts == {} and Incident.objects.count() == 0


def test_a_member_over_the_size_limit_is_refused(tmp_path, settings):
    settings.TIKTING_IMPORT_MAX_UNPACKED_BYTES = 10_000
    archive = tmp_path / "log.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(SAMPLE, "incident_event_log.csv")
    report = import_servicenow(archive)
    [error] = report.errors
    assert "over the limit of 10,000" in error.message
    assert "TIKTING_IMPORT_MAX_UNPACKED_BYTES" in error.message
    assert Incident.objects.count() == 0
    settings.TIKTING_IMPORT_MAX_UNPACKED_BYTES = 1 << 30
    assert import_servicenow(archive).ok  # the same file within the limit imports


def test_the_command_refuses_a_bomb_with_one_line_and_exit_code_1(tmp_path):
    bomb = make_bomb(tmp_path / "log.zip", "incident_event_log.csv", SAMPLE.read_bytes(), 16)
    exc, _out, err = call("import", "servicenow", str(bomb))
    assert exc is not None and exc.returncode == 1
    [line] = err.splitlines()
    assert line.startswith("log.zip:0: file: log.zip:incident_event_log.csv is compressed")


def test_a_bpic2014_zip_bomb_is_refused_before_reading(tmp_path):
    header = (FIXTURES / "bpic2014" / "Detail Change.csv").read_bytes().splitlines(keepends=True)[0]
    make_bomb(tmp_path / "detail_change.zip", "Detail Change.csv", header, 16)
    report = import_bpic2014(tmp_path)
    [error] = report.errors
    assert error.field == "file" and "zip bomb" in error.message and "Nothing was imported" in error.message


@pytest.mark.parametrize(
    "path",
    [
        DATA / "uci_incident_event_log" / "incident_event_log.zip",
        DATA / "bpic2014" / "EventLog_incident_activity_derived.zip",
        DATA / "bpic2014" / "detail_incident.zip",
    ],
)
def test_the_published_data_sets_are_within_the_default_limits(path):
    if not path.exists():
        pytest.skip(f"{path} is not here")
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            zip_limits().check(info, path.name)  # raises ArchiveRefused when over
