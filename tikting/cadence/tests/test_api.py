"""The cadence API: a sprint planned, worked and reviewed over HTTP with a token, the same rules
as the pages (scope warning, 409 on a stale version, the logger is the caller), and capacity."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from tikting.accounts.models import ApiToken
from tikting.cadence.models import SprintStatus, TimeLog
from tikting.improvement import services as S

pytestmark = pytest.mark.django_db

BASE = "/api/cadence"
TODAY = timezone.localdate()


def api(user) -> Client:
    _, raw = ApiToken.issue(user, "script")
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def test_a_sprint_over_the_api(cast, team, settings):
    settings.TIKTING_SPRINT_MAX_ITEMS = 1
    manager, member = api(cast.manager), api(cast.contributor)
    first, second = (S.create_item(actor=cast.contributor, title=f"Idea {n}") for n in range(2))
    body = {
        "team_id": team.pk,
        "name": "Desk 1",
        "goal": "Fewer calls",
        "start": (TODAY - dt.timedelta(days=2)).isoformat(),
        "end": (TODAY + dt.timedelta(days=11)).isoformat(),
    }
    response = manager.post(f"{BASE}/sprints", body, content_type="application/json")
    assert response.status_code == 201, response.content
    sprint = response.json()
    assert member.post(f"{BASE}/sprints", body, content_type="application/json").status_code == 403
    url = f"{BASE}/sprints/{sprint['id']}"
    assert (
        manager.post(
            f"{url}/items", {"item_id": first.pk, "planned_hours": "4"}, content_type="application/json"
        ).status_code
        == 201
    )
    response = manager.post(f"{url}/items", {"item_id": second.pk}, content_type="application/json")
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "over_scope_reason"
    assert (
        manager.post(
            f"{url}/items",
            {"item_id": second.pk, "over_scope_reason": "Same fix"},
            content_type="application/json",
        ).status_code
        == 201
    )
    started = manager.post(
        f"{url}/start", {"expected_version": sprint["version"] + 1}, content_type="application/json"
    )
    assert started.status_code == 200 and started.json()["status"] == SprintStatus.ACTIVE
    card = started.json()["cards"][0]
    moved = member.post(
        f"{BASE}/cards/{card['id']}/move",
        {"column": "done", "expected_version": card["version"]},
        content_type="application/json",
    )
    assert moved.status_code == 200
    stale = member.post(
        f"{BASE}/cards/{card['id']}/move",
        {"column": "doing", "expected_version": card["version"]},
        content_type="application/json",
    )
    assert stale.status_code == 409
    logged = member.post(f"{BASE}/cards/{card['id']}/time", {"hours": 2.5}, content_type="application/json")
    assert logged.status_code == 201 and logged.json()["user_id"] == cast.contributor.pk
    assert (
        member.post(
            f"{BASE}/cards/{card['id']}/time",
            {"hours": 1, "user_id": cast.owner.pk},
            content_type="application/json",
        ).status_code
        == 403
    )
    assert TimeLog.objects.get().hours == Decimal("2.5")
    cards = manager.get(url).json()["cards"]
    decisions = [{"card_id": c["id"], "decision": "continue", "disposition": "register"} for c in cards]
    reviewed = manager.post(
        f"{url}/review", {"what_changed": "Runbook", "decisions": decisions}, content_type="application/json"
    )
    assert reviewed.status_code == 200, reviewed.content
    assert reviewed.json()["status"] == SprintStatus.CLOSED
    assert [s["name"] for s in api(cast.viewer).get(f"{BASE}/sprints?team_id={team.pk}").json()] == ["Desk 1"]


def test_capacity_over_the_api_is_unrounded(cast, team):
    rows = api(cast.viewer).get(f"{BASE}/capacity?months=2").json()
    (desk,) = [r for r in rows if r["team"] == "Service desk"]
    assert len(desk["months"]) == 2 and desk["months"][1]["partial"].startswith("to ")
