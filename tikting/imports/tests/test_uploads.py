"""Imports from the UI (/imports/): upload, dry run with the errors by line, import in the worker with
its progress, result page; who may see and do what; file names and limits."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django_tasks_db.models import DBTaskResult

from tikting.core.models import AuditEntry
from tikting.imports import uploads
from tikting.imports.models import Upload
from tikting.incidents.models import Incident

pytestmark = pytest.mark.django_db

LIST = "/imports/"
GOOD_AND_BAD = (
    b"number,short_description,opened_at,priority\n"
    b"INC9001,Mail down,2026-11-02T09:00:00+00:00,2\n"
    b"INC9002,VPN flaps,2026-11-03 10:30,3\n"
    b"INC9003,Printer,not a date,2\n"
)


def csv_file(content: bytes = GOOD_AND_BAD, name: str = "incidents.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="text/csv")


def run_worker() -> None:
    call_command("worker", "--once", "--no-schedule", stdout=io.StringIO())


@pytest.fixture(autouse=True)
def upload_dir(settings, tmp_path):
    settings.TIKTING_IMPORT_UPLOAD_DIR = tmp_path / "imports"
    return settings.TIKTING_IMPORT_UPLOAD_DIR


def test_upload_check_then_import_through_the_worker(login, cast, upload_dir):
    client = login(cast.contributor)
    response = client.post(LIST, {"kind": "incident", "file": csv_file()})
    upload = Upload.objects.get()
    assert response.status_code == 302 and response["Location"] == upload.get_absolute_url()
    assert upload.status == "checking" and upload.lines == 3 and upload.file_name == "incidents.csv"
    assert DBTaskResult.objects.filter(task_path="tikting.imports.tasks.check_upload").count() == 1
    page = client.get(upload.get_absolute_url()).content.decode()
    assert 'hx-trigger="every 1s"' in page and "Checking every row" in page

    run_worker()  # the real worker runs the dry run
    upload.refresh_from_db()
    assert upload.status == "checked"
    assert Incident.objects.count() == 0  # a dry run writes nothing
    report = upload.check_report
    assert report is not None
    assert report["counts"]["incident"]["created"] == 2
    assert [(e["line"], e["field"]) for e in report["errors"]] == [(4, "opened_at")]
    page = client.get(upload.get_absolute_url()).content.decode()
    assert "every 1s" not in page
    assert "Import 2 rows, leave out 1" in page and "<td>4</td>" in page

    assert client.post(f"/imports/{upload.pk}/import/").status_code == 302
    upload.refresh_from_db()
    assert upload.status == "importing"
    run_worker()
    upload.refresh_from_db()
    assert upload.status == "done" and upload.percent == 100
    assert sorted(Incident.objects.values_list("number", flat=True)) == ["INC9001", "INC9002"]
    assert upload.report is not None
    assert upload.report["counts"]["incident"]["created"] == 2 and upload.report["error_count"] == 1
    assert upload.stored_as == "" and not any(upload_dir.iterdir())  # the file is deleted once imported
    page = client.get(upload.get_absolute_url()).content.decode()
    assert "Imported in" in page and "/records/incident/" in page
    assert AuditEntry.objects.filter(object_id=str(upload.pk), message__contains="Import of").exists()


def test_the_import_matches_what_the_cli_imported_from_the_same_file(login, cast, tmp_path):
    path = tmp_path / "incidents.csv"
    path.write_bytes(GOOD_AND_BAD)
    with pytest.raises(CommandError, match="1 error"):  # the bad row; the good ones are imported
        call_command("import", "incident", str(path), stdout=io.StringIO(), stderr=io.StringIO())
    client = login(cast.contributor)
    client.post(LIST, {"kind": "incident", "file": csv_file()})
    run_worker()
    upload = Upload.objects.get()
    assert upload.check_report is not None
    assert upload.check_report["counts"]["incident"]["unchanged"] == 2
    page = client.get(upload.get_absolute_url()).content.decode()
    assert "Nothing to import" in page


def test_a_file_that_is_not_utf8_is_reported_by_the_check_and_cannot_be_imported(login, cast):
    client = login(cast.contributor)
    client.post(LIST, {"kind": "incident", "file": csv_file("number\nINC\xe91\n".encode("latin-1"))})
    run_worker()
    upload = Upload.objects.get()
    assert upload.status == "checked"
    page = client.get(upload.get_absolute_url()).content.decode()
    assert "not UTF-8 text" in page and "save it as UTF-8" in page
    assert "correct the errors above and upload the file again" in page
    assert 'type="submit" disabled' in page


@pytest.mark.parametrize(
    ("name", "content", "field", "says"),
    [
        ("incidents.xlsx", b"x", "file", "not a CSV, JSON or JSON Lines file"),
        ("incidents.csv", b"", "file", "is empty"),
    ],
)
def test_a_bad_file_is_refused_naming_the_field(login, cast, name, content, field, says):
    response = login(cast.contributor).post(LIST, {"kind": "incident", "file": csv_file(content, name)})
    assert response.status_code == 400
    assert says in response.content.decode()
    assert not Upload.objects.exists()


def test_a_file_over_the_limit_is_refused_with_the_cli_to_use_instead(login, cast, settings):
    settings.TIKTING_MAX_UPLOAD_BYTES = 50
    response = login(cast.contributor).post(LIST, {"kind": "incident", "file": csv_file()})
    assert response.status_code == 400
    assert "tikting import incident FILE" in response.content.decode()


def test_no_kind_or_no_file_says_what_to_choose(login, cast):
    client = login(cast.contributor)
    assert "Choose a kind of record" in client.post(LIST, {"kind": "", "file": csv_file()}).content.decode()
    assert "Choose a file to upload" in client.post(LIST, {"kind": "incident"}).content.decode()


def test_a_contributor_imports_operational_records_only(login, cast):
    client = login(cast.contributor)
    page = client.get(LIST).content.decode()
    assert 'value="incident"' in page and 'value="ci"' not in page
    assert client.post(LIST, {"kind": "ci", "file": csv_file()}).status_code == 403
    assert login(cast.admin).get(LIST).content.decode().count('value="ci"') == 1


def test_a_viewer_may_not_import(login, cast):
    assert login(cast.viewer).get(LIST).status_code == 403


def test_an_upload_is_seen_by_its_uploader_and_managers_only(client, cast):
    client.force_login(cast.contributor)
    client.post(LIST, {"kind": "incident", "file": csv_file()})
    upload = Upload.objects.get()
    client.force_login(cast.owner)  # another contributor-or-above, not a manager
    assert client.get(upload.get_absolute_url()).status_code == 403
    assert client.post(f"/imports/{upload.pk}/discard/").status_code == 403
    assert "incidents.csv" not in client.get(LIST).content.decode()
    client.force_login(cast.manager)
    assert client.get(upload.get_absolute_url()).status_code == 200
    assert "incidents.csv" in client.get(LIST).content.decode()


def test_discard_deletes_the_file_and_nothing_can_be_imported_after(login, cast, upload_dir):
    client = login(cast.contributor)
    client.post(LIST, {"kind": "incident", "file": csv_file()})
    run_worker()
    upload = Upload.objects.get()
    assert client.post(f"/imports/{upload.pk}/discard/").status_code == 302
    upload.refresh_from_db()
    assert upload.status == "discarded" and not any(upload_dir.iterdir())
    response = client.post(f"/imports/{upload.pk}/import/", follow=True)
    assert "cannot be imported now" in response.content.decode()
    assert Incident.objects.count() == 0


def test_a_file_cannot_be_imported_before_its_check_is_done(login, cast):
    client = login(cast.contributor)
    client.post(LIST, {"kind": "incident", "file": csv_file()})
    upload = Upload.objects.get()
    response = client.post(f"/imports/{upload.pk}/import/", follow=True)
    assert "checking (dry run): it cannot be imported now" in response.content.decode()


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("../../etc/passwd.csv", "passwd.csv"),
        ("C:\\Users\\me\\Desktop\\list.csv", "list.csv"),
        ("in\x00ci\x1bdents\n.csv", "incidents.csv"),
        ("<script>.csv", "script_.csv"),
        ("a" * 300 + ".csv", "a" * 116 + ".csv"),
        ("...", "upload"),
    ],
)
def test_file_names_are_sanitised(given, kept):
    assert uploads.clean_name(given) == kept


def test_rows_are_counted_for_the_progress_bar():
    assert uploads._rows_in(io.BytesIO(b"h\n1\n2\n3"), "csv") == 3
    assert uploads._rows_in(io.BytesIO(b'{"a":1}\n\n{"a":2}\n'), "jsonl") == 2
    assert uploads._rows_in(io.BytesIO(b"[]"), "json") is None
