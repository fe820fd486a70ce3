"""Attachments: limits, names, types by content, who sees and removes, the download headers, history."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import FileResponse
from django.test import Client
from django.utils import timezone

from tikting.accounts.models import ApiToken
from tikting.attachments import services as S
from tikting.attachments.models import Attachment
from tikting.attachments.serving import content_disposition
from tikting.core.audit import history_for
from tikting.core.exceptions import PermissionDeniedError
from tikting.governance import services as GS
from tikting.improvement import services as IS
from tikting.lib.files import safe_name, sniff
from tikting.records.registry import create_record
from tikting.test import ready_item

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def upload(name: str, content: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content)


# --- Names and types (tikting/lib/files.py) ---------------------------------------------------


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("../../etc/passwd.txt", "passwd.txt"),
        ("C:\\Users\\ann\\PIR report.pdf", "PIR report.pdf"),
        ("evil\x00name\x1b[31m.txt", "evilname[31m.txt"),
        ("bidi\u202etxt.exe.pdf", "biditxt.exe.pdf"),
        ("  ..hidden.txt ", "hidden.txt"),
        ("line\nbreak.txt", "line break.txt"),
        ("", "file"),
        ("../..", "file"),
        ("Résumé – février.pdf", "Résumé – février.pdf"),
    ],
)
def test_names_lose_paths_and_control_characters(given, kept):
    assert safe_name(given) == kept


def test_long_names_are_capped_keeping_the_extension():
    name = safe_name("x" * 400 + ".pdf")
    assert len(name) == 150 and name.endswith(".pdf")
    assert len(safe_name("y" * 400)) == 150


def test_content_is_recognised_by_its_first_bytes():
    assert sniff(PDF) == "application/pdf"
    assert sniff(PNG) == "image/png"
    assert sniff(b"a,b\n1,2\n") == "text/plain"
    assert sniff(b"MZ\x90\x00\x03") == ""  # a Windows executable
    assert sniff("é".encode() * 10 + "é".encode()[:1]) == "text/plain"  # cut inside a character


# --- The rules of attaching -------------------------------------------------------------------


def test_a_file_is_kept_with_its_clean_name_type_digest_and_history(cast):
    item = ready_item(cast)
    attachment = S.attach(item, upload("../PIR.pdf", PDF), actor=cast.contributor)
    assert attachment.name == "PIR.pdf"
    assert attachment.mime_type == "application/pdf"
    assert attachment.size == len(PDF)
    assert len(attachment.sha256) == 64
    stored = attachment.file.name or ""
    assert "PIR" not in stored and stored.startswith("attachments/")
    assert attachment.file.storage.exists(stored)
    entry = history_for(item).filter(content_type__model="attachment").get()
    assert entry.action == "create" and entry.actor == cast.contributor
    assert "PIR.pdf" in entry.message


def test_over_the_size_limit_is_refused_naming_the_limit(cast, settings):
    settings.TIKTING_ATTACHMENT_MAX_BYTES = 100
    item = ready_item(cast)
    with pytest.raises(ValidationError) as caught:
        S.attach(item, upload("big.txt", b"a" * 101), actor=cast.owner)
    assert "at most 100 bytes" in caught.value.message_dict["file"][0]
    assert not Attachment.objects.exists()


def test_types_outside_the_allow_list_are_refused(cast):
    item = ready_item(cast)
    for name, content in (
        ("page.html", b"<script>alert(1)</script>"),
        ("logo.svg", b"<svg/>"),
        ("run", b"x"),
    ):
        with pytest.raises(ValidationError) as caught:
            S.attach(item, upload(name, content), actor=cast.owner)
        assert "not accepted" in caught.value.message_dict["file"][0]


def test_a_file_whose_content_is_not_its_extension_is_refused(cast):
    item = ready_item(cast)
    for name, content in (("invoice.pdf", b"MZ\x90\x00 executable"), ("notes.txt", PNG), ("photo.png", PDF)):
        with pytest.raises(ValidationError) as caught:
            S.attach(item, upload(name, content), actor=cast.owner)
        assert "does not contain what a" in caught.value.message_dict["file"][0]
    assert not Attachment.objects.exists()


def test_the_allow_list_is_a_setting(cast, settings):
    settings.TIKTING_ATTACHMENT_TYPES = {"txt": ("text/plain; charset=utf-8", "text/plain")}
    item = ready_item(cast)
    with pytest.raises(ValidationError):
        S.attach(item, upload("r.pdf", PDF), actor=cast.owner)
    assert S.attach(item, upload("r.txt", b"hello"), actor=cast.owner).name == "r.txt"


def test_viewers_may_not_attach_and_only_uploader_or_manager_removes(
    cast, django_capture_on_commit_callbacks
):
    item = ready_item(cast)
    with pytest.raises(PermissionDeniedError):
        S.attach(item, upload("a.txt", b"hi"), actor=cast.viewer)
    attachment = S.attach(item, upload("a.txt", b"hi"), actor=cast.contributor)
    for other in (cast.viewer, cast.owner, cast.other_owner):
        with pytest.raises(PermissionDeniedError):
            S.remove(attachment, actor=other)
    S.remove(attachment, actor=cast.contributor)
    second = S.attach(item, upload("b.txt", b"hi"), actor=cast.contributor)
    stored = second.file.name or ""
    with django_capture_on_commit_callbacks(execute=True):  # the bytes go once the removal commits
        S.remove(second, actor=cast.manager)
    assert not Attachment.objects.exists()
    assert not second.file.storage.exists(stored)
    assert history_for(item).filter(action="delete", content_type__model="attachment").count() == 2


def test_records_comments_and_minutes_take_files_on_their_own_terms(cast):
    incident = create_record("incident", actor=None, number="INC-A1", opened_at=timezone.now())
    S.attach(incident, upload("trace.log", b"trace"), actor=cast.contributor)
    assert history_for(incident).filter(content_type__model="attachment").exists()
    ci = create_record("ci", actor=None, name="srv-1")
    with pytest.raises(PermissionDeniedError):  # reference data: administrators change it
        S.attach(ci, upload("x.txt", b"x"), actor=cast.manager)
    item = ready_item(cast)
    comment = IS.add_comment(item, actor=cast.contributor, body="see the log")
    S.attach(comment, upload("c.txt", b"x"), actor=cast.contributor)
    with pytest.raises(PermissionDeniedError):
        S.attach(comment, upload("c.txt", b"x"), actor=cast.owner)  # not the comment's author
    assert history_for(item).filter(content_type__model="attachment").count() == 1  # on the item
    meeting = GS.create_review(actor=cast.manager, title="Review")
    minute = GS.record_minute(meeting, actor=cast.manager, item=item, kind="note", text="PIR")
    with pytest.raises(PermissionDeniedError):
        S.attach(minute, upload("m.pdf", PDF), actor=cast.owner)
    S.attach(minute, upload("m.pdf", PDF), actor=cast.manager)
    assert history_for(meeting).filter(content_type__model="attachment").exists()


# --- Pages and API ----------------------------------------------------------------------------


def test_download_is_an_attachment_never_sniffed(cast):
    item = ready_item(cast)
    name = "Bilan – «PIR».pdf"
    attachment = S.attach(item, upload(name, PDF), actor=cast.owner)
    client = Client()
    client.force_login(cast.viewer)
    response = client.get(f"/attachments/{attachment.pk}/")
    assert response.status_code == 200
    assert isinstance(response, FileResponse)
    assert b"".join(response.streaming_content) == PDF
    assert response["Content-Type"] == "application/pdf"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Disposition"] == content_disposition(name)
    assert f"filename*=UTF-8''{quote(name, safe='')}" in response["Content-Disposition"]
    assert response["Content-Disposition"].startswith('attachment; filename="Bilan _ _PIR_.pdf"')


def test_content_disposition_escapes_quotes_and_slashes():
    header = content_disposition('a"b\\c.txt')
    assert header == "attachment; filename=\"a_b_c.txt\"; filename*=UTF-8''a%22b%5Cc.txt"


def test_anonymous_and_unknown_get_nothing(cast):
    item = ready_item(cast)
    attachment = S.attach(item, upload("a.txt", b"x"), actor=cast.owner)
    assert Client().get(f"/attachments/{attachment.pk}/").status_code == 302
    client = Client()
    client.force_login(cast.viewer)
    assert client.get(f"/attachments/{attachment.pk + 1}/").status_code == 404
    cast.viewer.is_active = False
    cast.viewer.save()
    _, raw = ApiToken.issue(cast.manager, "t")
    assert Client().get(f"/api/attachments/{attachment.pk}/download").status_code == 401
    ok = Client().get(
        f"/api/attachments/{attachment.pk}/download", headers={"Authorization": f"Bearer {raw}"}
    )
    assert ok.status_code == 200 and ok["X-Content-Type-Options"] == "nosniff"


def test_upload_through_the_page_and_the_api(cast):
    item = ready_item(cast)
    client = Client()
    client.force_login(cast.contributor)
    response = client.post(
        "/attachments/",
        {
            "target": f"improvement.item:{item.pk}",
            "file": upload("notes.txt", b"hello"),
            "next": "/register/",
        },
        headers={"X-Requested-With": "fetch"},
    )
    assert response.status_code == 200
    assert b"notes.txt" in response.content and b"data-attachments" in response.content
    refused = client.post(
        "/attachments/",
        {"target": f"improvement.item:{item.pk}", "file": upload("x.exe", b"MZ")},
        headers={"X-Requested-With": "fetch"},
    )
    assert refused.status_code == 400 and b"not accepted" in refused.content
    _, raw = ApiToken.issue(cast.contributor, "t")
    auth = {"Authorization": f"Bearer {raw}"}
    created = Client().post(
        "/api/attachments",
        {"target": f"improvement.item:{item.pk}", "file": upload("r.pdf", PDF)},
        headers=auth,
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert (
        body["name"] == "r.pdf"
        and body["size"] == len(PDF)
        and body["target"] == f"improvement.item:{item.pk}"
    )
    listed = Client().get(f"/api/attachments?target=improvement.item:{item.pk}", headers=auth).json()
    assert [a["name"] for a in listed] == ["notes.txt", "r.pdf"]
    bad = Client().post(
        "/api/attachments", {"target": "auth.user:1", "file": upload("r.pdf", PDF)}, headers=auth
    )
    assert bad.status_code == 404
    assert Client().delete(f"/api/attachments/{body['id']}", headers=auth).status_code == 204


def test_item_page_shows_the_panel_with_one_query_for_all_comments_files(cast, django_assert_max_num_queries):
    item = ready_item(cast)
    for i in range(5):
        comment = IS.add_comment(item, actor=cast.contributor, body=f"c{i}")
        S.attach(comment, upload(f"c{i}.txt", b"x"), actor=cast.contributor)
    client = Client()
    client.force_login(cast.contributor)
    html = client.get(item.get_absolute_url()).content.decode()
    assert 'id="attachments-item-' in html
    assert all(f"c{i}.txt" in html for i in range(5))
