"""Hostile and broken input over HTTP: a NUL character (U+0000) anywhere in a query string, a form
or a JSON body, and JSON nested too deeply, get a clear 4xx naming the field, never a 500 (PostgreSQL
cannot store NUL in text) nor a silent write (SQLite can)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client

from tikting.accounts.models import ApiToken
from tikting.improvement import services as S
from tikting.improvement.models import Comment, Item

pytestmark = pytest.mark.django_db

NUL = "\x00"
FORM_ENCODED = "application/x-www-form-urlencoded"


def bearer(user: Any) -> dict[str, Any]:
    _, raw = ApiToken.issue(user, "tests")
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def post_json(client: Client, url: str, body: Any, headers: dict[str, Any]) -> Any:
    return client.post(url, json.dumps(body), content_type="application/json", **headers)


def assert_names_nul(response, field: str | None) -> None:
    assert response.status_code == 422, response.content
    entries = response.json()["detail"]
    assert any(e["field"] == field and "U+0000" in e["message"] for e in entries), entries


# --- JSON bodies ---------------------------------------------------------------------------------


def test_a_nul_in_an_item_title_is_refused_naming_the_field(cast):
    response = post_json(Client(), "/api/items", {"title": f"Fix{NUL}it"}, bearer(cast.contributor))
    assert_names_nul(response, "title")
    assert not Item.objects.exists()


def test_a_nul_in_a_comment_is_refused(cast):
    item = S.create_item(actor=cast.contributor, title="Fewer resets")
    url = f"/api/items/{item.pk}/comments"
    response = post_json(Client(), url, {"body": f"a{NUL}b"}, bearer(cast.contributor))
    assert_names_nul(response, "body")
    assert not Comment.objects.exists()


def test_a_nul_in_a_record_is_refused(cast):
    body = {"number": "INC-1", "title": f"Mail{NUL}down", "raw": {"nested": [f"x{NUL}"]}}
    response = post_json(Client(), "/api/records/incident", body, bearer(cast.contributor))
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["detail"]}
    assert fields == {"title", "raw.nested.0"}


def test_a_nul_in_a_json_key_is_refused(cast):
    response = post_json(Client(), "/api/records/incident", {f"ti{NUL}tle": "x"}, bearer(cast.contributor))
    assert response.status_code == 422
    assert "U+0000" in response.json()["detail"][0]["message"]


def test_a_nul_in_a_token_name_is_refused_in_the_api_and_the_page(cast):
    response = post_json(Client(), "/api/tokens", {"name": f"lap{NUL}top"}, bearer(cast.viewer))
    assert_names_nul(response, "name")
    client = Client()
    client.force_login(cast.viewer)
    # A browser's form post (urlencoded) is refused before the view runs ...
    response = client.post("/account/tokens/", urlencode({"name": f"lap{NUL}top"}), content_type=FORM_ENCODED)
    assert response.status_code == 400
    assert "U+0000" in response.content.decode() and "“name”" in response.content.decode()
    # ... and a multipart one by the form field (Django's CharField refuses NUL).
    response = client.post("/account/tokens/", {"name": f"lap{NUL}top"})
    assert "Null characters are not allowed" in response.content.decode()
    assert ApiToken.objects.filter(user=cast.viewer).count() == 1  # the bearer above only


def test_an_escaped_backslash_before_u0000_is_plain_text(cast):
    # "\\u0000" in JSON is a backslash followed by the letters u0000: ordinary text.
    body = '{"title": "C:\\\\u0000 path"}'
    response = Client().post("/api/items", body, content_type="application/json", **bearer(cast.contributor))
    assert response.status_code == 201, response.content
    assert Item.objects.get().title == "C:\\u0000 path"


# --- Query strings and forms ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["/api/items?q=a%00b", "/api/records/incident?q=a%00b", "/api/items?status=new%00"]
)
def test_a_nul_in_an_api_query_parameter_is_refused(cast, url):
    response = Client().get(url, **bearer(cast.viewer))
    field = url.split("?")[1].split("=")[0]
    assert_names_nul(response, field)


@pytest.mark.parametrize(
    "url",
    [
        "/register/?q=a%00b",
        "/records/incident/?q=a%00b",
        "/metrics/?service=%00",
        "/governance/agenda/?x%00=1",
    ],
)
def test_a_nul_in_a_page_query_string_is_a_bad_request(cast, url):
    client = Client()
    client.force_login(cast.viewer)
    response = client.get(url)
    assert response.status_code == 400
    assert b"U+0000" in response.content


def test_a_nul_in_a_form_post_is_refused_before_any_write(cast):
    client = Client()
    client.force_login(cast.contributor)
    body = urlencode({"title": f"Fix{NUL}it", "practice": "incident"})
    response = client.post("/register/submit/", body, content_type=FORM_ENCODED)
    assert response.status_code == 400
    assert "U+0000" in response.content.decode()
    assert not Item.objects.exists()


def test_a_nul_in_the_path_is_a_bad_request(cast):
    client = Client()
    client.force_login(cast.viewer)
    assert client.get("/records/inci%00dent/").status_code == 400
    assert_names_nul(client.get("/api/records/inci%00dent"), None)


# --- Deep nesting --------------------------------------------------------------------------------


def test_json_nested_too_deeply_is_a_422_not_a_crash(cast):
    deep = "[" * 100_000 + "]" * 100_000
    body = '{"number": "INC-1", "raw": ' + deep + "}"
    response = Client().post(
        "/api/records/incident", body, content_type="application/json", **bearer(cast.contributor)
    )
    assert response.status_code == 422
    assert "nested" in response.json()["detail"][0]["message"]


def test_json_nested_moderately_deep_is_refused_too(cast):
    # Well under the JSON parser's recursion limit, but deeper than any body the API takes (64).
    value: object = 1
    for _ in range(100):
        value = {"x": [value]}
    body = {"number": "INC-1", "raw": value}
    response = post_json(Client(), "/api/records/incident", body, bearer(cast.contributor))
    assert response.status_code == 422
    assert "nested" in response.json()["detail"][0]["message"]
