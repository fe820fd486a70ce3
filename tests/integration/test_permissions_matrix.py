"""The permission matrix, walked from the URLconf: every HTML view and every API operation.

Each URL pattern of the project (except the admin, static files, login/logout, healthz and the
API's docs and schema) is requested with real ids of real objects, and:

- an anonymous user never gets a 2xx: HTML views send them to the login page, the API answers 401
  (405 where the method does not exist);
- a viewer gets 403 (or 405) on every POST / PUT / PATCH / DELETE, through the session and, for
  the API, a bearer token; nothing in the register changes. The only exception is self-service:
  managing one's own API tokens (SELF_SERVICE), where a viewer still cannot touch another
  user's token (404);
- no HTML view is csrf_exempt (the API's views are, and check CSRF in their session auth), but the
  discovery agents' endpoint (AGENT_ROUTES), which takes no session and no role: agents send an
  agent token instead, and everyone else, an administrator's session or API token included, gets
  401.

A new view or endpoint is tested by this module the moment it is routed: a path parameter this
module has no id for fails the test, and an unprotected view fails the assertions.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import transaction
from django.http import HttpResponse
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from tikting.accounts.models import ApiToken, Team, User
from tikting.attachments import services as AS
from tikting.attachments.models import Attachment
from tikting.cadence import services as CS
from tikting.cadence.models import Sprint, SprintItem
from tikting.cmdb.models import ConfigurationItem
from tikting.core.models import AuditEntry
from tikting.discovery.models import DiscoveryRun, DriftItem, DuplicateCandidate
from tikting.governance import services as GS
from tikting.imports import uploads as IU
from tikting.improvement import services as S
from tikting.improvement.models import Action, Comment, Indicator, Item
from tikting.jobs import services as JS
from tikting.notifications import services as NS
from tikting.notifications.models import Follow, Notification, Preference, Webhook
from tikting.records import registry as R
from tikting.records.registry import create_record
from tikting.savedviews import services as VS
from tikting.savedviews.models import SavedView
from tikting.signals import services as SS
from tikting.signals.models import Candidate
from tikting.test import Cast, form_data, noon, ready_item, resolved_incident

pytestmark = pytest.mark.django_db

SKIPPED_PREFIXES = ("admin/", "static/")
SKIPPED_ROUTES = {"healthz", "login/", "logout/", "api/openapi.json", "api/docs"}
# Routes that answer anonymous users with a redirect somewhere else than the login page.
PUBLIC_REDIRECTS = {"": "/register/", "governance/": "/governance/agenda/", "cadence/": "/cadence/sprints/"}
# Every signed-in user manages their own API tokens (a viewer's token still only reads).
# django-ninja's catch-all under /api/: it serves nothing (404 whoever asks, whatever the method).
EMPTY_ROUTES = {"api/"}
# Every signed-in user also issues (and revokes) their own calendar feed address (cadence/calendar/).
SELF_SERVICE = {
    "account/tokens/",
    "account/tokens/<int:pk>/revoke/",
    "api/tokens",
    "api/tokens/<token_id>",
    "cadence/calendar/",
    # One's own notifications, preferences and what one follows (tikting/notifications).
    "notifications/<int:notification_id>/read/",
    "notifications/read-all/",
    "notifications/preferences/",
    "notifications/follow/item/<int:item_id>/",
    "notifications/follow/records/<slug:slug>/<int:record_id>/",
    "api/notifications/<notification_id>/read",
    "api/notifications/read-all",
    "api/notifications/preferences",
    # Saved views: everyone keeps their own (tikting/savedviews); another's private view is 404.
    "views/",
    "views/<int:view_id>/delete/",
    "api/views/<view_id>",
}
# Staff feedback: every signed-in user may give it, viewers included (an empty body is refused as
# invalid, 400 / 422, and creates nothing).
OPEN_TO_EVERY_ROLE = {"signals/feedback/", "api/feedback", "api/views"}
# Where discovery agents (FusionInventory, GLPI Agent) send inventories: no session, no role, no
# CSRF token; an agent token as the HTTP basic-auth password instead (tikting/discovery/tests/
# test_agent_endpoint.py plays the agents). Any other caller gets 401, or 405 for another method
# than POST.
AGENT_ROUTES = {"discovery/agent/"}
# Calendar feeds (tikting/cadence): the secret token in the URL stands for signing in, so an unknown
# token answers 404 to anyone (anonymous callers included), and any other method than GET 405.
FEED_ROUTES = {"cadence/calendar/<str:token>.ics", "cadence/calendar/<str:token>/team/<int:team_id>.ics"}
# Sprint card forms (tikting/cadence/views.py, card_move and card_log) check the form before the
# role: an empty form is sent back to the board (302, an error message) whoever posts it, and
# changes nothing. A filled form from a viewer is refused 403 (the role table's rows).
FORM_BEFORE_ROLE = {"cadence/cards/<int:pk>/move/", "cadence/cards/<int:pk>/log/"}
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
    "ci_id": "ci",
    "drift_id": "drift",
    "duplicate_id": "duplicate",
    "run_id": "discovery_run",
    "minute_pk": "minute",
    "minute_id": "minute",
    "sprint_id": "sprint",
    "card_id": "card",
    "team_id": "team",
    "notification_id": "notification",
    "webhook_id": "webhook",
    "attachment_id": "attachment",
    "view_id": "saved_view",
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
        if route.startswith("cadence/sprints/"):
            return "sprint"
        if route.startswith("cadence/cards/"):
            return "card"
        if route.startswith("imports/"):
            return "upload"
        return "item"
    return PARAM_OBJECTS.get(name, name)


def url_for(route: str, ids: dict[str, int]) -> str:
    def fill(match: re.Match) -> str:
        key = _object_for(route, match.group(1))
        assert key in ids, f"/{route}: no test object for <{match.group(1)}>; add one to the `world` fixture"
        return str(ids[key])

    return "/" + PARAM.sub(fill, route)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    """Attachments written by the calls go to a temporary folder, not var/."""
    settings.MEDIA_ROOT = tmp_path / "media"


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
    minute = GS.record_minute(meeting, actor=cast.manager, item=item, kind="note", text="Discussed")
    device = ConfigurationItem.objects.create(name="pc-found", status=ConfigurationItem.Status.DISCOVERED)
    drift = DriftItem.objects.create(
        ci=device, attribute="location", discovered_value="Hall", source="snmp", found_at=timezone.now()
    )
    duplicate = DuplicateCandidate.objects.create(
        ci=ConfigurationItem.objects.create(name="twin-1"),
        other=ConfigurationItem.objects.create(name="twin-2"),
        reason="serial_number",
        found_at=timezone.now(),
    )
    run = DiscoveryRun.objects.create(source_name="matrix", started_at=timezone.now())
    team = Team.objects.create(name="Service desk")
    sprint = CS.create_sprint(
        actor=cast.manager,
        team=team,
        name="Sprint 1",
        goal="Faster fixes",
        start=TODAY,
        end=TODAY + dt.timedelta(days=13),
    )
    card = CS.add_sprint_item(sprint, actor=cast.manager, item=item, planned_hours=4)
    upload = IU.create_upload("incident", _incident_csv(), actor=cast.contributor)
    S.add_comment(item, actor=cast.contributor, body="@mia the matrix")
    notification = Notification.objects.filter(recipient=cast.manager).first()
    webhook = NS.create_webhook(
        actor=None, name="Matrix", url="https://93.184.216.34/hook", kinds=["commented"]
    )
    attachment = AS.attach(item, SimpleUploadedFile("pir.txt", b"PIR notes"), actor=cast.manager)
    saved_view = VS.create_view(actor=cast.manager, name="Manager's view", list_key="register")
    return {
        "upload": upload.pk,
        "notification": notification.pk,
        "webhook": webhook.pk,
        "attachment": attachment.pk,
        "saved_view": saved_view.pk,
        "team": team.pk,
        "sprint": sprint.pk,
        "card": card.pk,
        "ci": device.pk,
        "drift": drift.pk,
        "duplicate": duplicate.pk,
        "discovery_run": run.pk,
        "minute": minute.pk,
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
        elif _is_api(route) or route in AGENT_ROUTES:
            assert status in {401, 405}, f"anonymous {method.upper()} {url} → {status}"
        elif route in FEED_ROUTES:
            assert status in {404, 405}, f"anonymous {method.upper()} {url} → {status}"
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
        AuditEntry.objects.exclude(content_type__model__in=("apitoken", "calendarfeed")).count(),
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
            elif route in AGENT_ROUTES:
                assert status in {401, 405}, where
            elif route in SELF_SERVICE:
                # Their own tokens only: the manager's token (the id in the URL) is out of reach; the
                # manager's notification neither (404); an empty follow or preferences form is 400.
                assert status in {200, 201, 302, 400, 404, 405}, where
            elif route in OPEN_TO_EVERY_ROLE:
                assert status in {400, 405, 422}, where
            elif route in FORM_BEFORE_ROLE and method == "post":
                assert status in {302, 403}, where
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
    assert exempt == sorted(AGENT_ROUTES)


# === The role table ===============================================================================
# Every write a person can make, in the UI, the API and the command line, and who may make it: the
# one place the expected answers are written. docs/permissions.md shows this table (generated from
# it by `python -m tests.integration.test_permissions_matrix`, checked by test_the_doc_is_the_table).
#
# The world the table is played in (the `World` below, also described in the doc):
# - "owner" owns the item in question (Olga); "other owner" has the owner role but not this item;
# - "contributor" submitted the item, and is named on one of its actions and one of its indicators;
# - an allowed write must succeed (2xx, or a redirect that is not to a login page) and leave a
#   trace (an audit row, or the user it created); a refused one is answered 403 (or the `refused`
#   answer of the row), changes nothing, and anonymous callers are sent to sign in (UI, 302) or
#   answered 401 (API).

ROLES = ("viewer", "contributor", "owner", "other_owner", "manager", "admin", "anonymous")
ROLE_HEADINGS = ("Viewer", "Contributor", "Owner", "Other owner", "Manager", "Admin", "Anonymous")

SIGNED_IN = frozenset(ROLES) - {"anonymous"}
CONTRIBUTORS = SIGNED_IN - {"viewer"}
ITEM_OWNER = frozenset({"owner", "manager", "admin"})
MANAGERS = frozenset({"manager", "admin"})
ADMINS = frozenset({"admin"})
NOBODY: frozenset[str] = frozenset()

# The record kinds by who writes them (tikting/records/registry.py, RecordKind.access).
OPERATIONAL_KINDS = ("incident", "interaction", "problem", "change", "request", "article")
FINDING_KINDS = ("audit-finding",)
REFERENCE_KINDS = ("sla", "service", "group", "catalog-item", "ci", "survey")

NOW = "2026-11-20T10:00"
TODAY = dt.date(2026, 11, 20)
# The fields a new record of each kind needs (the API's JSON; the same values in forms and CSV).
NEW_RECORD = {
    "incident": {"number": "INC-NEW", "opened_at": NOW},
    "interaction": {"number": "IMS-NEW", "opened_at": NOW},
    "problem": {"number": "PRB-NEW", "title": "Mail queue stalls", "opened_at": NOW},
    "change": {"number": "CHG-NEW", "opened_at": NOW},
    "request": {"number": "REQ-NEW", "opened_at": NOW},
    "article": {"number": "KB-NEW"},
    "audit-finding": {"number": "AF-NEW", "title": "Unowned servers", "found_at": "2026-11-20"},
    "sla": {"name": "P3 new", "priority": 3, "resolution_minutes": 480},
    "service": {"name": "Fax"},
    "group": {"name": "Night shift"},
    "catalog-item": {"name": "New laptop"},
    "ci": {"name": "srv-new-01"},
    "survey": {"score": 4, "responded_at": NOW},
}


@dataclass(frozen=True)
class Call:
    """One request: `path` is formatted with the world's ids (Ctx); `body(ctx)` gives the form
    fields (UI) or the JSON (API); `multipart` sends the API body as a form with files."""

    method: str
    path: str
    body: Callable[[Ctx], Any] | None = None
    multipart: bool = False

    def shown(self) -> str:
        path = re.sub(r"{(\w+)}", r"<\1>", self.path)
        return f"{self.method} {path}"


@dataclass(frozen=True)
class Write:
    area: str
    what: str
    allowed: frozenset[str]
    ui: Call | None = None
    api: Call | None = None
    # The command line: the arguments of `call_command`, run as `--as <user>`.
    cli: Callable[[Ctx], list[str]] | None = None
    kinds: tuple[str, ...] = ()  # record rows: played once per kind
    refused: int | str = 403  # the answer to a signed-in user who may not ("admin-login": the admin site)
    trace: Callable[[], Any] | None = None  # what an allowed write changes (default: the audit rows)
    button: str = ""  # the page (a path) that offers the UI call to those allowed, and only to them

    @property
    def key(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", f"{self.area} {self.what}".lower()).strip("-")


def ui(path: str, body: Callable[[Ctx], Any] | None = None) -> Call:
    return Call("POST", path, body)


def api(method: str, path: str, body: Callable[[Ctx], Any] | None = None, multipart: bool = False) -> Call:
    return Call(method, path, body, multipart)


def _incident_csv() -> SimpleUploadedFile:
    return SimpleUploadedFile("incidents.csv", b"number,opened_at\nINC-UP1,2026-11-20T10:00\n", "text/csv")


def _item_form(ctx: Ctx, item_attr: str, **changes: Any) -> dict[str, Any]:
    from tikting.improvement.forms import ItemForm, initial_for

    item = ctx.fresh(item_attr)
    data = form_data(ItemForm(initial=initial_for(item), can_manage=True, track_changes=True))
    return {**data, **changes}


def _indicator_form(ctx: Ctx, attr: str, **changes: Any) -> dict[str, Any]:
    from tikting.improvement.item_forms import IndicatorForm

    indicator = ctx.fresh(attr)
    data = form_data(IndicatorForm.for_indicator(indicator, prefix=f"ind{indicator.pk}"))
    return {**data, **{f"ind{indicator.pk}-{k}": v for k, v in changes.items()}}


def _bind_form(ctx: Ctx) -> dict[str, Any]:
    indicator = ctx.fresh("indicator")
    today = timezone.localdate()
    p = f"bind{indicator.pk}"
    return {
        f"{p}-metric_key": "mttr",
        f"{p}-window_start": str(today - dt.timedelta(days=60)),
        f"{p}-window_end": str(today),
        f"{p}-version": str(indicator.version),
    }


def _record_form(ctx: Ctx, edit: bool) -> dict[str, Any]:
    from tikting.records.forms import record_form_class

    kind = R.get_kind(ctx.kind)
    form_class = record_form_class(kind)
    if edit:
        obj = ctx.fresh("record")
        data = form_data(form_class(instance=obj))
        name = _text_field(ctx.kind)
        data[name] = f"{getattr(obj, name)} (edited)"
        return data
    data = form_data(form_class())
    return {**data, **{k: str(v) for k, v in NEW_RECORD[ctx.kind].items()}}


def _text_field(slug: str) -> str:
    """A text field of the kind that an edit changes."""
    from tikting.records.forms import form_fields

    names = form_fields(R.get_kind(slug))
    preferred = ("description", "short_description", "title", "comment", "category", "name", "number")
    return next(n for n in preferred if n in names)


def _record_patch(ctx: Ctx) -> dict[str, Any]:
    obj = ctx.fresh("record")
    name = _text_field(ctx.kind)
    body: dict[str, Any] = {name: f"{getattr(obj, name)} (edited)"}
    if hasattr(obj, "version"):
        body["expected_version"] = obj.version
    return body


def _unread_for(ctx: Ctx) -> dict[str, Any]:
    """An unread notification of the caller, for "mark all read" to read."""
    ctx.w.notice_for(ctx.w.user(ctx.role))
    return {}


def _preferences_form() -> dict[str, Any]:
    from tikting.core.events import Kind

    return {**{f"kind_{k}": "off" for k in Kind.values}, "daily_digest": "on"}


def _webhook_form() -> dict[str, Any]:
    return {
        "name": "Chat room",
        "url": "https://93.184.216.34/in",
        "kinds": ["commented", "escalated"],
        "active": "on",
    }


def _webhook_json() -> dict[str, Any]:
    return {"name": "Chat room", "url": "https://93.184.216.34/in", "kinds": ["commented", "escalated"]}


def _records_csv(ctx: Ctx) -> list[str]:
    path = ctx.w.tmp / f"{ctx.kind}.csv"
    row = NEW_RECORD[ctx.kind]
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(row)
        writer.writerow(row.values())
    return ["import", ctx.kind, str(path), "--no-progress"]


def _register_csv(ctx: Ctx) -> Path:
    path = ctx.w.tmp / "register.csv"
    path.write_text("external_id,title,practice\nMX-1,Imported: shorten change approvals,change\n")
    return path


def _open_ids(ctx: Ctx) -> list[int]:
    """The open backlog, the world's items made first."""
    assert ctx.w.item and ctx.w.new_item
    return list(Item.objects.open().order_by("pk").values_list("pk", flat=True))


def _close_form(ctx: Ctx) -> dict[str, Any]:
    return {
        "outcome": "successful",
        "benefit_category": "time_saved",
        "realised_delta": "",
        "lessons": "Runbooks first",
        "version": ctx.fresh("momentum").version,
        "follow_ups-TOTAL_FORMS": "0",
        "follow_ups-INITIAL_FORMS": "0",
        "follow_ups-MIN_NUM_FORMS": "0",
        "follow_ups-MAX_NUM_FORMS": "10",
    }


def _new_user() -> dict[str, str]:
    secret = "Tikting-matrix-2026!"
    return {"username": "newcomer", "password1": secret, "password2": secret, "usable_password": "true"}


def _users() -> int:
    return User.objects.count()


# Improvement sprints: the owner role plans (tikting/cadence/permissions.py, can_plan).
PLANNERS = frozenset({"owner", "other_owner", "manager", "admin"})


def _new_sprint(c: Ctx, team_field: str) -> dict[str, Any]:
    start = TODAY + dt.timedelta(days=60)
    return {
        team_field: c.id("team"),
        "name": "Sprint 9",
        "goal": "Fewer reopened tickets",
        "start": start.isoformat(),
        "end": (start + dt.timedelta(days=13)).isoformat(),
    }


def _sprint_version(c: Ctx, attr: str) -> dict[str, Any]:
    return {"expected_version": c.fresh(attr).version}


def _review_form(c: Ctx) -> dict[str, Any]:
    card = c.id("card")
    return {
        "what_changed": "Resets take a day",
        "expected_version": c.fresh("sprint").version,
        f"decision_{card}": "continue",
        f"disposition_{card}": "register",
    }


def _review_json(c: Ctx) -> dict[str, Any]:
    return {
        "what_changed": "Resets take a day",
        "expected_version": c.fresh("sprint").version,
        "decisions": [{"card_id": c.id("card"), "decision": "continue", "disposition": "register"}],
    }


WRITES: tuple[Write, ...] = (
    # --- The register ---
    Write(
        "Register",
        "Submit an item",
        CONTRIBUTORS,
        ui=ui(
            "/register/submit/", lambda c: {**form_data(_submit_form()), "title": "Faster password resets"}
        ),
        api=api("POST", "/api/items", lambda c: {"title": "Faster password resets"}),
        button="/register/",
    ),
    Write(
        "Register",
        "Create an item with an owner or a rank",
        MANAGERS,
        ui=ui("/register/new/", lambda c: {**form_data(_full_form()), "title": "Patch faster", "rank": "1"}),
        api=api("POST", "/api/items", lambda c: {"title": "Patch faster", "owner": c.w.cast.owner.pk}),
    ),
    Write(
        "Register",
        "Edit an item",
        ITEM_OWNER,
        ui=ui("/register/{item}/edit/", lambda c: _item_form(c, "item", title="Cut e-mail MTTR by half")),
        api=api(
            "PATCH",
            "/api/items/{item}",
            lambda c: {"title": "Cut e-mail MTTR by half", "expected_version": c.fresh("item").version},
        ),
        button="/register/{item}/",
    ),
    Write(
        "Register",
        "Edit a new item (the contributor submitted it)",
        frozenset({"contributor", "manager", "admin"}),
        ui=ui(
            "/register/{new_item}/edit/", lambda c: _item_form(c, "new_item", title="Password resets: 1 day")
        ),
        api=api(
            "PATCH",
            "/api/items/{new_item}",
            lambda c: {"title": "Password resets: 1 day", "expected_version": c.fresh("new_item").version},
        ),
        button="/register/{new_item}/",
    ),
    Write(
        "Register",
        "Assess a new item",
        MANAGERS,
        ui=ui(
            "/register/{new_item}/assess/",
            lambda c: {
                "decision": "accept",
                "owner": c.w.cast.owner.pk,
                "version": c.fresh("new_item").version,
            },
        ),
        api=api(
            "POST",
            "/api/items/{new_item}/assess",
            lambda c: {"decision": "accept", "owner": c.w.cast.owner.pk},
        ),
        button="/register/{new_item}/",
    ),
    Write(
        "Register",
        "Move an item a step",
        ITEM_OWNER,
        ui=ui("/register/{item}/transition/", lambda c: {"to": "action", "version": c.fresh("item").version}),
        api=api("POST", "/api/items/{item}/transition", lambda c: {"to": "action"}),
        button="/register/{item}/",
    ),
    Write(
        "Register",
        "Block or unblock an item",
        ITEM_OWNER,
        ui=ui(
            "/register/{item}/blocker/",
            lambda c: {
                "blocked": "on",
                "blocker": "Waiting for the vendor",
                "version": c.fresh("item").version,
            },
        ),
        api=api(
            "POST",
            "/api/items/{item}/block",
            lambda c: {"blocked": True, "blocker": "Waiting for the vendor"},
        ),
        button="/register/{item}/",
    ),
    Write(
        "Register",
        "Escalate a blocker",
        ITEM_OWNER,
        ui=ui("/register/{item}/escalate/", lambda c: {"note": "We need the vendor's answer"}),
        api=api("POST", "/api/items/{item}/escalate", lambda c: {"note": "We need the vendor's answer"}),
    ),
    Write(
        "Register",
        "Evaluate an item (step 6)",
        ITEM_OWNER,
        ui=ui(
            "/register/{evaluating}/evaluate/",
            lambda c: {"note": "On target", "version": c.fresh("evaluating").version},
        ),
        api=api("POST", "/api/items/{evaluating}/evaluate", lambda c: {"note": "On target"}),
        button="/register/{evaluating}/",
    ),
    Write(
        "Register",
        "Close an item (step 7)",
        ITEM_OWNER,
        ui=ui("/register/{momentum}/close/", _close_form),
        api=api(
            "POST",
            "/api/items/{momentum}/close",
            lambda c: {
                "outcome": "successful",
                "benefit_category": "time_saved",
                "lessons": "Runbooks first",
            },
        ),
        button="/register/{momentum}/",
    ),
    Write(
        "Register",
        "Reopen a rejected item",
        MANAGERS,
        ui=ui("/register/{rejected}/reopen/", lambda c: {"reason": "The vendor changed its terms"}),
        api=api("POST", "/api/items/{rejected}/reopen", lambda c: {"reason": "The vendor changed its terms"}),
        button="/register/{rejected}/",
    ),
    Write(
        "Register",
        "Reopen a closed item (back to the step it closed from)",
        MANAGERS,
        ui=ui(
            "/register/{closed}/reopen/",
            lambda c: {"reason": "The figures were wrong", "version": c.fresh("closed").version},
        ),
        api=api("POST", "/api/items/{closed}/reopen", lambda c: {"reason": "The figures were wrong"}),
        button="/register/{closed}/",
    ),
    Write(
        "Register",
        "Undo an acceptance (item still at step 1)",
        MANAGERS,
        ui=ui("/register/{accepted}/undo-acceptance/", lambda c: {"reason": "A duplicate"}),
        api=api("POST", "/api/items/{accepted}/undo-acceptance", lambda c: {"reason": "A duplicate"}),
        button="/register/{accepted}/",
    ),
    Write(
        "Register",
        "Raise a follow-up (also of a closed item)",
        CONTRIBUTORS,
        ui=ui("/register/{closed}/follow-ups/", lambda c: {"follow-up-title": "Same for the VPN"}),
        api=api("POST", "/api/items/{closed}/follow-ups", lambda c: {"title": "Same for the VPN"}),
        button="/register/{closed}/",
    ),
    Write(
        "Register",
        "Comment on an item",
        CONTRIBUTORS,
        ui=ui("/register/{item}/comments/", lambda c: {"body": "The desk sees this daily"}),
        api=api("POST", "/api/items/{item}/comments", lambda c: {"body": "The desk sees this daily"}),
        button="/register/{item}/",
        trace=lambda: Comment.objects.count(),  # a journal entry, on the item's timeline
    ),
    Write(
        "Register",
        "Rank the backlog",
        MANAGERS,
        ui=ui("/register/rank/", lambda c: {"ids": [str(pk) for pk in reversed(_open_ids(c))], "page": "1"}),
        api=api("POST", "/api/items/rank", lambda c: {"ids": list(reversed(_open_ids(c)))}),
    ),
    Write(
        "Register",
        "Import items",
        MANAGERS,
        api=api(
            "POST",
            "/api/items/import",
            lambda c: {"file": SimpleUploadedFile("register.csv", _register_csv(c).read_bytes())},
            multipart=True,
        ),
        cli=lambda c: ["register", "import", str(_register_csv(c)), "--no-progress"],
    ),
    # --- Indicators, measurements and actions of the item ---
    Write(
        "Register",
        "Add an indicator",
        ITEM_OWNER,
        ui=ui(
            "/register/{item}/indicators/add/",
            lambda c: {
                "ind-new-name": "Reopen rate",
                "ind-new-direction": "lower",
                "ind-new-role": "impacted",
            },
        ),
        api=api(
            "POST", "/api/items/{item}/indicators", lambda c: {"name": "Reopen rate", "role": "impacted"}
        ),
        button="/register/{item}/",
    ),
    Write(
        "Register",
        "Edit an indicator, name who measures it",
        ITEM_OWNER,
        ui=ui(
            "/register/{item}/indicators/{indicator}/edit/",
            lambda c: _indicator_form(c, "indicator", owner=c.w.cast.contributor.pk),
        ),
        api=api(
            "PATCH",
            "/api/indicators/{indicator}",
            lambda c: {"owner": c.w.cast.contributor.pk, "expected_version": c.fresh("indicator").version},
        ),
        button="/register/{item}/",
    ),
    Write(
        "Register",
        "Bind an indicator to a metric",
        ITEM_OWNER,
        ui=ui("/register/{item}/indicators/{indicator}/bind/", _bind_form),
        api=api(
            "POST",
            "/api/indicators/{indicator}/bind",
            lambda c: {
                "metric_key": "mttr",
                "window_start": str(timezone.localdate() - dt.timedelta(days=60)),
                "window_end": str(timezone.localdate()),
                "expected_version": c.fresh("indicator").version,
            },
        ),
        button="/register/{item}/",
    ),
    Write("Register", "Remove an indicator", ITEM_OWNER, api=api("DELETE", "/api/indicators/{indicator}")),
    Write(
        "Register",
        "Record a measurement (an indicator nobody is named to measure)",
        ITEM_OWNER,
        ui=ui(
            "/register/{item}/indicators/{indicator}/measure/", lambda c: {f"m{c.id('indicator')}-value": "8"}
        ),
        api=api("POST", "/api/indicators/{indicator}/measurements", lambda c: {"value": "8"}),
        button="/register/{item}/",
    ),
    Write(
        "Register",
        "Record a measurement (the indicator the contributor measures)",
        ITEM_OWNER | {"contributor"},
        ui=ui(
            "/register/{item}/indicators/{measured}/measure/", lambda c: {f"m{c.id('measured')}-value": "70"}
        ),
        api=api("POST", "/api/indicators/{measured}/measurements", lambda c: {"value": "70"}),
        button="/register/{item}/",
    ),
    Write(
        "Register",
        "Plan an action",
        ITEM_OWNER,
        ui=ui(
            "/register/{item}/actions/add/",
            lambda c: {
                "action-title": "Tune the alerts",
                "action-owner": c.w.cast.contributor.pk,
                "action-due_date": str(timezone.localdate() + dt.timedelta(days=20)),
            },
        ),
        api=api("POST", "/api/items/{item}/actions", lambda c: {"title": "Tune the alerts"}),
        button="/register/{item}/",
    ),
    Write(
        "Register",
        "Update or complete an action (given to the contributor)",
        ITEM_OWNER | {"contributor"},
        ui=ui(
            "/register/{item}/actions/{given}/toggle/",
            lambda c: {"done": "on", "version": c.fresh("given").version},
        ),
        api=api(
            "PATCH",
            "/api/actions/{given}",
            lambda c: {
                "done": True,
                "due_date": str(timezone.localdate() + dt.timedelta(days=9)),
                "expected_version": c.fresh("given").version,
            },
        ),
        button="/register/{item}/",
    ),
    Write(
        "Register",
        "Update or complete an action (given to the item's owner)",
        ITEM_OWNER,
        ui=ui(
            "/register/{item}/actions/{action}/toggle/",
            lambda c: {"done": "on", "version": c.fresh("action").version},
        ),
        api=api(
            "PATCH",
            "/api/actions/{action}",
            lambda c: {"done": True, "expected_version": c.fresh("action").version},
        ),
        button="/register/{item}/",
    ),
    Write(
        "Register",
        "Hand an action over to someone else",
        ITEM_OWNER,
        api=api(
            "PATCH",
            "/api/actions/{given}",
            lambda c: {"owner": c.w.cast.other_owner.pk, "expected_version": c.fresh("given").version},
        ),
    ),
    Write(
        "Register",
        "Cancel an action, with a reason",
        ITEM_OWNER,
        ui=ui(
            "/register/{acting}/actions/{open_action}/cancel/",
            lambda c: {f"cancel{c.id('open_action')}-reason": "The vendor fixed it"},
        ),
        api=api("POST", "/api/actions/{open_action}/cancel", lambda c: {"reason": "The vendor fixed it"}),
        button="/register/{acting}/",
    ),
    Write(
        "Register",
        "Reinstate a cancelled action",
        ITEM_OWNER,
        ui=ui(
            "/register/{acting}/actions/{cancelled_action}/reinstate/",
            lambda c: {"version": c.fresh("cancelled_action").version},
        ),
        api=api("POST", "/api/actions/{cancelled_action}/reinstate", lambda c: {}),
        button="/register/{acting}/",
    ),
    Write(
        "Register",
        "Remove an action",
        ITEM_OWNER,
        ui=ui("/register/{item}/actions/{given}/remove/"),
        api=api("DELETE", "/api/actions/{given}"),
        button="/register/{item}/",
    ),
    # --- ITSM records, by who writes them ---
    *(
        Write(
            "Records",
            f"{verb} {label} ({', '.join(kinds)})",
            allowed,
            kinds=kinds,
            **calls,
        )
        for label, kinds, write, delete in (
            ("operational records", OPERATIONAL_KINDS, CONTRIBUTORS, MANAGERS),
            ("audit findings", FINDING_KINDS, MANAGERS, MANAGERS),
            ("reference data", REFERENCE_KINDS, ADMINS, ADMINS),
        )
        for verb, allowed, calls in (
            (
                "Create or import",
                write,
                {
                    "ui": ui("/records/{kind}/new/", lambda c: _record_form(c, edit=False)),
                    "api": api("POST", "/api/records/{kind}", lambda c: NEW_RECORD[c.kind]),
                    "cli": _records_csv,
                    "button": "/records/{kind}/",
                },
            ),
            (
                "Edit",
                write,
                {
                    "ui": ui("/records/{kind}/{record}/edit/", lambda c: _record_form(c, edit=True)),
                    "api": api("PATCH", "/api/records/{kind}/{record}", _record_patch),
                    "button": "/records/{kind}/{record}/",
                },
            ),
            (
                "Delete",
                delete,
                {
                    "ui": ui("/records/{kind}/{victim}/delete/"),
                    "api": api("DELETE", "/api/records/{kind}/{victim}"),
                    "button": "/records/{kind}/{victim}/",
                },
            ),
        )
    ),
    # --- Imports from the UI (tikting/imports/uploads.py) ---
    Write(
        "Records",
        "Upload a file to import (its dry run is queued)",
        CONTRIBUTORS,
        ui=ui("/imports/", lambda c: {"kind": "incident", "file": _incident_csv()}),
        button="/imports/",
    ),
    Write(
        "Records",
        "Import a checked file (their own; managers any)",
        frozenset({"contributor", "manager", "admin"}),
        ui=ui("/imports/{checked_upload}/import/"),
        button="/imports/{checked_upload}/",
    ),
    Write(
        "Records",
        "Discard a checked file (their own; managers any)",
        frozenset({"contributor", "manager", "admin"}),
        ui=ui("/imports/{checked_upload}/discard/"),
        button="/imports/{checked_upload}/",
    ),
    # --- Reviews and minutes ---
    Write(
        "Reviews",
        "Plan a review",
        MANAGERS,
        ui=ui(
            "/governance/reviews/",
            lambda c: {"title": "Extra review", "scheduled_for": "", "chair": "", "notes": ""},
        ),
        api=api("POST", "/api/governance/reviews", lambda c: {"title": "Extra review"}),
        button="/governance/reviews/",
    ),
    Write(
        "Reviews",
        "Edit a review",
        MANAGERS,
        ui=ui(
            "/governance/reviews/{review}/",
            lambda c: {
                "title": "Monthly review (moved)",
                "scheduled_for": str(timezone.localdate()),
                "chair": "",
                "notes": "",
            },
        ),
        button="/governance/reviews/{review}/",
    ),
    Write(
        "Reviews",
        "Hold a review (its agenda is frozen)",
        MANAGERS,
        ui=ui("/governance/reviews/{review}/hold/"),
        api=api("POST", "/api/governance/reviews/{review}/hold"),
        button="/governance/reviews/{review}/",
    ),
    Write(
        "Reviews",
        "Close a held review (its minutes become final)",
        MANAGERS,
        ui=ui("/governance/reviews/{held_review}/close/"),
        api=api("POST", "/api/governance/reviews/{held_review}/close"),
        button="/governance/reviews/{held_review}/",
    ),
    Write(
        "Reviews",
        "Correct a minute (until the review is closed)",
        MANAGERS,
        ui=ui(
            "/governance/reviews/{review}/minutes/{minute}/edit/",
            lambda c: {f"minute{c.id('minute')}-text": "Discussed at length"},
        ),
        api=api(
            "PATCH",
            "/api/governance/reviews/{review}/minutes/{minute}",
            lambda c: {"text": "Discussed at length"},
        ),
        button="/governance/reviews/{review}/",
    ),
    Write(
        "Reviews",
        "Amend a minute of a closed review",
        MANAGERS,
        ui=ui(
            "/governance/reviews/{closed_review}/minutes/{closed_minute}/edit/",
            lambda c: {f"minute{c.id('closed_minute')}-text": "The owner confirmed"},
        ),
        api=api(
            "POST",
            "/api/governance/reviews/{closed_review}/minutes/{closed_minute}/amendments",
            lambda c: {"text": "The owner confirmed"},
        ),
        button="/governance/reviews/{closed_review}/",
    ),
    Write(
        "Reviews",
        "Undo an acceptance a review recorded",
        MANAGERS,
        ui=ui(
            "/governance/reviews/{review}/minutes/{accept_minute}/undo-acceptance/",
            lambda c: {f"undo{c.id('accept_minute')}-reason": "A duplicate"},
        ),
        api=api(
            "POST",
            "/api/governance/reviews/{review}/minutes/{accept_minute}/undo-acceptance",
            lambda c: {"reason": "A duplicate"},
        ),
        button="/governance/reviews/{review}/",
    ),
    Write(
        "Reviews",
        "Record a minute",
        MANAGERS,
        ui=ui(
            "/governance/reviews/{review}/minutes/",
            lambda c: {"item": c.id("item"), "kind": "note", "text": "Discussed"},
        ),
        api=api(
            "POST",
            "/api/governance/reviews/{review}/minutes",
            lambda c: {"item_id": c.id("item"), "kind": "note", "text": "Discussed"},
        ),
    ),
    Write(
        "Reviews",
        "Record who attends a review and who sent apologies",
        MANAGERS,
        ui=ui(
            "/governance/reviews/{review}/attendance/",
            lambda c: {
                "attendees": [c.w.cast.owner.pk],
                "apologies": [c.w.cast.contributor.pk],
                "version": c.fresh("review").version,
            },
        ),
        api=api(
            "PUT",
            "/api/governance/reviews/{review}/attendance",
            lambda c: {
                "attendees": [c.w.cast.owner.pk],
                "apologies": [c.w.cast.contributor.pk],
                "expected_version": c.fresh("review").version,
            },
        ),
        button="/governance/reviews/{review}/",
    ),
    Write(
        "Reviews",
        "Freeze and circulate a review's agenda to its attendees",
        MANAGERS,
        ui=ui("/governance/reviews/{invited_review}/circulate/"),
        api=api("POST", "/api/governance/reviews/{invited_review}/circulate"),
        button="/governance/reviews/{invited_review}/",
    ),
    Write(
        "Reviews",
        "Record an action item of a review (a register action or a new item)",
        MANAGERS,
        ui=ui(
            "/governance/reviews/{review}/actions/",
            lambda c: {
                "title": "Call the vendor",
                "owner": c.w.cast.contributor.pk,
                "due_date": (timezone.localdate() + dt.timedelta(days=14)).isoformat(),
                "item": c.fresh("item").ref,
            },
        ),
        api=api(
            "POST",
            "/api/governance/reviews/{review}/actions",
            lambda c: {
                "title": "Call the vendor",
                "owner_id": c.w.cast.contributor.pk,
                "due_date": (timezone.localdate() + dt.timedelta(days=14)).isoformat(),
                "item_id": c.id("item"),
            },
        ),
        button="/governance/reviews/{review}/",
    ),
    # --- The intake queue (signals) and the jobs ---
    Write(
        "Intake",
        "Give staff feedback",
        SIGNED_IN,
        ui=ui("/signals/feedback/", lambda c: {"title": "The portal times out", "description": ""}),
        api=api("POST", "/api/feedback", lambda c: {"title": "The portal times out"}),
    ),
    Write(
        "Intake",
        "Submit a post-incident review finding",
        CONTRIBUTORS,
        ui=ui(
            "/signals/findings/post-incident-review/",
            lambda c: {"title": "Paging failed at night", "record": f"incident:{c.id('incident')}"},
        ),
        api=api(
            "POST",
            "/api/signals/findings",
            lambda c: {
                "channel": "post_incident_review",
                "title": "Paging failed at night",
                "record_kind": "incident",
                "record_id": c.id("incident"),
            },
        ),
    ),
    Write(
        "Intake",
        "Submit an audit finding to the queue",
        CONTRIBUTORS,
        ui=ui(
            "/signals/findings/audit/",
            lambda c: {"title": "Servers without owner", "record": f"audit-finding:{c.id('finding')}"},
        ),
        api=api(
            "POST",
            "/api/signals/findings",
            lambda c: {
                "channel": "audit_finding",
                "title": "Servers without owner",
                "record_kind": "audit-finding",
                "record_id": c.id("finding"),
            },
        ),
    ),
    Write(
        "Intake",
        "Accept a candidate into the register",
        MANAGERS,
        ui=ui(
            "/signals/{candidate}/accept/",
            lambda c: {"title": "Portal time-outs", "practice": "service_desk", "impact": "3", "effort": "2"},
        ),
        api=api("POST", "/api/signals/candidates/{candidate}/triage", lambda c: {"action": "accept"}),
        button="/signals/{candidate}/",
    ),
    Write(
        "Intake",
        "Merge a candidate into an item",
        MANAGERS,
        ui=ui("/signals/{candidate}/merge/", lambda c: {"item": c.fresh("item").ref, "reason": "Same cause"}),
        api=api(
            "POST",
            "/api/signals/candidates/{candidate}/triage",
            lambda c: {"action": "merge", "item_id": c.id("item")},
        ),
        button="/signals/{candidate}/",
    ),
    Write(
        "Intake",
        "Defer a candidate",
        MANAGERS,
        ui=ui(
            "/signals/{candidate}/defer/",
            lambda c: {"until": str(timezone.localdate() + dt.timedelta(days=30))},
        ),
        api=api(
            "POST",
            "/api/signals/candidates/{candidate}/triage",
            lambda c: {"action": "defer", "until": str(timezone.localdate() + dt.timedelta(days=30))},
        ),
        button="/signals/{candidate}/",
    ),
    Write(
        "Intake",
        "Dismiss a candidate",
        MANAGERS,
        ui=ui("/signals/{candidate}/dismiss/", lambda c: {"reason": "Known and accepted"}),
        api=api(
            "POST",
            "/api/signals/candidates/{candidate}/triage",
            lambda c: {"action": "dismiss", "reason": "Known and accepted"},
        ),
        button="/signals/{candidate}/",
    ),
    Write(
        "Intake",
        "Triage candidates in bulk",
        MANAGERS,
        ui=ui(
            "/signals/bulk/",
            lambda c: {"ids": [str(c.id("candidate"))], "action": "dismiss", "reason": "Noise"},
        ),
        api=api(
            "POST",
            "/api/signals/candidates/triage",
            lambda c: {"ids": [c.id("candidate")], "action": "dismiss", "reason": "Noise"},
        ),
    ),
    Write("Intake", "Run the detectors now", MANAGERS, api=api("POST", "/api/signals/runs", lambda c: {})),
    Write(
        "Jobs",
        "Run a job now",
        MANAGERS,
        ui=ui("/jobs/run/", lambda c: {"name": "schedule:housekeeping"}),
        api=api("POST", "/api/jobs/run", lambda c: {"name": "schedule:housekeeping"}),
    ),
    Write(
        "Jobs",
        "Retry a failed job",
        MANAGERS,
        ui=ui("/jobs/{failed_job}/retry/"),
        api=api("POST", "/api/jobs/{failed_job}/retry"),
        button="/jobs/{failed_job}/",
    ),
    # --- CMDB health (discovery) ---
    Write(
        "CMDB health",
        "Register a discovered device",
        MANAGERS,
        ui=ui("/discovery/cis/{discovered}/register/", lambda c: {"ci_class": "workstation"}),
        api=api("POST", "/api/discovery/cis/{discovered}/register", lambda c: {"ci_class": "workstation"}),
        button="/discovery/cis/?figure=unregistered",
    ),
    Write(
        "CMDB health",
        "Register selected discovered devices",
        MANAGERS,
        ui=ui("/discovery/cis/register/", lambda c: {"ci": [str(c.id("discovered"))]}),
        # (the device in the page's query only makes it exist before the page is read)
        button="/discovery/cis/?figure=unregistered&device={discovered}",
    ),
    Write(
        "CMDB health",
        "Retire a stale CI",
        MANAGERS,
        ui=ui("/discovery/cis/{stale_ci}/retire/"),
        api=api("POST", "/api/discovery/cis/{stale_ci}/retire", lambda c: {}),
        button="/discovery/cis/?figure=stale",
    ),
    Write(
        "CMDB health",
        "Accept an attribute drift (take the discovered value)",
        MANAGERS,
        ui=ui("/discovery/drifts/{drift}/accept/"),
        api=api("POST", "/api/discovery/drifts/{drift}/accept", lambda c: {}),
        button="/discovery/drifts/",
    ),
    Write(
        "CMDB health",
        "Reject an attribute drift (keep the CMDB's value)",
        MANAGERS,
        ui=ui("/discovery/drifts/{drift}/reject/"),
        api=api("POST", "/api/discovery/drifts/{drift}/reject", lambda c: {}),
        button="/discovery/drifts/",
    ),
    Write(
        "CMDB health",
        "Merge duplicate CIs",
        MANAGERS,
        ui=ui("/discovery/duplicates/{duplicate}/merge/"),
        api=api("POST", "/api/discovery/duplicates/{duplicate}/merge", lambda c: {}),
        button="/discovery/duplicates/",
    ),
    Write(
        "CMDB health",
        "Dismiss a duplicate candidate",
        MANAGERS,
        ui=ui("/discovery/duplicates/{duplicate}/dismiss/"),
        api=api("POST", "/api/discovery/duplicates/{duplicate}/dismiss", lambda c: {}),
        button="/discovery/duplicates/",
    ),
    # --- Accounts ---
    Write(
        "Accounts",
        "Create an API token for oneself",
        SIGNED_IN,
        ui=ui("/account/tokens/", lambda c: {"name": "my script"}),
        api=api("POST", "/api/tokens", lambda c: {"name": "my script"}),
        button="/account/tokens/",
    ),
    Write(
        "Accounts",
        "Revoke one's own API token",
        SIGNED_IN,
        ui=ui("/account/tokens/{own_token}/revoke/"),
        api=api("DELETE", "/api/tokens/{own_token}"),
        button="/account/tokens/",
    ),
    Write(
        "Accounts",
        "Revoke someone else's API token (administrators do it in /admin/)",
        NOBODY,
        ui=ui("/account/tokens/{other_token}/revoke/"),
        api=api("DELETE", "/api/tokens/{other_token}"),
        refused=404,
    ),
    Write(
        "Accounts",
        "Create users and set their roles (/admin/; `tikting createuser` on the server)",
        ADMINS,
        ui=ui("/admin/accounts/user/add/", lambda c: _new_user()),
        refused="admin-login",
        trace=_users,
    ),
    # --- Improvement sprints (tikting/cadence/permissions.py; docs/cadence.md) ---
    Write(
        "Sprints",
        "Plan a sprint",
        PLANNERS,
        ui=ui("/cadence/sprints/", lambda c: _new_sprint(c, "team")),
        api=api("POST", "/api/cadence/sprints", lambda c: _new_sprint(c, "team_id")),
    ),
    Write(
        "Sprints",
        "Add an item to a sprint's scope",
        PLANNERS,
        ui=ui("/cadence/sprints/{sprint}/", lambda c: {"item": c.id("new_item"), "planned_hours": "2"}),
        api=api(
            "POST",
            "/api/cadence/sprints/{sprint}/items",
            lambda c: {"item_id": c.id("new_item"), "planned_hours": 2},
        ),
    ),
    Write(
        "Sprints",
        "Take an item out of a sprint's scope",
        PLANNERS,
        ui=ui("/cadence/cards/{card}/remove/"),
    ),
    Write(
        "Sprints",
        "Start a sprint",
        PLANNERS,
        ui=ui("/cadence/sprints/{planned_sprint}/start/", lambda c: _sprint_version(c, "planned_sprint")),
        api=api(
            "POST",
            "/api/cadence/sprints/{planned_sprint}/start",
            lambda c: _sprint_version(c, "planned_sprint"),
        ),
    ),
    Write(
        "Sprints",
        "Move a card on the board (the sprint's team is the contributor's)",
        PLANNERS | {"contributor"},
        ui=ui("/cadence/cards/{card}/move/", lambda c: {"column": "doing"}),
        api=api("POST", "/api/cadence/cards/{card}/move", lambda c: {"column": "doing"}),
    ),
    Write(
        "Sprints",
        "Log one's own hours on a card (of Olga's item, in the contributor's team's sprint)",
        frozenset({"contributor", "owner", "manager", "admin"}),
        ui=ui("/cadence/cards/{card}/log/", lambda c: {"hours": "1", "day": c.w.sprint.start.isoformat()}),
        api=api(
            "POST",
            "/api/cadence/cards/{card}/time",
            lambda c: {"hours": 1, "day": c.w.sprint.start.isoformat()},
        ),
    ),
    Write(
        "Sprints",
        "Log hours for someone else (the other owner, who may not log on this card)",
        MANAGERS,
        api=api(
            "POST",
            "/api/cadence/cards/{card}/time",
            lambda c: {"hours": 1, "day": c.w.sprint.start.isoformat(), "user_id": c.w.cast.other_owner.pk},
        ),
    ),
    Write(
        "Sprints",
        "Hold a sprint review (closes the sprint)",
        PLANNERS,
        ui=ui("/cadence/sprints/{sprint}/review/", _review_form),
        api=api("POST", "/api/cadence/sprints/{sprint}/review", _review_json),
    ),
    Write(
        "Sprints",
        "Issue or revoke one's own calendar feed address",
        SIGNED_IN,
        ui=ui("/cadence/calendar/"),
    ),
    # --- Notifications, followers, webhooks (tikting/notifications) ---
    Write(
        "Notifications",
        "Mark one's own notification read",
        SIGNED_IN,
        ui=ui("/notifications/{own_notice}/read/"),
        api=api("POST", "/api/notifications/{own_notice}/read", lambda c: {"read": True}),
        trace=lambda: Notification.objects.exclude(read_at=None).count(),
    ),
    Write(
        "Notifications",
        "Mark all one's own notifications read",
        SIGNED_IN,
        ui=ui("/notifications/read-all/", lambda c: _unread_for(c)),
        api=api("POST", "/api/notifications/read-all", lambda c: _unread_for(c)),
        trace=lambda: Notification.objects.exclude(read_at=None).count(),
    ),
    Write(
        "Notifications",
        "Choose one's notifications (per event kind, daily digest)",
        SIGNED_IN,
        ui=ui("/notifications/preferences/", lambda c: _preferences_form()),
        api=api("PUT", "/api/notifications/preferences", lambda c: {"channels": {"commented": "off"}}),
        trace=lambda: list(Preference.objects.values_list("user_id", "kind", "channel")),
    ),
    Write(
        "Notifications",
        "Follow an item",
        SIGNED_IN,
        ui=ui("/notifications/follow/item/{item}/", lambda c: {"follow": "1"}),
        trace=lambda: Follow.objects.count(),
        button="/register/{item}/",
    ),
    Write(
        "Notifications",
        "Follow a record",
        SIGNED_IN,
        ui=ui("/notifications/follow/records/{kind}/{record}/", lambda c: {"follow": "1"}),
        kinds=("incident", "change"),
        trace=lambda: Follow.objects.count(),
        button="/records/{kind}/{record}/",
    ),
    Write(
        "Webhooks",
        "Create a webhook",
        MANAGERS,
        ui=ui("/notifications/webhooks/", lambda c: _webhook_form()),
        api=api("POST", "/api/webhooks", lambda c: _webhook_json()),
    ),
    Write(
        "Webhooks",
        "Edit a webhook (URL, event kinds, on / off)",
        MANAGERS,
        ui=ui("/notifications/webhooks/{webhook}/", lambda c: {**_webhook_form(), "name": "Renamed"}),
        api=api("PATCH", "/api/webhooks/{webhook}", lambda c: {"name": "Renamed"}),
    ),
    Write(
        "Webhooks",
        "Delete a webhook",
        MANAGERS,
        ui=ui("/notifications/webhooks/{webhook}/delete/"),
        api=api("DELETE", "/api/webhooks/{webhook}"),
        button="/notifications/webhooks/{webhook}/",
    ),
    # --- Working together: attachments, saved views, bulk actions, the board ---
    *(
        Write(
            "Attachments",
            f"Attach a file to {what}",
            allowed,
            ui=ui("/attachments/", lambda c, target=target: _attach_body(c, target)),
            api=api(
                "POST", "/api/attachments", lambda c, target=target: _attach_body(c, target), multipart=True
            ),
            button=button,
        )
        for what, target, allowed, button in (
            ("an item", "improvement.item:{item}", CONTRIBUTORS, "/register/{item}/"),
            ("an operational record (an incident)", "incidents.incident:{incident}", CONTRIBUTORS, ""),
            ("a review minute", "governance.minute:{minute}", MANAGERS, ""),
        )
    ),
    Write(
        "Attachments",
        "Remove a file (the contributor attached it)",
        frozenset({"contributor", "manager", "admin"}),
        ui=ui("/attachments/{attachment}/delete/"),
        api=api("DELETE", "/api/attachments/{attachment}"),
        button="/register/{item}/",
    ),
    Write(
        "Saved views",
        "Save a view of a list",
        SIGNED_IN,
        ui=ui("/views/", lambda c: {"name": "Overdue", "list_key": "register", "query": "flag=overdue"}),
        api=api("POST", "/api/views", lambda c: {"name": "Overdue", "list_key": "register"}),
        trace=lambda: SavedView.objects.count(),
        button="/register/",
    ),
    Write(
        "Saved views",
        "Change or remove one's own view (Olga's; others do not see it: 404)",
        frozenset({"owner"}),
        ui=ui("/views/{saved_view}/delete/"),
        api=api("PATCH", "/api/views/{saved_view}", lambda c: {"name": "Renamed"}),
        refused=404,
        button="/register/",
    ),
    Write(
        "Bulk actions",
        "Assign an owner to the selected items",
        MANAGERS,
        ui=ui(
            "/register/bulk/",
            lambda c: {"action": "owner", "owner": c.w.cast.other_owner.pk, "ids": [c.id("item")]},
        ),
    ),
    Write(
        "Bulk actions",
        "Move the selected items a step",
        ITEM_OWNER,
        ui=ui("/register/bulk/", lambda c: {"action": "step", "step": "action", "ids": [c.id("item")]}),
    ),
    Write(
        "Bulk actions",
        "Add the selected items to a sprint",
        PLANNERS,
        ui=ui(
            "/register/bulk/",
            lambda c: {"action": "sprint", "sprint": c.id("planned_sprint"), "ids": [c.id("new_item")]},
        ),
    ),
    *(
        Write(
            "Bulk actions",
            f"Set the service of selected {label} ({', '.join(kinds)})",
            allowed,
            kinds=kinds,
            ui=ui(
                "/records/{kind}/bulk/",
                lambda c: {"action": "service", "service": c.w.cast.network.pk, "ids": [c.id("record")]},
            ),
        )
        for label, kinds, allowed in (
            ("operational records", OPERATIONAL_KINDS, CONTRIBUTORS),
            ("audit findings", FINDING_KINDS, MANAGERS),
            ("reference data", ("sla", "catalog-item", "ci", "survey"), ADMINS),
        )
    ),
    Write(
        "Register",
        "Move an item a step on the board",
        ITEM_OWNER,
        ui=ui("/register/board/move/", lambda c: {"item": c.id("item"), "to": "action"}),
        button="/register/board/?with={item}",  # (an unknown parameter: makes the item first)
    ),
)


def _attach_body(c: Ctx, target: str) -> dict[str, Any]:
    """A new file for `target` ("improvement.item:{item}", with the world's id filled in)."""
    upload = SimpleUploadedFile("evidence.txt", b"What the monitoring showed")
    return {"target": target.format_map(c), "file": upload}


def _submit_form():
    from tikting.improvement.forms import ItemSubmitForm

    return ItemSubmitForm()


def _full_form():
    from tikting.improvement.forms import ItemForm

    return ItemForm(can_manage=True)


# --- The world the table is played in --------------------------------------------------------------


class World:
    """The objects the calls act on, each made the first time a row needs it."""

    def __init__(self, cast: Cast, tmp: Path) -> None:
        self.cast = cast
        self.tmp = tmp
        self.tokens: dict[str, str] = {}

    @cached_property
    def item(self) -> Item:
        """Olga's item at step 4, submitted by the contributor, with an indicator and an action of
        Olga's, and an indicator and an action given to the contributor."""
        cast = self.cast
        item = ready_item(cast)
        S.add_indicator(
            item,
            actor=cast.owner,
            name="First-contact resolution",
            unit="%",
            direction="higher",
            baseline_value="60",
            target_value="75",
            owner=cast.contributor,
        )
        S.add_action(
            item,
            actor=cast.owner,
            title="Train the service desk",
            owner=cast.contributor,
            due_date=timezone.localdate() + dt.timedelta(days=7),
        )
        resolved_incident("INC-BIND", cast.email, noon(timezone.localdate() - dt.timedelta(days=20)), 5)
        return Item.objects.get(pk=item.pk)

    @cached_property
    def indicator(self) -> Indicator:
        return self.item.indicators.get(name="MTTR")

    @cached_property
    def measured(self) -> Indicator:
        return self.item.indicators.get(owner=self.cast.contributor)

    @cached_property
    def action(self) -> Action:
        return self.item.actions.get(owner=self.cast.owner)

    @cached_property
    def given(self) -> Action:
        return self.item.actions.get(owner=self.cast.contributor)

    @cached_property
    def new_item(self) -> Item:
        return S.create_item(actor=self.cast.contributor, title="Password resets take two days")

    def _acting(self, title: str) -> Item:
        """Olga's item moved to step 5, its actions done and a measurement taken."""
        cast = self.cast
        item = ready_item(cast, title=title)
        item = S.transition_item(item, actor=cast.owner, to="action")
        for action in item.actions.all():
            S.update_action(action, actor=cast.owner, done=True)
        S.record_measurement(item.indicators.get(), actor=cast.owner, value="5")
        return Item.objects.get(pk=item.pk)

    @cached_property
    def evaluating(self) -> Item:
        item = self._acting("Evaluate me")
        return S.transition_item(item, actor=self.cast.owner, to="evaluation")

    @cached_property
    def momentum(self) -> Item:
        item = self._acting("Close me")
        item = S.transition_item(item, actor=self.cast.owner, to="evaluation")
        item = S.evaluate_item(item, actor=self.cast.owner)
        return S.transition_item(item, actor=self.cast.owner, to="momentum")

    @cached_property
    def closed(self) -> Item:
        """An item closed successful, under sustainment watch."""
        return S.close_item(self.momentum, actor=self.cast.owner, benefit_category="time_saved")

    @cached_property
    def accepted(self) -> Item:
        item = S.create_item(actor=self.cast.contributor, title="Self-service password reset")
        return S.assess_item(item, actor=self.cast.manager, decision="accept", owner=self.cast.owner)

    @cached_property
    def acting(self) -> Item:
        """Olga's item at step 5 with an open action and a cancelled one."""
        cast = self.cast
        item = S.transition_item(ready_item(cast, title="Act on me"), actor=cast.owner, to="action")
        action = S.add_action(item, actor=cast.owner, title="Buy a licence", owner=cast.owner)
        S.cancel_action(action, actor=cast.owner, reason="Open source will do")
        return Item.objects.get(pk=item.pk)

    @cached_property
    def open_action(self) -> Action:
        return self.acting.actions.get(title="Write runbook")

    @cached_property
    def cancelled_action(self) -> Action:
        return self.acting.actions.get(cancelled=True)

    @cached_property
    def minute(self) -> Any:
        return GS.record_minute(
            self.review, actor=self.cast.manager, item=self.item, kind="note", text="Discussed"
        )

    @cached_property
    def accept_minute(self) -> Any:
        new = S.create_item(actor=self.cast.contributor, title="Chatbot for password resets")
        return GS.record_minute(
            self.review, actor=self.cast.manager, item=new, kind="accept", text="Worth it"
        )

    @cached_property
    def held_review(self) -> Any:
        review = GS.create_review(actor=self.cast.manager, title="Held review")
        return GS.hold_review(review, actor=self.cast.manager)

    @cached_property
    def closed_review(self) -> Any:
        review = GS.create_review(actor=self.cast.manager, title="Closed review")
        GS.record_minute(review, actor=self.cast.manager, item=self.item, kind="note", text="On track")
        GS.hold_review(review, actor=self.cast.manager)
        return GS.close_review(review, actor=self.cast.manager)

    @cached_property
    def invited_review(self) -> Any:
        """A planned review with its attendees recorded: ready to circulate."""
        review = GS.create_review(actor=self.cast.manager, title="Invited review")
        return GS.set_attendance(review, actor=self.cast.manager, attendees=[self.cast.owner], apologies=[])

    @cached_property
    def closed_minute(self) -> Any:
        return self.closed_review.minutes.get()

    @cached_property
    def rejected(self) -> Item:
        item = S.create_item(actor=self.cast.contributor, title="Colour the tickets")
        return S.assess_item(item, actor=self.cast.manager, decision="reject", reason="No benefit")

    @cached_property
    def review(self) -> Any:
        return GS.create_review(actor=self.cast.manager, title="Monthly review")

    @cached_property
    def incident(self) -> Any:
        return create_record("incident", actor=None, number="INC-PIR", opened_at=timezone.now())

    @cached_property
    def webhook(self) -> Webhook:
        return NS.create_webhook(
            actor=None, name="Chat", url="https://93.184.216.34/hook", kinds=["commented"]
        )

    def notice_for(self, user: User | None) -> Notification | None:
        """An unread notification of `user` (about the item)."""
        if user is None:
            return None
        return Notification.objects.create(
            recipient=user,
            kind="commented",
            reason="owner",
            content_type=ContentType.objects.get_for_model(Item),
            object_id=str(self.item.pk),
            target_label=self.item.ref,
            summary="A comment",
        )

    @cached_property
    def finding(self) -> Any:
        return create_record("audit-finding", actor=None, number="AF-Q", title="Unowned", found_at=TODAY)

    @cached_property
    def candidate(self) -> Any:
        """Staff feedback waiting in the intake queue."""
        return SS.submit_candidate(actor=self.cast.contributor, channel="staff_feedback", title="Slow portal")

    @cached_property
    def checked_upload(self) -> Any:
        """A file of incidents the contributor uploaded, its dry run done."""
        upload = IU.create_upload("incident", _incident_csv(), actor=self.cast.contributor)
        IU.run_check(upload.pk)
        return upload

    @cached_property
    def failed_job(self) -> Any:
        job = JS.enqueue("tikting.signals.tasks.housekeeping", origin="manual")
        DBTaskResult.objects.filter(pk=job.pk).update(status="FAILED")
        return job

    @cached_property
    def discovered(self) -> Any:
        """A device discovery found that the CMDB lacks."""
        return ConfigurationItem.objects.create(name="pc-found", status=ConfigurationItem.Status.DISCOVERED)

    @cached_property
    def stale_ci(self) -> Any:
        """An in-scope server discovery last saw two months ago."""
        return ConfigurationItem.objects.create(
            name="srv-gone", ci_class="server", last_seen_at=timezone.now() - dt.timedelta(days=60)
        )

    @cached_property
    def drift(self) -> Any:
        """A location a person gave a server, and the one SNMP reports."""
        server = ConfigurationItem.objects.create(name="srv-drift", ci_class="server", location="Room 1")
        return DriftItem.objects.create(
            ci=server,
            attribute="location",
            ci_value="Room 1",
            ci_source="manual",
            discovered_value="Room 9",
            source="snmp",
            found_at=timezone.now(),
        )

    @cached_property
    def duplicate(self) -> Any:
        return DuplicateCandidate.objects.create(
            ci=ConfigurationItem.objects.create(name="twin-1", serial_number="TW1"),
            other=ConfigurationItem.objects.create(name="twin-2", serial_number="TW1"),
            reason="serial_number",
            value="TW1",
            found_at=timezone.now(),
        )

    # --- Improvement sprints: the contributor's team, its sprint under way with a card of Olga's
    # item, and its next sprint planned with a card of its own.
    @cached_property
    def team(self) -> Team:
        team = Team.objects.create(name="Service desk")
        self.cast.contributor.team = team
        self.cast.contributor.save()
        return team

    @cached_property
    def sprint(self) -> Sprint:
        cast = self.cast
        start = timezone.localdate() - dt.timedelta(days=5)
        sprint = CS.create_sprint(
            actor=cast.manager,
            team=self.team,
            name="Sprint 1",
            goal="Faster fixes",
            start=start,
            end=start + dt.timedelta(days=13),
        )
        CS.add_sprint_item(sprint, actor=cast.manager, item=self.item, planned_hours=4)
        return CS.start_sprint(sprint, actor=cast.manager)

    @cached_property
    def card(self) -> SprintItem:
        return self.sprint.cards.get()

    @cached_property
    def planned_sprint(self) -> Sprint:
        cast = self.cast
        start = self.sprint.end + dt.timedelta(days=1)
        sprint = CS.create_sprint(
            actor=cast.manager,
            team=self.team,
            name="Sprint 2",
            goal="Fewer calls",
            start=start,
            end=start + dt.timedelta(days=13),
        )
        item = S.create_item(actor=cast.contributor, title="Self-service unlocks")
        CS.add_sprint_item(sprint, actor=cast.manager, item=item, planned_hours=2)
        return sprint

    def records(self, slug: str) -> tuple[Any, Any]:
        """(a record to edit, a record nothing points at, to delete) of a kind."""
        key = f"_records_{slug}"
        if key not in self.__dict__:
            made = []
            for suffix in ("-R", "-V"):
                data = dict(NEW_RECORD[slug])
                for name in ("number", "name"):
                    if name in data:
                        data[name] = f"{data[name]}{suffix}"
                made.append(create_record(slug, actor=None, **data))
            self.__dict__[key] = tuple(made)
        return self.__dict__[key]

    def user(self, role: str) -> User | None:
        return None if role == "anonymous" else getattr(self.cast, role)

    def token(self, role: str) -> str:
        """The raw API token the role's calls use (one per role)."""
        if role not in self.tokens:
            self.tokens[role] = ApiToken.issue(self.user(role), "matrix")[1]
        return self.tokens[role]

    @cached_property
    def attachment(self) -> Attachment:
        """A file the contributor attached to Olga's item."""
        return AS.attach(self.item, SimpleUploadedFile("trace.log", b"trace"), actor=self.cast.contributor)

    @cached_property
    def saved_view(self) -> SavedView:
        """Olga's private view of the register."""
        return VS.create_view(
            actor=self.cast.owner, name="My overdue", list_key="register", query="flag=overdue"
        )

    def spare_token(self, user: User) -> ApiToken:
        """A token of `user` that nothing else uses (the one a revocation revokes)."""
        key = f"_spare_{user.pk}"
        if key not in self.__dict__:
            self.__dict__[key] = ApiToken.issue(user, "spare")[0]
        return self.__dict__[key]


@dataclass
class Ctx:
    """One call's context: the world, who calls, the record kind (record rows). Formats paths."""

    w: World
    role: str
    kind: str = ""

    def fresh(self, attr: str) -> Any:
        """The world's object as the database has it now (its current version)."""
        if attr in {"record", "victim"}:
            obj = self.w.records(self.kind)[0 if attr == "record" else 1]
        else:
            obj = getattr(self.w, attr)
        return type(obj)._default_manager.get(pk=obj.pk)

    def id(self, attr: str) -> int:
        return self[attr]

    def __getitem__(self, key: str) -> Any:
        if key == "kind":
            return self.kind
        if key in {"record", "victim"}:
            return self.fresh(key).pk
        user = self.w.user(self.role)
        if key == "own_notice":
            notice = self.w.notice_for(user or self.w.cast.manager)
            return notice.pk if notice else 0
        if key == "own_token":
            return self.w.spare_token(user or self.w.cast.manager).pk
        if key == "other_token":
            other = self.w.cast.manager if self.role != "manager" else self.w.cast.admin
            return self.w.spare_token(other).pk
        return getattr(self.w, key).pk


# --- Playing the table ------------------------------------------------------------------------------


def _trace(row: Write) -> Any:
    if row.trace is not None:
        return row.trace()
    return AuditEntry.objects.count()


def _prepare(ctx: Ctx, call: Call, channel: str) -> Callable[[], HttpResponse]:
    """The request, made ready outside the savepoint: the world's objects it needs, its body and
    the caller's token exist before it (and after the rollback)."""
    path = call.path.format_map(ctx)
    body = call.body(ctx) if call.body else {}
    user = ctx.w.user(ctx.role)
    if channel == "ui":
        client = Client()
        if user is not None:
            client.force_login(user)
        return lambda: client.post(path, body)
    headers = {} if user is None else {"Authorization": f"Bearer {ctx.w.token(ctx.role)}"}
    if call.multipart:
        return lambda: Client().post(path, body, headers=headers)
    data = json.dumps(body) if call.body is not None else b""
    return lambda: Client().generic(call.method, path, data, content_type="application/json", headers=headers)


def _refusal_ok(row: Write, channel: str, role: str, response: HttpResponse) -> bool:
    status = response.status_code
    location = response.get("Location", "")
    if role == "anonymous":
        if channel == "api":
            return status == 401
        login = "/admin/login/" if row.refused == "admin-login" else "/login/"
        return status == 302 and location.startswith(login)
    if row.refused == "admin-login":
        return status == 302 and location.startswith("/admin/login/")
    return status == row.refused


def _success_ok(response: HttpResponse) -> bool:
    status = response.status_code
    location = response.get("Location", "")
    if status == 302:
        return not location.startswith(("/login/", "/admin/login/"))
    return status in {200, 201, 202, 204}


def _play(row: Write, ctx: Ctx, channel: str) -> str | None:
    """Play one call in a savepoint rolled back after it; a message when the answer is wrong."""
    allowed = ctx.role in row.allowed
    if channel == "cli":
        assert row.cli is not None
        user = ctx.w.user(ctx.role)
        assert user is not None
        args = [*row.cli(ctx), "--as", user.username]
        where = f"{ctx.role} tikting {' '.join(args[:2])}"
        with transaction.atomic():
            before = _trace(row)
            error = ""
            try:
                call_command(*args, stdout=io.StringIO(), stderr=io.StringIO())
            except CommandError as exc:
                error = str(exc)
            changed = _trace(row) != before
            transaction.set_rollback(True)
        if allowed and (error or not changed):
            return f"{where}: allowed but {error or 'nothing changed'}"
        if not allowed and ("may not" not in error or changed):
            return f"{where}: refused but {error or 'it ran'}{' and changed something' if changed else ''}"
        return None
    call = getattr(row, channel)
    where = f"{ctx.role} {channel} {call.method} {call.path.format_map(ctx)}"
    send = _prepare(ctx, call, channel)
    with transaction.atomic():
        before = _trace(row)
        response = send()
        changed = _trace(row) != before
        transaction.set_rollback(True)
    answer = f"{response.status_code} {response.get('Location', '')}".strip()
    if allowed:
        if not _success_ok(response):
            return f"{where}: allowed, answered {answer}: {response.content[:300]!r}"
        if not changed:
            return f"{where}: allowed, answered {answer}, but left no trace"
    else:
        if not _refusal_ok(row, channel, ctx.role, response):
            return f"{where}: refused, answered {answer}"
        if changed:
            return f"{where}: refused ({answer}) but something changed"
    return None


@pytest.fixture
def stage(cast, tmp_path):
    return World(cast, tmp_path)


@pytest.mark.parametrize("row", WRITES, ids=lambda row: row.key)
def test_every_role_gets_the_answer_the_table_gives(row, stage):
    problems = []
    for kind in row.kinds or ("",):
        for role in ROLES:
            ctx = Ctx(stage, role, kind)
            for channel in ("ui", "api", "cli"):
                if getattr(row, channel) is None or (channel == "cli" and role == "anonymous"):
                    continue
                problem = _play(row, ctx, channel)
                if problem:
                    problems.append(f"{kind + ': ' if kind else ''}{problem}")
    assert not problems, "\n".join(problems)


# --- Buttons: offered to those the table allows, and only to them ---------------------------------

LINK = re.compile(r'\b(href|action|hx-post|hx-get)="([^"]*)"')


def _offered(html: str, page: str, target: str) -> bool:
    """Does the page offer `target`: a link to it or a form posting to it? A form with no action
    posts to the page itself; a link to the page itself (the navigation) offers nothing."""
    for attr, url in LINK.findall(html):
        url = url.split("?")[0].split("#")[0]
        if attr == "action" and url == "":
            url = page
        if url == target and (target != page or attr in {"action", "hx-post"}):
            return True
    return False


@pytest.mark.parametrize("row", [r for r in WRITES if r.button], ids=lambda row: row.key)
def test_buttons_show_to_those_who_may_and_only_to_them(row, stage):
    assert row.ui is not None, "a button offers the UI call"
    problems = []
    for kind in row.kinds or ("",):
        for role in sorted(SIGNED_IN):
            ctx = Ctx(stage, role, kind)
            page, target = row.button.format_map(ctx), row.ui.path.format_map(ctx)
            client = Client()
            client.force_login(stage.user(role))
            response = client.get(page)
            # A page the role may not read offers it nothing.
            assert response.status_code in {200, 403}, f"{role} GET {page} → {response.status_code}"
            shown = response.status_code == 200 and _offered(response.content.decode(), page, target)
            if shown != (role in row.allowed):
                problems.append(f"{role} on {page}: {target} {'shown' if shown else 'not shown'}")
    assert not problems, "\n".join(problems)


# --- The table covers every write, every kind, and the doc shows it ---------------------------------


def _pattern(path: str) -> str:
    """A route or a table path with its parameters as '*': 'register/*/transition/'."""
    return re.sub(r"<[^>]+>|{\w+}", "*", path.lstrip("/"))


TABLE_ROUTES = {_pattern(call.path) for row in WRITES for call in (row.ui, row.api) if call is not None}


def test_every_kind_is_in_one_class_of_the_table():
    classes = [OPERATIONAL_KINDS, FINDING_KINDS, REFERENCE_KINDS]
    listed = [slug for kinds in classes for slug in kinds]
    assert sorted(listed) == sorted(R.KINDS), "classify every record kind in the role table"


@pytest.mark.parametrize("route", [r for r in ROUTES if _pattern(r) not in TABLE_ROUTES])
def test_a_route_outside_the_table_takes_no_write(route, world, cast):
    """A route the table does not name answers every write with 405 (404 for the API's empty
    root), even to an administrator: a new write must be added to the table."""
    url = url_for(route, world)
    session = Client()
    session.force_login(cast.admin)
    client, headers = session, {}
    if _is_api(route):
        client, headers = Client(), {"Authorization": f"Bearer {ApiToken.issue(cast.admin, 'routes')[1]}"}
    for method in UNSAFE:
        response = client.generic(
            method.upper(), url, data=b"{}", content_type="application/json", headers=headers
        )
        expected = 404 if route in EMPTY_ROUTES else 405
        if route in AGENT_ROUTES and method == "post":
            expected = 401  # an agent token's write, never a role's: the session is not even looked at
        assert response.status_code == expected, (
            f"admin {method.upper()} {url} → {response.status_code}: a write outside the role table; "
            "add it to WRITES with who may make it (docs/permissions.md follows)"
        )


DOC = Path(__file__).resolve().parents[2] / "docs" / "permissions.md"
START, END = (
    "<!-- role-table: generated from tests/integration/test_permissions_matrix.py -->",
    "<!-- /role-table -->",
)


def _cli_shown(row: Write) -> str:
    if row.cli is None:
        return ""
    return (
        "`tikting import <kind> FILE --as USER`" if row.kinds else "`tikting register import FILE --as USER`"
    )


def role_table() -> str:
    """The role table as Markdown: one row per write, ✓ where the role may."""
    head = ["Area", "Write", "UI", "API / CLI", *ROLE_HEADINGS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in WRITES:
        machine = [f"`{row.api.shown()}`" if row.api else "", _cli_shown(row)]
        cells = [
            row.area,
            row.what.replace("|", "\\|"),
            f"`{row.ui.shown()}`" if row.ui else "",
            "<br>".join(m for m in machine if m),
            *("✓" if role in row.allowed else "—" for role in ROLES),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def test_the_doc_is_the_table():
    """docs/permissions.md shows WRITES as they are. To refresh it after changing the table:
    TIKTING_WRITE_DOCS=1 pytest tests/integration/test_permissions_matrix.py -k doc"""
    text = DOC.read_text()
    assert START in text and END in text, f"{DOC} needs the markers {START} … {END}"
    before, rest = text.split(START, 1)
    current, after = rest.split(END, 1)
    wanted = f"\n{role_table()}\n"
    if current != wanted and os.environ.get("TIKTING_WRITE_DOCS") == "1":
        DOC.write_text(before + START + wanted + END + after)
        current = wanted
    assert current == wanted, (
        "docs/permissions.md differs from WRITES: run with TIKTING_WRITE_DOCS=1 (see the test)"
    )
