import datetime as dt

import pytest
from django.utils import timezone

from tikting.incidents.models import Incident

pytestmark = pytest.mark.django_db

PAGE = "/search/"
API = "/api/search"


@pytest.fixture
def incident(cast):
    return Incident.objects.create(
        number="INC0000042",
        short_description="Mail relay down",
        opened_at=timezone.now() - dt.timedelta(hours=3),
    )


def test_the_page_lists_ranked_results_with_links_and_kind_chips(login, cast, incident):
    response = login(cast.viewer).get(PAGE, {"q": "relay"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "/records/incident/" in html and "<mark>relay</mark>" in html
    assert "Incidents <span" in html


def test_an_empty_page_shows_the_box_and_no_results(login, cast):
    response = login(cast.viewer).get(PAGE)
    assert response.status_code == 200 and response.context["results"] is None


def test_a_query_that_cannot_be_searched_says_what_to_type_with_400(login, cast):
    response = login(cast.viewer).get(PAGE, {"q": "x"})
    assert response.status_code == 400
    assert "Type at least two characters" in response.content.decode()
    response = login(cast.viewer).get(PAGE, {"q": "mail", "kind": "tickets"})
    assert response.status_code == 400 and "Unknown kind" in response.content.decode()


def test_nothing_found_says_what_to_try(login, cast, incident):
    html = login(cast.viewer).get(PAGE, {"q": "zebra"}).content.decode()
    assert "Nothing found for <strong>zebra</strong>" in html


def test_the_header_has_the_search_box_on_every_page(login, cast):
    html = login(cast.viewer).get("/register/").content.decode()
    assert 'id="header-search"' in html and 'action="/search/"' in html


def test_signed_out_visitors_are_sent_to_sign_in(client):
    response = client.get(PAGE, {"q": "mail"})
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert client.get(API, {"q": "mail"}).status_code == 401


def test_the_api_returns_ranked_results_and_counts(login, cast, incident):
    body = login(cast.viewer).get(API, {"q": "INC0000042"}).json()
    assert body["results"][0]["ref"] == "INC0000042"
    assert body["results"][0]["kind"] == "incident"
    assert body["results"][0]["url"] == f"/records/incident/{incident.pk}/"
    assert body["kinds"] == [{"kind": "incident", "label": "Incidents", "count": 1, "capped": False}]


def test_the_api_rejects_bad_input_naming_the_field(login, cast):
    client = login(cast.viewer)
    detail = client.get(API, {"q": "mail", "kind": "nope"}).json()["detail"]
    assert detail[0]["field"] == "kind"
    detail = client.get(API, {"q": ""}).json()["detail"]
    assert detail[0]["field"] == "q"
    assert client.get(API, {"q": "mail", "limit": 1000}).status_code == 422
