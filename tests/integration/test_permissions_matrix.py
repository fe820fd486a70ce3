"""The permission matrix, walked from the URLconf: every HTML view and every API operation.

Each URL pattern of the project (except the admin, static files, login/logout, healthz and the
API's docs and schema) is requested with real ids of real objects, and:

- an anonymous user never gets a 2xx: HTML views send them to the login page, the API answers 401
  (405 where the method does not exist);
- a viewer gets 403 (or 405) on every POST / PUT / PATCH / DELETE, through the session and, for
  the API, a bearer token; nothing in the register changes. The only exception is self-service:
  managing one's own API tokens (SELF_SERVICE), where a viewer still cannot touch another
  user's token (404);
- no HTML view is csrf_exempt (the API's views are, and check CSRF in their session auth).

A new view or endpoint is tested by this module the moment it is routed: a path parameter this
module has no id for fails the test, and an unprotected view fails the assertions.
"""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from tikting.accounts.models import ApiToken
from tikting.core.models import AuditEntry
from tikting.governance import services as GS
from tikting.improvement.models import Comment, Item
from tikting.jobs import services as JS
from tikting.records.registry import create_record
from tikting.signals import services as SS
from tikting.signals.models import Candidate
from tikting.test import ready_item

pytestmark = pytest.mark.django_db

SKIPPED_PREFIXES = ("admin/", "static/")
SKIPPED_ROUTES = {"healthz", "login/", "logout/", "api/openapi.json", "api/docs"}
# Routes that answer anonymous users with a redirect somewhere else than the login page.
PUBLIC_REDIRECTS = {"": "/register/"}
# Every signed-in user manages their own API tokens (a viewer's token still only reads).
# django-ninja's catch-all under /api/: it serves nothing (404 whoever asks, whatever the method).
EMPTY_ROUTES = {"api/"}
SELF_SERVICE = {"account/tokens/", "account/tokens/<int:pk>/revoke/", "api/tokens", "api/tokens/<token_id>"}
# Staff feedback: every signed-in user may give it, viewers included (an empty body is refused as
# invalid, 400 / 422, and creates nothing).
OPEN_TO_EVERY_ROLE = {"signals/feedback/", "api/feedback"}
UNSAFE = ("post", "put", "patch", "delete")
PARAM = re.compile(r"<(?:\w+:)?(\w+)>")
# Path parameter → the object whose id fills it ("pk" depends on the app: see _object_for).
PARAM_OBJECTS = {
    "item_id": "item",
    "indicator_id": "indicator",
    "indicator_pk": "indicator",
    "action_id": "action",
    "action_pk": "action",
    "token_id": "token",
    "review_id": "meeting",
    "record_id": "record",
    "slug": "slug",
    "key": "metric",
    "candidate_id": "candidate",
    "job_id": "job",
}


def _walk(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern.callback


def all_routes() -> dict[str, object]:
    """Route → view callback, for every route under test (one entry per path)."""
    routes: dict[str, object] = {}
    for route, callback in _walk(get_resolver().url_patterns):
        if route.startswith(SKIPPED_PREFIXES) or route in SKIPPED_ROUTES:
            continue
        routes.setdefault(route, callback)
    return routes


ROUTES = all_routes()


def _is_api(route: str) -> bool:
    return route.startswith("api/")


def _object_for(route: str, name: str) -> str:
    if name == "pk":
        if route.startswith("governance/"):
            return "meeting"
        if route.startswith("account/"):
            return "token"
        if route.startswith("records/"):
            return "record"
        return "item"
    return PARAM_OBJECTS.get(name, name)


def url_for(route: str, ids: dict[str, int]) -> str:
    def fill(match: re.Match) -> str:
        key = _object_for(route, match.group(1))
        assert key in ids, f"/{route}: no test object for <{match.group(1)}>; add one to the `world` fixture"
        return str(ids[key])

    return "/" + PARAM.sub(fill, route)


@pytest.fixture
def world(cast):
    """Real objects: an item at step 4 owned by cast.owner, its indicator and action, a review,
    and an API token of the manager (somebody else's token, for the self-service routes)."""
    item = ready_item(cast)
    meeting = GS.create_review(actor=cast.manager, title="Monthly review")
    token, _ = ApiToken.issue(cast.manager, "manager's script")
    incident = create_record("incident", actor=None, number="INC-MATRIX", opened_at=timezone.now())
    candidate = SS.submit_candidate(actor=cast.contributor, channel="staff_feedback", title="Matrix feedback")
    job = JS.enqueue("tikting.signals.tasks.housekeeping", origin="manual")
    return {
        "candidate": candidate.pk,
        "job": job.pk,
        "slug": "incident",
        "record": incident.pk,
        "metric": "mttr",
        "item": item.pk,
        "indicator": item.indicators.get().pk,
        "action": item.actions.get().pk,
        "meeting": meeting.pk,
        "token": token.pk,
    }


def test_the_matrix_covers_the_project():
    """A sanity check of the walk itself: HTML views and the API are both in it."""
    assert "register/<int:pk>/transition/" in ROUTES
    assert "api/items/<item_id>" in ROUTES
    assert "api/governance/reviews/<review_id>/minutes" in ROUTES
    assert len(ROUTES) > 60


@pytest.mark.parametrize("route", list(ROUTES))
def test_anonymous_users_get_nothing(route, world):
    client = Client()
    url = url_for(route, world)
    methods = ("get", *UNSAFE) if _is_api(route) else ("get", "post")
    for method in methods:
        response = client.generic(method.upper(), url, data=b"{}", content_type="application/json")
        status = response.status_code
        assert not 200 <= status < 300, f"anonymous {method.upper()} {url} → {status}"
        if route in EMPTY_ROUTES:
            assert status == 404, f"anonymous {method.upper()} {url} → {status}"
        elif _is_api(route):
            assert status in {401, 405}, f"anonymous {method.upper()} {url} → {status}"
        elif route in PUBLIC_REDIRECTS and status == 302:
            assert response["Location"] == PUBLIC_REDIRECTS[route]
        else:
            assert status in {302, 405}, f"anonymous {method.upper()} {url} → {status}"
            if status == 302:
                assert response["Location"].startswith("/login/?next="), f"{url} → {response['Location']}"


def _register_state() -> tuple:
    return (
        list(Item.objects.order_by("pk").values_list("pk", "version")),
        Comment.objects.count(),
        AuditEntry.objects.exclude(content_type__model="apitoken").count(),
    )


@pytest.mark.parametrize("route", list(ROUTES))
def test_viewers_change_nothing(route, world, cast):
    url = url_for(route, world)
    session = Client()
    session.force_login(cast.viewer)
    clients = [("session", session, {})]
    if _is_api(route):
        _, raw = ApiToken.issue(cast.viewer, "viewer's script")
        clients.append(("token", Client(), {"Authorization": f"Bearer {raw}"}))
    before = _register_state()
    for how, client, headers in clients:
        for method in UNSAFE:
            body = b'{"name": "mine"}' if route == "api/tokens" else b"{}"
            response = client.generic(
                method.upper(), url, data=body, content_type="application/json", headers=headers
            )
            status = response.status_code
            where = f"viewer ({how}) {method.upper()} {url} → {status}"
            if route in EMPTY_ROUTES:
                assert status == 404, where
            elif route in SELF_SERVICE:
                # Their own tokens only: the manager's token (the id in the URL) is out of reach.
                assert status in {200, 201, 302, 404, 405}, where
            elif route in OPEN_TO_EVERY_ROLE:
                assert status in {400, 405, 422}, where
            else:
                assert status in {403, 405}, where
    assert _register_state() == before
    assert ApiToken.objects.get(pk=world["token"]).revoked_at is None
    assert Candidate.objects.get(pk=world["candidate"]).status == "new"
    assert Candidate.objects.count() == 1


def test_no_html_view_is_csrf_exempt():
    exempt = [
        route
        for route, callback in ROUTES.items()
        if not _is_api(route) and getattr(callback, "csrf_exempt", False)
    ]
    assert exempt == []
