"""A session that ends while a page is open: the request goes to the login page with `next` set to
that page (never a fragment or a POST-only address, which would answer 405 after signing in), and an
htmx request is answered 401 with HX-Redirect instead of a login form swapped into the page."""

from urllib.parse import parse_qs, urlsplit

import pytest

from tikting.test import ready_item

pytestmark = pytest.mark.django_db


def next_of(url: str) -> str:
    parts = urlsplit(url)
    assert parts.path == "/login/"
    return parse_qs(parts.query)["next"][0]


def test_htmx_post_without_a_session_is_sent_to_the_login_page_of_the_page(client, cast):
    item = ready_item(cast)
    page = f"http://testserver{item.get_absolute_url()}"
    response = client.post(
        f"/register/{item.pk}/comments/", {"body": "typed"}, HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL=page
    )
    assert response.status_code == 401
    assert next_of(response["HX-Redirect"]) == item.get_absolute_url()
    assert b"<form" not in response.content  # no login form to swap into the timeline


def test_htmx_get_keeps_the_query_of_the_page(client):
    response = client.get(
        "/register/?status=open",
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL="http://testserver/register/?q=mail",
    )
    assert response.status_code == 401
    assert next_of(response["HX-Redirect"]) == "/register/?q=mail"


def test_a_form_posted_without_a_session_goes_back_to_its_page_not_to_the_post_address(client, cast):
    item = ready_item(cast)
    response = client.post(
        f"/register/{item.pk}/comments/",
        {"body": "typed"},
        HTTP_REFERER=f"http://testserver{item.get_absolute_url()}",
    )
    assert response.status_code == 302
    assert next_of(response["Location"]) == item.get_absolute_url()


def test_after_signing_in_the_page_opens_not_a_405(client, cast, password):
    item = ready_item(cast)
    response = client.post(
        f"/register/{item.pk}/comments/",
        {"body": "typed"},
        HTTP_REFERER=f"http://testserver{item.get_absolute_url()}",
    )
    signed_in = client.post(
        "/login/",
        {"username": cast.owner.username, "password": password, "next": next_of(response["Location"])},
    )
    assert signed_in.status_code == 302 and signed_in["Location"] == item.get_absolute_url()
    assert client.get(signed_in["Location"]).status_code == 200


def test_a_page_from_elsewhere_is_not_a_next(client, cast):
    item = ready_item(cast)
    response = client.post(
        f"/register/{item.pk}/comments/",
        {"body": "typed"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL="https://evil.example/phish",
    )
    assert next_of(response["HX-Redirect"]) == "/"


def test_plain_page_visits_keep_the_usual_redirect(client):
    response = client.get("/register/board/")
    assert response.status_code == 302
    assert next_of(response["Location"]) == "/register/board/"
