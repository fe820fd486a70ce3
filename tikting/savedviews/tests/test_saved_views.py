"""Saved views: owner-only changes, team sharing, cleaned queries, the sidebar and the API."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from tikting.accounts.models import ApiToken, Team
from tikting.core.exceptions import ConflictError, PermissionDeniedError
from tikting.core.models import AuditEntry
from tikting.savedviews import services as S
from tikting.savedviews.models import SavedView

pytestmark = pytest.mark.django_db


@pytest.fixture
def desk(cast):
    team = Team.objects.create(name="Service desk")
    for user in (cast.owner, cast.contributor):
        user.team = team
        user.save()
    return team


def test_a_private_view_is_its_owners_alone(cast, desk):
    view = S.create_view(
        actor=cast.owner, name="Mine overdue", list_key="register", query="flag=overdue&owner=me"
    )
    assert list(S.visible_to(cast.owner)) == [view]
    assert list(S.visible_to(cast.contributor)) == []  # same team, but private
    assert list(S.visible_to(cast.manager)) == []


def test_a_shared_view_is_seen_by_the_team_and_changed_by_its_owner_only(cast, desk):
    view = S.create_view(
        actor=cast.owner, name="Desk backlog", list_key="records:incident", query="status=new", shared=True
    )
    assert view.team == desk
    assert list(S.visible_to(cast.contributor)) == [view]
    assert list(S.visible_to(cast.manager)) == []  # another team (none)
    with pytest.raises(PermissionDeniedError):
        S.update_view(view, actor=cast.contributor, name="Hijacked")
    with pytest.raises(PermissionDeniedError):
        S.delete_view(view, actor=cast.contributor)
    S.update_view(view, actor=cast.owner, shared=False)
    assert list(S.visible_to(cast.contributor)) == []


def test_sharing_needs_a_team_and_names_are_unique_per_list(cast, desk):
    with pytest.raises(ValidationError) as caught:
        S.create_view(actor=cast.manager, name="x", list_key="register", shared=True)
    assert "no team" in caught.value.message_dict["shared"][0]
    S.create_view(actor=cast.owner, name="Same", list_key="register")
    with pytest.raises(ValidationError) as caught:
        S.create_view(actor=cast.owner, name="Same", list_key="register")
    assert "already have" in caught.value.message_dict["name"][0]
    S.create_view(actor=cast.owner, name="Same", list_key="records:problem")  # another list
    with pytest.raises(ValidationError) as caught:
        S.create_view(actor=cast.owner, name=" ", list_key="nowhere")
    assert set(caught.value.message_dict) == {"name", "list_key"}


def test_the_query_keeps_only_what_the_list_reads(cast):
    view = S.create_view(
        actor=cast.owner, name="x", list_key="register", query="status=open&page=3&evil=1&sort=-priority&q="
    )
    assert view.query == "sort=-priority&status=open"
    records = S.create_view(
        actor=cast.owner, name="y", list_key="records:incident", query="priority=1&date_from=2026-01-01&zz=1"
    )
    assert records.query == "date_from=2026-01-01&priority=1"
    assert S.url_of(records) == "/records/incident/?date_from=2026-01-01&priority=1"


def test_changes_conflict_and_are_in_the_history(cast):
    view = S.create_view(actor=cast.owner, name="x", list_key="register")
    S.update_view(view, actor=cast.owner, name="y", expected_version=1)
    with pytest.raises(ConflictError):
        S.update_view(view, actor=cast.owner, name="z", expected_version=1)
    actions = list(
        AuditEntry.objects.filter(content_type__model="savedview")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["create", "update"]


def test_saved_from_the_page_and_found_in_the_sidebar(cast, desk):
    client = Client()
    client.force_login(cast.owner)
    response = client.post(
        "/views/",
        {
            "name": "Network items",
            "list_key": "register",
            "query": "service=2&status=all",
            "shared": "on",
            "next": "/register/",
        },
    )
    view = SavedView.objects.get()
    assert (
        response.status_code == 302
        and response["Location"] == f"/register/?service=2&status=all&view={view.pk}"
    )
    page = client.get(response["Location"]).content.decode()
    assert "Network items" in page and f'href="/views/{view.pk}/"' in page and 'aria-current="page"' in page
    other = Client()
    other.force_login(cast.contributor)  # a team-mate
    assert "Network items" in other.get("/records/incident/").content.decode()
    assert other.get(f"/views/{view.pk}/").status_code == 302
    assert other.post(f"/views/{view.pk}/delete/").status_code == 403
    stranger = Client()
    stranger.force_login(cast.manager)
    assert stranger.get(f"/views/{view.pk}/").status_code == 404
    assert client.post(f"/views/{view.pk}/delete/", {"next": "/register/"}).status_code == 302
    assert not SavedView.objects.exists()


def test_the_api_lists_creates_changes_and_removes(cast, desk):
    _, raw = ApiToken.issue(cast.viewer, "t")  # viewers save their own views too
    auth = {"Authorization": f"Bearer {raw}"}
    created = Client().post(
        "/api/views",
        {"name": "Open problems", "list_key": "records:problem", "query": "status=open"},
        content_type="application/json",
        headers=auth,
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["url"] == "/records/problem/?status=open" and body["mine"] and not body["shared"]
    patched = Client().patch(
        f"/api/views/{body['id']}",
        {"name": "Problems", "expected_version": 1},
        content_type="application/json",
        headers=auth,
    )
    assert patched.status_code == 200 and patched.json()["version"] == 2
    shared = S.create_view(actor=cast.owner, name="Team", list_key="register", shared=True)
    _, mate = ApiToken.issue(cast.contributor, "t")
    mate_auth = {"Authorization": f"Bearer {mate}"}
    listed = Client().get("/api/views", headers=mate_auth).json()
    assert [(v["name"], v["mine"]) for v in listed] == [("Team", False)]
    refused = Client().patch(
        f"/api/views/{shared.pk}", {"name": "x"}, content_type="application/json", headers=mate_auth
    )
    assert refused.status_code == 403
    assert Client().delete(f"/api/views/{body['id']}", headers=mate_auth).status_code == 404
    assert Client().delete(f"/api/views/{body['id']}", headers=auth).status_code == 204
