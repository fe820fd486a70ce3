"""/api/discovery/: the figures, the CIs behind them, drifts, duplicates and runs; the actions with
their permissions and conflicts."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tikting.accounts.models import ApiToken
from tikting.cmdb.models import ConfigurationItem as CI
from tikting.discovery.models import Decision, DiscoveryRun, DriftItem, DuplicateCandidate
from tikting.discovery.reconcile import reconcile

from .factories import ci, obs, result

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    ci("srv-a", serial_number="A1", manufacturer="Dell", location="Room 1")
    ci("db-1", hostname="db")
    ci("db-2", hostname="db")
    return reconcile(
        result(
            obs(serial="A1", manufacturer="Dell", extra={"location": "Room 9"}),
            obs(hostname="pc-new", where="b"),
            obs(hostname="db", where="c"),
        ),
        source_name="agents",
    )


def bearer(user) -> Client:
    return Client(headers={"Authorization": f"Bearer {ApiToken.issue(user, 'test')[1]}"})


def post(client: Client, url: str, body: dict) -> Any:
    return client.post(url, body, content_type="application/json")


def test_every_reader_gets_the_figures_and_the_lists(cast, world):
    client = bearer(cast.viewer)
    health = client.get("/api/discovery/health").json()
    assert health["total"]["unregistered"] == 1 and health["total"]["duplicates"] == 1
    assert health["by_class"]["server"]["in_scope"] == 3
    assert health["coverage_pct"] == pytest.approx(100 * 2 / 3)
    cis = client.get("/api/discovery/cis", {"figure": "unregistered"}).json()
    assert cis["count"] == 1 and cis["items"][0]["name"] == "pc-new"
    assert client.get("/api/discovery/cis", {"ci_class": "spaceship"}).status_code == 422
    drifts = client.get("/api/discovery/drifts").json()
    assert drifts["items"][0]["discovered_value"] == "Room 9" and drifts["items"][0]["ci_source"] == "manual"
    pairs = client.get("/api/discovery/duplicates").json()
    assert pairs["items"][0]["reason"] == "rule:hostname"
    runs = client.get("/api/discovery/runs").json()
    assert runs["items"][0]["created_unregistered"] == 1
    assert client.get(f"/api/discovery/runs/{world.pk}").json()["source_name"] == "agents"


def test_managers_act_and_a_stale_version_conflicts(cast, world):
    device = CI.objects.get(name="pc-new")
    client = bearer(cast.manager)
    stale = post(client, f"/api/discovery/cis/{device.pk}/register", {"expected_version": device.version + 1})
    assert stale.status_code == 409 and stale.json()["current_version"] == device.version
    done = post(client, f"/api/discovery/cis/{device.pk}/register", {"ci_class": "workstation"})
    assert done.status_code == 200 and done.json()["status"] == "active"
    again = post(client, f"/api/discovery/cis/{device.pk}/register", {})
    assert again.status_code == 422
    drift = DriftItem.objects.get()
    assert post(client, f"/api/discovery/drifts/{drift.pk}/accept", {}).json()["location"] == "Room 9"
    pair = DuplicateCandidate.objects.get()
    kept = post(client, f"/api/discovery/duplicates/{pair.pk}/merge", {"keep": pair.other_id})
    assert kept.json()["id"] == pair.other_id
    pair.refresh_from_db()
    assert pair.status == Decision.MERGED


@pytest.mark.parametrize("role", ["viewer", "contributor", "owner"])
def test_others_may_not_act(cast, world, role):
    device = CI.objects.get(name="pc-new")
    response = post(bearer(getattr(cast, role)), f"/api/discovery/cis/{device.pk}/register", {})
    assert response.status_code == 403
    device.refresh_from_db()
    assert device.status == CI.Status.DISCOVERED


def test_unknown_fields_are_refused(cast, world):
    device = CI.objects.get(name="pc-new")
    response = post(bearer(cast.admin), f"/api/discovery/cis/{device.pk}/register", {"status": "active"})
    assert response.status_code == 422
    assert DiscoveryRun.objects.count() == 1
