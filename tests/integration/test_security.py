"""Security checks beyond the permission matrix: object-level rules, mass assignment, CSRF, XSS,
open redirects, CSV formula injection and bounded uploads."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from tikting.accounts.models import ApiToken
from tikting.core.uploads import BoundedTemporaryFileUploadHandler
from tikting.governance import services as GS
from tikting.governance.models import ReviewMeeting
from tikting.improvement import io as IO
from tikting.improvement import services as S
from tikting.improvement.models import Item
from tikting.test import ready_item

pytestmark = pytest.mark.django_db

PAYLOAD = "<script>alert(1)</script>"
HTMX = {"HTTP_HX_REQUEST": "true"}


def bearer(user) -> dict[str, str]:
    _, raw = ApiToken.issue(user, "tests")
    return {"Authorization": f"Bearer {raw}"}


def session(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- Object checks: an owner drives only their own items --------------------------------------


@pytest.fixture
def item(cast):
    return ready_item(cast)


def test_another_owner_cannot_drive_the_item_in_the_ui(cast, item):
    client = session(cast.other_owner)
    indicator, action = item.indicators.get(), item.actions.get()
    base = f"/register/{item.pk}"
    posts = {
        f"{base}/transition/": {"to": "action", "version": item.version},
        f"{base}/blocker/": {"blocked": "on", "blocker": "x", "version": item.version},
        f"{base}/escalate/": {"note": "x"},
        f"{base}/close/": {"outcome": "withdrawn", "lessons": "x"},
        f"{base}/indicators/add/": {"ind-new-name": "x"},
        f"{base}/indicators/{indicator.pk}/edit/": {f"ind{indicator.pk}-name": "x"},
        f"{base}/indicators/{indicator.pk}/measure/": {f"m{indicator.pk}-value": "1"},
        f"{base}/actions/add/": {"action-title": "x"},
        f"{base}/actions/{action.pk}/toggle/": {"done": "on"},
        f"{base}/actions/{action.pk}/remove/": {},
        f"{base}/edit/": {"title": "x"},
        f"{base}/assess/": {"decision": "accept"},
    }
    version = item.version
    for url, data in posts.items():
        assert client.post(url, data).status_code == 403, url
    item.refresh_from_db()
    assert item.version == version
    assert item.status == "plan" and item.actions.count() == 1 and not item.blocked


def test_another_owner_cannot_drive_the_item_in_the_api(cast, item):
    headers = bearer(cast.other_owner)
    client = Client()
    indicator, action = item.indicators.get(), item.actions.get()
    calls = [
        ("patch", f"/api/items/{item.pk}", {"title": "x", "expected_version": item.version}),
        ("post", f"/api/items/{item.pk}/transition", {"to": "action"}),
        ("post", f"/api/items/{item.pk}/block", {"blocked": True, "blocker": "x"}),
        ("post", f"/api/items/{item.pk}/close", {"outcome": "withdrawn", "lessons": "x"}),
        ("post", f"/api/items/{item.pk}/indicators", {"name": "x"}),
        ("patch", f"/api/indicators/{indicator.pk}", {"name": "x", "expected_version": indicator.version}),
        ("delete", f"/api/indicators/{indicator.pk}", None),
        ("post", f"/api/indicators/{indicator.pk}/measurements", {"value": "3"}),
        ("post", f"/api/items/{item.pk}/actions", {"title": "x"}),
        ("patch", f"/api/actions/{action.pk}", {"done": True, "expected_version": action.version}),
        ("delete", f"/api/actions/{action.pk}", None),
    ]
    for method, url, body in calls:
        response = getattr(client, method)(
            url,
            json.dumps(body) if body is not None else None,
            content_type="application/json",
            headers=headers,
        )
        assert response.status_code == 403, (method, url, response.content)
    assert Item.objects.get(pk=item.pk).version == item.version
    assert indicator.measurements.count() == 0 and item.actions.count() == 1


# --- Mass assignment: PATCH cannot set what the role may not set --------------------------------


def test_a_contributor_cannot_patch_owner_rank_or_status(cast):
    own = S.create_item(actor=cast.contributor, title="Mine")
    client, headers = Client(), bearer(cast.contributor)

    def patch(body):
        body = {**body, "expected_version": Item.objects.get(pk=own.pk).version}
        return client.patch(f"/api/items/{own.pk}", body, content_type="application/json", headers=headers)

    assert patch({"title": "Still mine"}).status_code == 200  # their own new item: allowed
    assert patch({"owner": cast.contributor.pk}).status_code in {403, 422}
    assert patch({"owner": cast.owner.pk}).status_code == 403
    assert patch({"rank": 1}).status_code == 403
    for field, value in {"status": "plan", "submitted_by": cast.admin.pk, "version": 99, "id": 5}.items():
        assert patch({field: value}).status_code == 422, field
    own.refresh_from_db()
    assert (own.owner_id, own.rank, own.status, own.submitted_by_id) == (
        None,
        None,
        "new",
        cast.contributor.pk,
    )


def test_an_owner_cannot_hand_their_item_to_someone_else(cast, item):
    response = Client().patch(
        f"/api/items/{item.pk}",
        {"owner": cast.other_owner.pk, "expected_version": item.version},
        content_type="application/json",
        headers=bearer(cast.owner),
    )
    assert response.status_code == 403
    assert Item.objects.get(pk=item.pk).owner_id == cast.owner.pk


# --- Tokens: your own, and only yours -----------------------------------------------------------


def test_token_pages_and_endpoints_show_only_your_own_tokens(cast):
    theirs, _ = ApiToken.issue(cast.manager, "manager-secret-script")
    mine, _ = ApiToken.issue(cast.viewer, "my-script")
    page = session(cast.viewer).get("/account/tokens/").content.decode()
    assert "my-script" in page and "manager-secret-script" not in page and theirs.key_hint not in page
    listed = Client().get("/api/tokens", headers=bearer(cast.viewer)).json()
    assert {t["id"] for t in listed} >= {mine.pk} and theirs.pk not in {t["id"] for t in listed}
    assert session(cast.viewer).post(f"/account/tokens/{theirs.pk}/revoke/").status_code == 404
    assert Client().delete(f"/api/tokens/{theirs.pk}", headers=bearer(cast.viewer)).status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


# --- CSRF ---------------------------------------------------------------------------------------


def test_html_posts_need_the_csrf_token(cast, item):
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.owner)
    assert client.post(f"/register/{item.pk}/comments/", {"body": "hi"}).status_code == 403
    assert item.comments.count() == 0


def test_api_session_writes_need_csrf_and_token_writes_do_not(cast, item):
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.owner)
    url = f"/api/items/{item.pk}/comments"
    assert client.post(url, {"body": "no token"}, content_type="application/json").status_code == 403
    client.get("/register/")  # sets the CSRF cookie
    csrf = client.cookies["csrftoken"].value
    response = client.post(
        url, {"body": "with token"}, content_type="application/json", headers={"X-CSRFToken": csrf}
    )
    assert response.status_code == 201
    bearer_client = Client(enforce_csrf_checks=True)
    response = bearer_client.post(
        url, {"body": "bearer"}, content_type="application/json", headers=bearer(cast.owner)
    )
    assert response.status_code == 201
    assert sorted(item.comments.values_list("body", flat=True)) == ["bearer", "with token"]


# --- XSS: user text is escaped everywhere -------------------------------------------------------


def test_user_text_is_escaped_on_every_page(cast):
    item = ready_item(cast, title=PAYLOAD, description=PAYLOAD)
    S.update_item(item, actor=cast.manager, title=PAYLOAD + "v2")  # the timeline shows old → new
    S.add_comment(item, actor=cast.owner, body=PAYLOAD)
    S.add_indicator(item, actor=cast.owner, name=PAYLOAD, unit=PAYLOAD, role="impacted")
    S.record_measurement(item.indicators.get(role="impacted"), actor=cast.owner, value="1", note=PAYLOAD)
    S.set_blocked(item, actor=cast.owner, blocked=True, blocker=PAYLOAD)
    S.escalate_item(item, actor=cast.owner, note=PAYLOAD)
    S.add_action(item, actor=cast.owner, title=PAYLOAD)
    withdrawn = S.create_item(actor=cast.contributor, title=PAYLOAD, vision=PAYLOAD)
    withdrawn = S.assess_item(withdrawn, actor=cast.manager, decision="accept", owner=cast.owner)
    S.close_item(withdrawn, actor=cast.owner, outcome="withdrawn", lessons=PAYLOAD)
    meeting = GS.create_review(actor=cast.manager, title=PAYLOAD, notes=PAYLOAD)
    GS.record_minute(meeting, actor=cast.manager, item=item, kind="note", text=PAYLOAD)

    manager, owner = session(cast.manager), session(cast.owner)
    pages = {
        "item": manager.get(f"/register/{item.pk}/?timeline=all"),
        "withdrawn item": manager.get(f"/register/{withdrawn.pk}/"),
        "timeline fragment": manager.get(f"/register/{item.pk}/timeline/?all=1", **HTMX),
        "edit form": manager.get(f"/register/{item.pk}/edit/"),
        "list": manager.get("/register/", {"status": "all"}),
        "list fragment": manager.get("/register/", {"status": "all"}, **HTMX),
        "board": manager.get("/register/board/"),
        "matrix": manager.get("/register/matrix/"),
        "mine": owner.get("/register/mine/"),
        "agenda": manager.get("/governance/agenda/", {"meeting": meeting.pk}),
        "agenda row": manager.get(f"/governance/reviews/{meeting.pk}/row/", {"item": item.pk}, **HTMX),
        "minute form": manager.get(f"/governance/reviews/{meeting.pk}/minutes/new/", {"item": item.pk}),
        "review": manager.get(f"/governance/reviews/{meeting.pk}/"),
        "reviews": manager.get("/governance/reviews/"),
        "print": manager.get(f"/governance/reviews/{meeting.pk}/print/"),
        "dashboard": manager.get("/governance/dashboard/"),
    }
    for name, response in pages.items():
        assert response.status_code == 200, name
        html = response.content.decode()
        assert PAYLOAD not in html, f"{name}: unescaped user text"
        assert "<script>alert" not in html, name
    item_page = pages["item"].content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in item_page  # shown, as text
    assert "\\u003Cscript\\u003E" in item_page  # the chart data (json_script) escapes < and >


def test_htmx_refusals_are_plain_text(cast, item):
    """A 403 to htmx is shown with textContent; it is not served as HTML either."""
    response = session(cast.viewer).post(f"/register/{item.pk}/transition/", {"to": "action"}, **HTMX)
    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/plain")


# --- Open redirects -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/",
        "/\t/evil.example/",
        "\\\\evil.example",
        "http:/evil.example",
    ],
)
def test_the_review_form_does_not_redirect_off_site(cast, target):
    response = session(cast.manager).post("/governance/reviews/", {"title": "R", "next": target})
    meeting = ReviewMeeting.objects.get()
    assert response.status_code == 302
    assert response["Location"] == meeting.get_absolute_url()


def test_the_review_form_follows_a_local_next(cast):
    response = session(cast.manager).post(
        "/governance/reviews/", {"title": "R", "next": "/governance/agenda/"}
    )
    assert response["Location"] == f"/governance/agenda/?meeting={ReviewMeeting.objects.get().pk}"


def test_login_does_not_redirect_off_site(cast, password):
    response = Client().post(
        "/login/?next=https://evil.example/",
        {"username": "vera", "password": password, "next": "//evil.example/"},
    )
    assert response.status_code == 302 and "evil" not in response["Location"]


# --- CSV formula injection ----------------------------------------------------------------------

FORMULAS = {
    "title": '=HYPERLINK("http://evil.example","click")',
    "description": "@SUM(1+1)*cmd|' /C calc'!A0",
    "vision": "+1+1",
    "expected_outcome": "-2+3",
    "justification": "\t=1+1",
    "review_milestone": "'=already quoted",
    "source_reference": "'plain apostrophe",
}


def _export_csv(qs=None) -> str:
    out = io.StringIO()
    IO.export_items(out, fmt="csv", qs=qs)
    return out.getvalue()


def test_csv_export_neutralises_formulas_and_imports_back_unchanged(cast):
    item = S.create_item(actor=cast.manager, impact=4, **FORMULAS)
    text = _export_csv()
    row = next(csv.DictReader(io.StringIO(text)))
    for field, value in FORMULAS.items():
        assert row[field] == "'" + value, field
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row.values() if cell)
    assert row["impact"] == "4"
    # Every value survives the round trip, apostrophes and all.
    S.update_item(item, actor=cast.manager, **dict.fromkeys(FORMULAS, "changed"))
    result = IO.import_items(io.StringIO(text), fmt="csv", actor=cast.manager)
    assert (result.updated, result.failed) == (1, 0), result.as_dict()
    item.refresh_from_db()
    assert {field: getattr(item, field) for field in FORMULAS} == FORMULAS
    assert IO.import_items(io.StringIO(_export_csv()), fmt="csv", actor=cast.manager).unchanged == 1


def test_negative_numbers_are_not_quoted_and_json_is_untouched(cast):
    item = ready_item(cast, title="=1+1")
    S.cancel_action(item.actions.get(), actor=cast.owner, reason="-")
    S.close_item(item, actor=cast.owner, outcome="withdrawn", lessons="-", realised_delta="-2.5")
    row = next(csv.DictReader(io.StringIO(_export_csv())))
    assert row["realised_delta"] == "-2.5" and row["lessons"] == "'-"
    out = io.StringIO()
    IO.export_items(out, fmt="json")
    assert json.loads(out.getvalue())[0]["title"] == "=1+1"


def test_a_hand_written_apostrophe_is_kept(cast):
    data = "external_id,title,description\nX-1,'Quoted title,'=A1\n"
    IO.import_items(io.StringIO(data), fmt="csv", actor=cast.manager)
    item = Item.objects.get(external_id="X-1")
    assert (item.title, item.description) == ("'Quoted title", "=A1")


# --- Uploads ------------------------------------------------------------------------------------


def test_an_oversized_upload_never_fills_the_disk(settings):
    settings.TIKTING_MAX_UPLOAD_BYTES = 1000
    handler = BoundedTemporaryFileUploadHandler()
    handler.new_file("file", "big.csv", "text/csv", 10_000)
    for start in range(0, 10_000, 500):
        handler.receive_data_chunk(b"x" * 500, start)
    upload = handler.file_complete(10_000)
    assert upload.size == 10_000  # the real size, for the 413
    upload.seek(0, io.SEEK_END)
    assert upload.tell() <= 1000  # what reached the disk
    upload.close()


def test_an_upload_over_the_memory_limit_is_refused_with_413(cast, settings):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 100  # through the temporary-file handler
    settings.TIKTING_MAX_UPLOAD_BYTES = 1000
    body = b"external_id,title\n" + b"".join(b"E-%d,Item %d\n" % (n, n) for n in range(500))
    upload = SimpleUploadedFile("items.csv", body, content_type="text/csv")
    response = Client().post("/api/items/import", {"file": upload}, headers=bearer(cast.manager))
    assert response.status_code == 413
    assert not Item.objects.exists()


def test_an_upload_under_the_limit_still_imports_from_disk(cast, settings):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 100
    body = b"external_id,title\n" + b"".join(b"E-%d,Item %d\n" % (n, n) for n in range(50))
    upload = SimpleUploadedFile("items.csv", body, content_type="text/csv")
    response = Client().post("/api/items/import", {"file": upload}, headers=bearer(cast.manager))
    assert response.status_code == 200 and response.json()["created"] == 50


def test_a_viewer_cannot_upload_to_the_import(cast):
    upload = SimpleUploadedFile("items.csv", b"external_id,title\nA,b\n", content_type="text/csv")
    assert (
        Client().post("/api/items/import", {"file": upload}, headers=bearer(cast.viewer)).status_code == 403
    )
