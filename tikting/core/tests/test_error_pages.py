"""403, 404 and 500 pages in the app's layout with a way back; plain text for htmx requests; the
500 page rendered without a database and without context processors (DEBUG off, as in production).

The module doubles as a URLconf: the project's URLs and error handlers plus two views that fail.
"""

import pytest
from django.core.exceptions import PermissionDenied
from django.db import OperationalError
from django.test import Client
from django.urls import path

from tikting import urls as project

# The project's handlers (Django's defaults if it had none: the tests then say what is missing).
handler403 = getattr(project, "handler403", "django.views.defaults.permission_denied")
handler404 = getattr(project, "handler404", "django.views.defaults.page_not_found")
handler500 = getattr(project, "handler500", "django.views.defaults.server_error")


def boom(request):
    raise OperationalError("the database went away")


def forbidden(request):
    raise PermissionDenied("You may not edit CI-00012.")


urlpatterns = [path("boom/", boom), path("forbidden/", forbidden), *project.urlpatterns]

pytestmark = pytest.mark.urls("tikting.core.tests.test_error_pages")


def test_debug_is_off(settings):
    assert settings.DEBUG is False  # what users see, not the technical page


@pytest.mark.django_db
def test_404_in_the_layout_with_a_way_back(cast, login):
    client = login(cast.viewer)
    response = client.get("/register/999999/", HTTP_REFERER="http://testserver/register/?q=mail")
    assert response.status_code == 404
    page = response.content.decode()
    assert "Page not found" in page and 'class="navbar' in page  # the app's layout, signed in
    assert 'href="http://testserver/register/?q=mail"' in page  # back to where you were
    assert 'href="/register/"' in page
    # a foreign referer is no way back
    page = client.get("/nowhere/", HTTP_REFERER="https://evil.example/").content.decode()
    assert "evil.example" not in page and "Back to where you were" not in page


@pytest.mark.django_db
def test_403_in_the_layout_with_the_reason(cast, login):
    client = login(cast.viewer)
    response = client.get("/register/submit/")
    assert response.status_code == 403
    page = response.content.decode()
    assert "You may not submit an improvement opportunity." in page
    assert 'class="navbar' in page and 'href="/register/"' in page
    assert client.get("/forbidden/").content.decode().count("You may not edit CI-00012.") == 1


@pytest.mark.django_db
def test_htmx_requests_get_the_message_as_text(cast, login):
    client = login(cast.viewer)
    response = client.get("/forbidden/", HTTP_HX_REQUEST="true")
    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/plain")
    assert response.content.decode() == "You may not edit CI-00012."
    missing = client.get("/register/999999/", HTTP_HX_REQUEST="true")
    assert missing.status_code == 404 and missing["Content-Type"].startswith("text/plain")


def test_500_renders_without_database_or_context_processors(django_db_blocker, monkeypatch):
    def broken(request):
        raise RuntimeError("a context processor that needs the database")

    monkeypatch.setattr("tikting.context_processors.tikting", broken)
    client = Client(raise_request_exception=False)
    with django_db_blocker.block():  # any query would fail the test
        response = client.get("/boom/", HTTP_X_REQUEST_ID="req-42")
    assert response.status_code == 500
    page = response.content.decode()
    assert "Something went wrong" in page
    assert '<link rel="stylesheet" href="/static/css/app.css">' in page  # the app's layout
    assert 'href="/boom/"' in page and 'href="/register/"' in page  # try again, or go back
    assert "req-42" in page  # a reference to quote
    assert "the database went away" not in page  # no technical detail


def test_500_of_a_post_offers_no_try_again_that_would_be_a_405():
    response = Client(raise_request_exception=False).post("/boom/")
    assert response.status_code == 500
    assert 'href="/boom/"' not in response.content.decode()


def test_500_answers_even_when_its_template_fails(monkeypatch):
    def no_template(name):
        raise RuntimeError("template storage unreadable")

    monkeypatch.setattr("tikting.core.views.loader.get_template", no_template)
    response = Client(raise_request_exception=False).get("/boom/")
    assert response.status_code == 500
    assert "Something went wrong" in response.content.decode()
