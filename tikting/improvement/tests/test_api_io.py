"""Import and export of the register over the API: the same files as `tikting register`."""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import StreamingHttpResponse
from django.test import Client

from tikting.accounts.models import ApiToken
from tikting.improvement import services as S
from tikting.improvement.models import Item

pytestmark = pytest.mark.django_db


def client_for(user) -> tuple[Client, dict]:
    _, raw = ApiToken.issue(user, "tests")
    return Client(), {"Authorization": f"Bearer {raw}"}


def test_it_exports_the_filtered_register_as_csv(cast):
    S.create_item(actor=cast.contributor, title="Password self-service", practice="service_desk")
    S.create_item(actor=cast.contributor, title="Patch window", practice="change")
    client, headers = client_for(cast.viewer)
    response = client.get("/api/items/export", {"format": "csv", "practice": "change"}, headers=headers)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    assert isinstance(response, StreamingHttpResponse)
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [row["title"] for row in rows] == ["Patch window"]


def test_an_export_imports_back_without_duplicates(cast):
    item = S.create_item(actor=cast.contributor, title="Runbooks for P1s", impact=5, effort=2)
    client, headers = client_for(cast.manager)
    response = client.get("/api/items/export", {"format": "json"}, headers=headers)
    assert isinstance(response, StreamingHttpResponse)
    exported = b"".join(response.streaming_content)
    S.update_item(item, actor=cast.manager, title="Changed since the export")
    upload = SimpleUploadedFile("register.json", exported, content_type="application/json")
    response = client.post("/api/items/import", {"file": upload}, headers=headers)
    assert response.status_code == 200, response.content
    assert response.json()["updated"] == 1 and response.json()["created"] == 0
    assert Item.objects.count() == 1
    item.refresh_from_db()
    assert item.title == "Runbooks for P1s"


def test_bad_rows_are_reported_by_line_and_good_rows_kept(cast):
    data = "external_id,title,impact,effort\nA-1,Good row,4,2\nA-2,Bad impact,9,2\n"
    client, headers = client_for(cast.manager)
    upload = SimpleUploadedFile("items.csv", data.encode(), content_type="text/csv")
    body = client.post("/api/items/import", {"file": upload}, headers=headers).json()
    assert body["created"] == 1 and body["failed"] == 1
    assert body["errors"][0]["line"] == 3 and body["errors"][0]["field"] == "impact"
    assert Item.objects.filter(external_id="A-1").exists()


def test_only_managers_import(cast):
    client, headers = client_for(cast.owner)
    upload = SimpleUploadedFile("items.csv", b"external_id,title\nA-1,x\n", content_type="text/csv")
    assert client.post("/api/items/import", {"file": upload}, headers=headers).status_code == 403
    assert not Item.objects.exists()


def test_a_dry_run_writes_nothing(cast):
    client, headers = client_for(cast.manager)
    upload = SimpleUploadedFile("items.csv", b"external_id,title\nA-1,x\n", content_type="text/csv")
    body = client.post("/api/items/import", {"file": upload, "dry_run": "true"}, headers=headers).json()
    assert body["dry_run"] and body["created"] == 1
    assert not Item.objects.exists()


def test_an_oversized_upload_is_refused(cast, settings):
    settings.TIKTING_MAX_UPLOAD_BYTES = 10
    client, headers = client_for(cast.manager)
    upload = SimpleUploadedFile("items.csv", b"external_id,title\nA-1,x\n", content_type="text/csv")
    assert client.post("/api/items/import", {"file": upload}, headers=headers).status_code == 413
    assert not Item.objects.exists()


def test_the_list_offers_an_export_of_what_it_shows(cast, client):
    client.force_login(cast.viewer)
    page = client.get("/register/", {"practice": "change", "status": "all"}).content.decode()
    assert 'href="/api/items/export?format=csv&amp;practice=change"' in page
