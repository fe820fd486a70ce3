"""The register API: authentication, permissions per role, validation, conflicts, lists, lifecycle."""

import datetime as dt
import json
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from tikting.accounts.models import ApiToken
from tikting.core.models import StatusChange
from tikting.improvement import services as S
from tikting.improvement.models import Item
from tikting.test import ready_item

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate


class Api:
    """A JSON client acting as one user with a bearer token (or as nobody)."""

    def __init__(self, user=None, raw: str | None = None):
        self.client = Client()
        self.headers = {}
        if user is not None and raw is None:
            _, raw = ApiToken.issue(user, "tests")
        if raw:
            self.headers["Authorization"] = f"Bearer {raw}"

    def _send(self, method, path, data=None, **params):
        kwargs: dict[str, Any] = {"headers": self.headers}
        if data is not None:
            kwargs.update(data=json.dumps(data, default=str), content_type="application/json")
        if method == "get":
            return self.client.get(f"/api{path}", params, headers=self.headers)
        return getattr(self.client, method)(f"/api{path}", **kwargs)

    def get(self, path, **params):
        return self._send("get", path, **params)

    def post(self, path, data=None):
        return self._send("post", path, data if data is not None else {})

    def patch(self, path, data):
        return self._send("patch", path, data)

    def delete(self, path):
        return self._send("delete", path)


def fields(response) -> set:
    return {error["field"] for error in response.json()["detail"]}


@pytest.fixture
def as_(cast):
    """as_("manager") → an Api client acting as that persona."""
    clients = {}

    def _as(name):
        if name not in clients:
            clients[name] = Api(getattr(cast, name))
        return clients[name]

    return _as


@pytest.fixture
def new_item(cast):
    return S.create_item(actor=cast.contributor, title="Fewer password resets", practice="service_desk")


# --- Authentication -----------------------------------------------------------------------------


class TestAuthentication:
    def test_it_refuses_anonymous_reads_and_writes_with_401(self, cast, new_item):
        anonymous = Api()
        assert anonymous.get("/items").status_code == 401
        assert anonymous.get(f"/items/{new_item.pk}").status_code == 401
        assert anonymous.post("/items", {"title": "x"}).status_code == 401
        assert anonymous.post(f"/items/{new_item.pk}/comments", {"body": "x"}).status_code == 401
        assert anonymous.get("/tokens").json() == {"detail": "Unauthorized"}

    def test_it_refuses_a_revoked_token_with_401(self, cast):
        token, raw = ApiToken.issue(cast.manager, "old script")
        assert Api(raw=raw).get("/items").status_code == 200
        token.revoked_at = timezone.now()
        token.save()
        assert Api(raw=raw).get("/items").status_code == 401

    def test_it_refuses_an_unknown_or_malformed_token(self, cast):
        assert Api(raw="tkt_not-a-real-token").get("/items").status_code == 401
        client = Client()
        assert client.get("/api/items", headers={"Authorization": "Token abc"}).status_code == 401

    def test_it_refuses_the_token_of_a_deactivated_user(self, cast):
        _, raw = ApiToken.issue(cast.owner, "script")
        cast.owner.is_active = False
        cast.owner.save()
        assert Api(raw=raw).get("/items").status_code == 401

    def test_it_records_when_a_token_was_last_used(self, cast):
        token, raw = ApiToken.issue(cast.viewer, "script")
        Api(raw=raw).get("/items")
        token.refresh_from_db()
        assert token.last_used_at is not None


class TestSessionAuthentication:
    def test_it_reads_with_the_browser_session(self, cast, client):
        client.force_login(cast.viewer)
        assert client.get("/api/items").status_code == 200

    def test_it_refuses_a_session_post_without_the_csrf_token(self, cast):
        client = Client(enforce_csrf_checks=True)
        client.force_login(cast.contributor)
        response = client.post("/api/items", {"title": "No CSRF"}, content_type="application/json")
        assert response.status_code == 403
        assert "CSRF" in response.json()["detail"]
        assert not Item.objects.filter(title="No CSRF").exists()

    def test_it_accepts_a_session_post_with_the_csrf_token(self, cast):
        client = Client(enforce_csrf_checks=True)
        client.force_login(cast.contributor)
        client.get("/api/docs")  # sets the CSRF cookie, as any page does
        csrf = client.cookies["csrftoken"].value
        response = client.post(
            "/api/items",
            {"title": "With CSRF"},
            content_type="application/json",
            headers={"X-CSRFToken": csrf},
        )
        assert response.status_code == 201, response.content

    def test_a_bearer_token_needs_no_csrf_token(self, cast):
        _, raw = ApiToken.issue(cast.contributor, "script")
        client = Client(enforce_csrf_checks=True)
        response = client.post(
            "/api/items",
            {"title": "Scripted"},
            content_type="application/json",
            headers={"Authorization": f"Bearer {raw}"},
        )
        assert response.status_code == 201


# --- Permissions per role -----------------------------------------------------------------------


class TestViewer:
    def test_it_reads_everything(self, as_, new_item):
        viewer = as_("viewer")
        assert viewer.get("/items").json()["count"] == 1
        assert viewer.get(f"/items/{new_item.pk}").status_code == 200
        assert viewer.get(f"/items/{new_item.pk}/history").status_code == 200
        assert viewer.get(f"/items/{new_item.pk}/comments").status_code == 200

    def test_it_may_not_write(self, as_, cast, new_item):
        viewer = as_("viewer")
        pk = new_item.pk
        writes = [
            viewer.post("/items", {"title": "Nope"}),
            viewer.patch(f"/items/{pk}", {"title": "Nope", "expected_version": new_item.version}),
            viewer.post(f"/items/{pk}/assess", {"decision": "accept"}),
            viewer.post(f"/items/{pk}/comments", {"body": "Nope"}),
            viewer.post("/items/rank", {"ids": [pk]}),
            viewer.post(f"/items/{pk}/indicators", {"name": "MTTR"}),
            viewer.post(f"/items/{pk}/actions", {"title": "Nope"}),
            viewer.post(f"/items/{pk}/block", {"blocked": True, "blocker": "x"}),
            viewer.post(f"/items/{pk}/escalate", {"note": "x"}),
        ]
        assert [r.status_code for r in writes] == [403] * len(writes)
        assert writes[0].json()["detail"].startswith("You may not")


class TestContributor:
    def test_it_submits_an_item(self, as_, cast):
        response = as_("contributor").post(
            "/items",
            {"title": "Self-service password reset", "practice": "service_desk", "service": cast.email.pk},
        )
        assert response.status_code == 201
        body = response.json()
        assert body["status"] == "new"
        assert body["submitted_by"]["username"] == cast.contributor.username
        assert body["service"] == {"id": cast.email.pk, "name": "E-mail"}
        assert body["version"] == 1

    def test_it_comments(self, as_, new_item):
        response = as_("contributor").post(f"/items/{new_item.pk}/comments", {"body": "Happens daily"})
        assert response.status_code == 201
        assert response.json()["body"] == "Happens daily"
        assert len(as_("viewer").get(f"/items/{new_item.pk}/comments").json()) == 1

    def test_it_may_not_assess(self, as_, new_item):
        response = as_("contributor").post(f"/items/{new_item.pk}/assess", {"decision": "accept"})
        assert response.status_code == 403

    def test_it_may_not_assign_an_owner(self, as_, cast):
        response = as_("contributor").post("/items", {"title": "Mine", "owner": cast.owner.pk})
        assert response.status_code == 403

    def test_it_edits_its_own_item_until_assessed(self, as_, new_item):
        response = as_("contributor").patch(
            f"/items/{new_item.pk}", {"description": "More detail", "expected_version": 1}
        )
        assert response.status_code == 200
        assert response.json()["description"] == "More detail"
        assert response.json()["version"] == 2


class TestOwner:
    def test_it_drives_its_own_item(self, as_, cast):
        item = ready_item(cast)
        response = as_("owner").post(f"/items/{item.pk}/transition", {"to": "action"})
        assert response.status_code == 200, response.content
        assert response.json()["status"] == "action"

    def test_it_may_not_drive_someone_elses_item(self, as_, cast):
        item = ready_item(cast)
        other = as_("other_owner")
        assert other.post(f"/items/{item.pk}/transition", {"to": "action"}).status_code == 403
        assert other.post(f"/items/{item.pk}/actions", {"title": "Sneaky"}).status_code == 403
        indicator = item.indicators.get()
        assert other.post(f"/indicators/{indicator.pk}/measurements", {"value": 5}).status_code == 403

    def test_it_may_not_assess_or_rank(self, as_, new_item):
        owner = as_("owner")
        assert owner.post(f"/items/{new_item.pk}/assess", {"decision": "accept"}).status_code == 403
        assert owner.post("/items/rank", {"ids": [new_item.pk]}).status_code == 403


class TestManager:
    def test_it_accepts_an_item_with_an_owner(self, as_, cast, new_item):
        response = as_("manager").post(
            f"/items/{new_item.pk}/assess", {"decision": "accept", "owner": cast.owner.pk}
        )
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "vision"
        assert body["owner"]["id"] == cast.owner.pk
        assert body["assessed_by"]["id"] == cast.manager.pk

    def test_it_defers_with_reason_and_revisit_date(self, as_, new_item):
        revisit = TODAY() + dt.timedelta(days=30)
        response = as_("manager").post(
            f"/items/{new_item.pk}/assess",
            {"decision": "defer", "reason": "After the migration", "revisit_date": revisit.isoformat()},
        )
        assert response.status_code == 200
        assert response.json()["revisit_date"] == revisit.isoformat()

    def test_it_ranks_the_backlog(self, as_, cast):
        first = S.create_item(actor=cast.contributor, title="First")
        second = S.create_item(actor=cast.contributor, title="Second")
        response = as_("manager").post("/items/rank", {"ids": [second.pk, first.pk]})
        assert response.status_code == 200
        assert response.json() == {"changed": 2}
        listed = as_("viewer").get("/items", sort="rank").json()["items"]
        assert [i["id"] for i in listed] == [second.pk, first.pk]

    def test_it_reopens_a_rejected_item(self, as_, new_item):
        manager = as_("manager")
        manager.post(f"/items/{new_item.pk}/assess", {"decision": "reject", "reason": "Duplicate"})
        response = manager.post(f"/items/{new_item.pk}/reopen", {"reason": "Not a duplicate after all"})
        assert response.status_code == 200
        assert response.json()["status"] == "new"

    def test_ranking_an_unknown_item_names_the_field(self, as_, new_item):
        response = as_("manager").post("/items/rank", {"ids": [new_item.pk, 999999]})
        assert response.status_code == 422
        assert fields(response) == {"ids"}


# --- Validation and conflicts -------------------------------------------------------------------


class TestValidation:
    def test_deferring_without_reason_names_the_field(self, as_, new_item):
        response = as_("manager").post(f"/items/{new_item.pk}/assess", {"decision": "defer"})
        assert response.status_code == 422
        assert {"reason", "revisit_date"} <= fields(response)
        messages = {e["field"]: e["message"] for e in response.json()["detail"]}
        assert "reason" in messages["reason"].lower()

    def test_a_missing_required_field_is_a_schema_error_with_its_location(self, as_):
        response = as_("contributor").post("/items", {"description": "no title"})
        assert response.status_code == 422
        error = response.json()["detail"][0]
        assert error["field"] == "title"
        assert error["loc"][-1] == "title"

    def test_an_unknown_field_is_refused(self, as_):
        response = as_("contributor").post("/items", {"title": "x", "titel": "typo"})
        assert response.status_code == 422
        assert "titel" in fields(response)

    def test_a_bad_choice_names_the_field(self, as_):
        response = as_("contributor").post("/items", {"title": "x", "practice": "astrology"})
        assert response.status_code == 422
        assert fields(response) == {"practice"}

    def test_an_unknown_service_names_the_field(self, as_):
        response = as_("contributor").post("/items", {"title": "x", "service": 424242})
        assert response.status_code == 422
        assert fields(response) == {"service"}

    def test_a_missing_precondition_says_what_is_missing(self, as_, cast, new_item):
        S.assess_item(new_item, actor=cast.manager, decision="accept", owner=cast.owner)
        response = as_("owner").post(f"/items/{new_item.pk}/transition", {"to": "current_state"})
        assert response.status_code == 422
        [error] = response.json()["detail"]
        assert error["field"] == "status"
        assert "vision" in error["message"]

    def test_a_measurement_in_the_future_names_the_field(self, as_, cast):
        item = ready_item(cast)
        indicator = item.indicators.get()
        later = (timezone.now() + dt.timedelta(days=2)).isoformat()
        response = as_("owner").post(
            f"/indicators/{indicator.pk}/measurements", {"value": 3, "measured_at": later}
        )
        assert response.status_code == 422
        assert fields(response) == {"measured_at"}

    def test_a_too_long_title_names_the_field(self, as_):
        response = as_("contributor").post("/items", {"title": "x" * 201})
        assert response.status_code == 422
        assert fields(response) == {"title"}

    def test_a_missing_item_is_404(self, as_):
        response = as_("viewer").get("/items/999999")
        assert response.status_code == 404
        assert response.json() == {"detail": "No Item matches the given query."}  # says what is missing


class TestConflicts:
    def test_a_stale_expected_version_is_409_with_the_current_version(self, as_, new_item):
        contributor = as_("contributor")
        assert (
            contributor.patch(f"/items/{new_item.pk}", {"title": "First", "expected_version": 1}).status_code
            == 200
        )
        response = contributor.patch(f"/items/{new_item.pk}", {"title": "Second", "expected_version": 1})
        assert response.status_code == 409
        body = response.json()
        assert body["current_version"] == 2
        assert body["expected_version"] == 1
        new_item.refresh_from_db()
        assert new_item.title == "First"  # nothing overwritten

    def test_patch_requires_expected_version(self, as_, new_item):
        response = as_("contributor").patch(f"/items/{new_item.pk}", {"title": "Blind write"})
        assert response.status_code == 422
        assert fields(response) == {"expected_version"}

    def test_a_stale_indicator_version_is_409(self, as_, cast):
        item = ready_item(cast)
        indicator = item.indicators.get()
        owner = as_("owner")
        path = f"/indicators/{indicator.pk}"
        assert (
            owner.patch(path, {"target_value": "5", "expected_version": indicator.version}).status_code == 200
        )
        response = owner.patch(path, {"target_value": "4", "expected_version": indicator.version})
        assert response.status_code == 409
        assert response.json()["current_version"] == indicator.version + 1


# --- Lists --------------------------------------------------------------------------------------


class TestList:
    def test_it_pages_with_limit_offset_and_count(self, as_, cast):
        for n in range(5):
            S.create_item(actor=cast.contributor, title=f"Item {n}")
        body = as_("viewer").get("/items", limit=2, offset=2, sort="ref").json()
        assert body["count"] == 5
        assert [i["title"] for i in body["items"]] == ["Item 2", "Item 3"]

    def test_it_filters_like_the_register(self, as_, cast):
        incident = S.create_item(actor=cast.contributor, title="Incident thing", practice="incident")
        S.create_item(actor=cast.contributor, title="Change thing", practice="change")
        accepted = S.create_item(actor=cast.contributor, title="Accepted", practice="incident")
        S.assess_item(accepted, actor=cast.manager, decision="accept", owner=cast.owner)
        viewer = as_("viewer")

        def ids(**params):
            return {i["id"] for i in viewer.get("/items", **params).json()["items"]}

        assert ids(practice="incident") == {incident.pk, accepted.pk}
        assert ids(practice="incident", status="new") == {incident.pk}
        assert ids(status=["vision", "closed"]) == {accepted.pk}
        assert ids(status="active") == {accepted.pk}
        assert ids(q="change") == {i.pk for i in Item.objects.filter(title="Change thing")}
        assert ids(owner=str(cast.owner.pk)) == {accepted.pk}
        assert ids(quadrant="major_project") == {i.pk for i in Item.objects.all()}
        assert as_("owner").get("/items", owner="me").json()["count"] == 1

    def test_an_invalid_filter_value_names_the_filter(self, as_):
        viewer = as_("viewer")
        for name, value in [
            ("status", "bogus"),
            ("practice", "astrology"),
            ("flag", "sleepy"),
            ("owner", "x"),
        ]:
            response = viewer.get("/items", **{name: value})
            assert response.status_code == 422, name
            assert fields(response) == {name}

    def test_an_invalid_sort_names_the_parameter(self, as_):
        response = as_("viewer").get("/items", sort="colour")
        assert response.status_code == 422
        assert fields(response) == {"sort"}

    def test_every_sort_works_both_ways(self, as_, new_item):
        from tikting.improvement.filtersets import SORTS

        viewer = as_("viewer")
        for key in SORTS:
            for sort in (key, f"-{key}"):
                assert viewer.get("/items", sort=sort).status_code == 200, sort

    def test_it_lists_in_a_constant_number_of_queries(self, as_, cast, django_assert_max_num_queries):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        viewer = as_("viewer")
        S.create_item(actor=cast.contributor, title="One", service=cast.email, owner=None)
        viewer.get("/items")  # the token's first use this minute writes its last-used stamp
        with CaptureQueriesContext(connection) as few:
            viewer.get("/items")
        for n in range(15):
            item = S.create_item(actor=cast.contributor, title=f"More {n}", service=cast.network)
            S.assess_item(item, actor=cast.manager, decision="accept", owner=cast.owner)
        with CaptureQueriesContext(connection) as many:
            body = viewer.get("/items").json()
        assert body["count"] == 16
        assert len(many) == len(few)


class TestLookups:
    def test_choices_let_a_client_build_forms(self, as_):
        body = as_("viewer").get("/choices").json()
        assert {"value": "quick_win", "label": "Quick win"} in body["quadrants"]
        assert body["transitions"]["plan"] == ["target_state", "action"]
        assert "time_saved" in {c["value"] for c in body["benefit_categories"]}
        assert "measurement_due" in body["flags"]

    def test_services_and_users(self, as_, cast):
        viewer = as_("viewer")
        assert [s["name"] for s in viewer.get("/services").json()] == ["E-mail", "Network"]
        users = {u["username"]: u for u in viewer.get("/users").json()}
        assert users["olga"] == {
            "id": cast.owner.pk,
            "username": "olga",
            "name": "Olga Owner",
            "role": "owner",
        }


# --- Children: indicators, measurements, actions ------------------------------------------------


class TestIndicatorsAndActions:
    def test_it_manages_indicators(self, as_, cast, new_item):
        S.assess_item(new_item, actor=cast.manager, decision="accept", owner=cast.owner)
        owner = as_("owner")
        response = owner.post(
            f"/items/{new_item.pk}/indicators",
            {"name": "Resets per week", "direction": "lower", "baseline_value": "120.5", "target_value": 60},
        )
        assert response.status_code == 201, response.content
        indicator = response.json()
        assert indicator["baseline_value"] == "120.5"  # decimals are strings
        assert indicator["target_value"] == "60"
        assert indicator["baseline_method"] == "manual"
        assert len(owner.get(f"/items/{new_item.pk}/indicators").json()) == 1
        response = owner.delete(f"/indicators/{indicator['id']}")
        assert response.status_code == 204
        assert owner.get(f"/indicators/{indicator['id']}").status_code == 404

    def test_it_manages_actions(self, as_, cast):
        item = ready_item(cast)
        owner = as_("owner")
        due = (TODAY() + dt.timedelta(days=5)).isoformat()
        response = owner.post(f"/items/{item.pk}/actions", {"title": "Train agents", "due_date": due})
        assert response.status_code == 201
        action = response.json()
        response = owner.patch(
            f"/actions/{action['id']}", {"done": True, "expected_version": action["version"]}
        )
        assert response.status_code == 200
        assert response.json()["done"] is True
        assert response.json()["done_at"] is not None
        assert owner.delete(f"/actions/{action['id']}").status_code == 204
        assert [a["title"] for a in owner.get(f"/items/{item.pk}/actions").json()] == ["Write runbook"]

    def test_measurements_are_listed_oldest_first(self, as_, cast):
        item = ready_item(cast)
        indicator = item.indicators.get()
        owner = as_("owner")
        earlier = (timezone.now() - dt.timedelta(days=3)).isoformat()
        owner.post(f"/indicators/{indicator.pk}/measurements", {"value": "8"})
        owner.post(f"/indicators/{indicator.pk}/measurements", {"value": 9, "measured_at": earlier})
        body = owner.get(f"/indicators/{indicator.pk}/measurements").json()
        assert body["count"] == 2
        assert [m["value"] for m in body["items"]] == ["9", "8"]
        assert owner.get(f"/indicators/{indicator.pk}").json()["latest_value"] == "8"

    def test_a_naive_measurement_time_is_read_in_the_server_time_zone(self, as_, cast):
        item = ready_item(cast)
        indicator = item.indicators.get()
        response = as_("owner").post(
            f"/indicators/{indicator.pk}/measurements", {"value": 7, "measured_at": "2024-01-02T03:04:05"}
        )
        assert response.status_code == 201
        assert response.json()["measured_at"].startswith("2024-01-02T03:04:05")


# --- The whole journey --------------------------------------------------------------------------


class TestLifecycle:
    def test_an_item_goes_from_submission_to_closure_through_the_api(self, as_, cast):
        contributor, manager, owner = as_("contributor"), as_("manager"), as_("owner")

        item = contributor.post(
            "/items", {"title": "Cut e-mail MTTR", "practice": "incident", "impact": 4}
        ).json()
        pk = item["id"]
        item = manager.post(f"/items/{pk}/assess", {"decision": "accept", "owner": cast.owner.pk}).json()
        assert item["status"] == "vision"
        assert {g["key"] for g in item["readiness_gaps"]} == {"target_date", "baseline", "target"}

        target = (TODAY() + dt.timedelta(days=60)).isoformat()
        item = owner.patch(
            f"/items/{pk}",
            {
                "vision": "Staff can rely on e-mail",
                "target_date": target,
                "expected_version": item["version"],
            },
        ).json()
        indicator = owner.post(
            f"/items/{pk}/indicators", {"name": "MTTR", "unit": "h", "baseline_value": 10, "target_value": 6}
        ).json()
        for step in ("current_state", "target_state", "plan"):
            response = owner.post(f"/items/{pk}/transition", {"to": step})
            assert response.status_code == 200, response.content
        item = response.json()
        assert item["readiness_gaps"] == []
        assert item["transitions"][1]["to"] == "action"
        assert [g["key"] for g in item["transitions"][1]["gaps"]] == ["planned_action"]

        due = (timezone.localdate() + dt.timedelta(days=10)).isoformat()
        action = owner.post(
            f"/items/{pk}/actions", {"title": "Write runbook", "owner": cast.owner.pk, "due_date": due}
        ).json()
        assert owner.post(f"/items/{pk}/transition", {"to": "action"}).status_code == 200
        assert owner.post(f"/indicators/{indicator['id']}/measurements", {"value": "5.5"}).status_code == 201
        done = owner.patch(f"/actions/{action['id']}", {"done": True, "expected_version": 1})
        assert done.status_code == 200
        assert owner.post(f"/items/{pk}/transition", {"to": "evaluation"}).status_code == 200
        item = owner.post(f"/items/{pk}/evaluate", {"note": "Below target"}).json()
        assert item["evaluation_result"] == "achieved"
        assert item["realised_delta"] == "-4.5"
        assert owner.post(f"/items/{pk}/transition", {"to": "momentum"}).status_code == 200

        response = owner.post(
            f"/items/{pk}/close",
            {
                "outcome": "successful",
                "benefit_category": "time_saved",
                "lessons": "Runbooks pay off",
                "follow_ups": [{"title": "Same for the VPN", "service": cast.network.pk}],
            },
        )
        assert response.status_code == 200, response.content
        item = response.json()
        assert item["status"] == "closed"
        assert item["sustainment"] == "holding"
        [child] = item["children"]
        assert child["title"] == "Same for the VPN"
        assert as_("viewer").get("/items", parent=str(pk)).json()["count"] == 1

        history = owner.get(f"/items/{pk}/history", limit=100).json()
        statuses = [c["new"] for row in history["items"] for c in row["changes"] if c["field"] == "status"]
        assert statuses[0] == "closed"  # newest first
        assert "vision" in statuses
        assessed = next(r for r in history["items"] if r["message"] == "Assessed: accept")
        assert assessed["actor"]["username"] == cast.manager.username
        assert {"field": "status", "old": "new", "new": "vision"} in assessed["changes"]
        assert (
            StatusChange.objects.filter(object_id=str(pk)).count() == 9
        )  # submitted, accepted, six steps, closed

    def test_block_escalate_and_withdraw(self, as_, cast):
        item = ready_item(cast)
        owner = as_("owner")
        response = owner.post(f"/items/{item.pk}/block", {"blocked": True})
        assert response.status_code == 422
        assert fields(response) == {"blocker"}
        body = owner.post(f"/items/{item.pk}/block", {"blocked": True, "blocker": "Vendor"}).json()
        assert body["blocked"] is True
        assert "blocked" in body["flags"]
        body = owner.post(f"/items/{item.pk}/escalate", {"note": "Need budget"}).json()
        assert body["escalated_at"] is not None
        kinds = [c["kind"] for c in owner.get(f"/items/{item.pk}/comments").json()]
        assert kinds == ["escalation"]
        response = owner.post(f"/items/{item.pk}/close", {"outcome": "withdrawn"})
        assert response.status_code == 422
        assert fields(response) == {"lessons", "status"}  # and blocked, with an open action
        owner.post(f"/items/{item.pk}/block", {"blocked": False})
        owner.post(f"/actions/{item.actions.get().pk}/cancel", {"reason": "Vendor gone"})
        body = owner.post(
            f"/items/{item.pk}/close", {"outcome": "withdrawn", "lessons": "Vendor gone"}
        ).json()
        assert body["status"] == "closed"
        assert body["outcome"] == "withdrawn"


class TestDocs:
    def test_the_schema_is_served(self, client):
        response = client.get("/api/openapi.json")
        assert response.status_code == 200
        schema = response.json()
        assert "/api/items" in schema["paths"]
        assert schema["components"]["securitySchemes"]["TokenAuth"] == {"type": "http", "scheme": "bearer"}

    def test_the_docs_page_loads_nothing_from_a_cdn(self, client):
        response = client.get("/api/docs")
        assert response.status_code == 200
        html = response.content.decode()
        assert "/static/ninja/swagger-ui-bundle.js" in html
        assert "cdn" not in html.lower()
        assert "https://" not in html
