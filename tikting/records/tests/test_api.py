"""The records API: CRUD for every kind, filters, paging, history, 409 on a stale version, 422 naming
the field, permissions per role.

The module doubles as a URLconf: a NinjaAPI with the root API's authentication and error handlers
mounts the records router at /api/records/, so the tests run before tikting/api.py mounts it.
"""

import datetime as dt
import json

import pytest
from django.test import Client
from django.urls import URLResolver, include, path
from django.utils import timezone
from ninja import NinjaAPI

from tikting.accounts.models import ApiToken
from tikting.api import api as root_api
from tikting.incidents.models import Incident
from tikting.records import registry as R
from tikting.records.api import router
from tikting.urls import urlpatterns as project_urlpatterns

test_api = NinjaAPI(
    title="records (tests)", urls_namespace="records_test_api", auth=root_api.auth, docs_url=None
)
for _exc, _handler in root_api._exception_handlers.items():
    test_api.add_exception_handler(_exc, _handler)
test_api.add_router("/records/", router)

urlpatterns = [
    path("api/", test_api.urls),
    path("records/", include("tikting.records.urls")),
    *(p for p in project_urlpatterns if not (isinstance(p, URLResolver) and p.namespace == "records")),
]

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tikting.records.tests.test_api")]

NOW = timezone.now()


class Api:
    """A JSON client acting as one user with a bearer token (or as nobody)."""

    def __init__(self, user=None):
        self.client = Client()
        self.headers = {}
        if user is not None:
            _, raw = ApiToken.issue(user, "tests")
            self.headers["Authorization"] = f"Bearer {raw}"

    def get(self, path, **params):
        return self.client.get(f"/api/records{path}", params, headers=self.headers)

    def _send(self, method, path, data):
        return getattr(self.client, method)(
            f"/api/records{path}",
            data=json.dumps(data, default=str),
            content_type="application/json",
            headers=self.headers,
        )

    def post(self, path, data):
        return self._send("post", path, data)

    def patch(self, path, data):
        return self._send("patch", path, data)

    def delete(self, path):
        return self.client.delete(f"/api/records{path}", headers=self.headers)


def fields(response) -> set:
    return {error["field"] for error in response.json()["detail"]}


@pytest.fixture
def as_(cast):
    clients: dict = {}

    def _as(name):
        if name not in clients:
            clients[name] = Api(getattr(cast, name))
        return clients[name]

    return _as


@pytest.fixture
def incidents(cast):
    return [
        R.create_record(
            "incident",
            actor=None,
            number=f"INC{n}",
            short_description=text,
            opened_at=NOW - dt.timedelta(days=days),
            priority=priority,
            service=service,
        )
        for n, text, days, priority, service in (
            (1, "Mail bounces", 1, 2, cast.email),
            (2, "Router down", 40, 1, cast.network),
            (3, "Mailbox full", 2, 3, cast.email),
        )
    ]


class TestRead:
    def test_it_lists_with_filters_and_paging(self, as_, cast, incidents):
        api = as_("viewer")
        page = api.get("/incident")
        assert page.status_code == 200
        body = page.json()
        assert body["count"] == 3
        assert [r["number"] for r in body["items"]] == ["INC3", "INC2", "INC1"]
        assert body["items"][0]["service"] == cast.email.pk
        assert [
            r["number"] for r in api.get("/incident", service=cast.email.pk, q="mail").json()["items"]
        ] == [
            "INC3",
            "INC1",
        ]
        since = (NOW - dt.timedelta(days=10)).date().isoformat()
        assert api.get("/incident", date_from=since).json()["count"] == 2
        paged = api.get("/incident", limit=1, offset=1, sort="priority").json()
        assert paged["count"] == 3 and [r["number"] for r in paged["items"]] == ["INC1"]

    def test_a_bad_filter_is_a_422_naming_it(self, as_, incidents):
        response = as_("viewer").get("/incident", priority="9")
        assert response.status_code == 422
        assert fields(response) == {"priority"}

    def test_it_gets_one_record_with_its_history(self, as_, cast, incidents):
        record = incidents[0]
        R.update_record(record, actor=cast.contributor, expected_version=1, category="mail")
        body = as_("viewer").get(f"/incident/{record.pk}").json()
        assert body["number"] == "INC1" and body["version"] == 2
        assert body["history_url"] == f"/api/records/incident/{record.pk}/history"
        history = as_("viewer").get(f"/incident/{record.pk}/history").json()
        assert history[0]["action"] == "update"
        assert history[0]["actor"]["username"] == "carl"
        assert {"field": "category", "old": "", "new": "mail"} in history[0]["changes"]

    def test_every_kind_lists(self, as_, incidents):
        for slug in R.KINDS:
            assert as_("viewer").get(f"/{slug}").status_code == 200, slug

    def test_unknown_records_and_kinds(self, as_):
        missing = as_("viewer").get("/incident/424242")
        assert missing.status_code == 404
        assert missing.json() == {"detail": "No incident with id 424242."}  # what was not found
        assert as_("viewer").get("/nonsense").status_code == 422

    def test_fields_chooses_what_a_page_carries(self, as_, cast, incidents):
        api = as_("viewer")
        full = api.get("/incident", sort="number").json()["items"]
        few = api.get("/incident", sort="number", fields="short_description, priority,priority").json()
        assert few["count"] == 3
        assert [set(row) for row in few["items"]] == [
            {"id", "kind", "key", "url", "history_url", "short_description", "priority"}
        ] * 3
        for small, big in zip(few["items"], full, strict=True):
            assert small == {name: big[name] for name in small}
        assert [row["key"] for row in few["items"]] == ["INC1", "INC2", "INC3"]
        changes = api.get("/change", fields="title").json()
        assert changes["count"] == 0 and changes["items"] == []

    def test_an_unknown_field_is_a_422_naming_it(self, as_, incidents):
        response = as_("viewer").get("/incident", fields="short_description,colour")
        assert response.status_code == 422 and fields(response) == {"fields"}
        assert "'colour'" in response.json()["detail"][0]["message"]

    def test_a_page_and_a_record_read_in_fixed_queries(self, as_, cast, incidents):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        api = as_("viewer")
        api.get("/incident")  # the token's first use writes its last_used_at
        with CaptureQueriesContext(connection) as page:
            assert api.get("/incident", limit=2).status_code == 200
        with CaptureQueriesContext(connection) as one:
            assert api.get(f"/incident/{incidents[0].pk}").json()["number"] == "INC1"
        # the token with the address's failed sign-ins; then the page's rows (filters, order and
        # slice in one query) and its count; the record
        assert (len(page), len(one)) == (3, 2), [q["sql"][:80] for q in page.captured_queries]

    def test_it_refuses_anonymous_callers(self, incidents):
        assert Api().get("/incident").status_code == 401
        assert Api().post("/incident", {"number": "X"}).status_code == 401


class TestWrite:
    def test_a_contributor_creates_edits_and_a_manager_deletes(self, as_, cast):
        created = as_("contributor").post(
            "/incident",
            {"number": "INC9", "opened_at": "2026-02-01T10:00:00Z", "priority": 2, "service": cast.email.pk},
        )
        assert created.status_code == 201, created.content
        body = created.json()
        assert body["service"] == cast.email.pk and body["version"] == 1
        record_id = body["id"]
        patched = as_("contributor").patch(f"/incident/{record_id}", {"expected_version": 1, "priority": 1})
        assert patched.status_code == 200 and patched.json()["priority"] == 1
        assert as_("contributor").delete(f"/incident/{record_id}").status_code == 403
        assert as_("manager").delete(f"/incident/{record_id}").status_code == 204
        assert not Incident.objects.filter(pk=record_id).exists()

    def test_a_viewer_cannot_write(self, as_, incidents):
        pk = incidents[0].pk
        assert as_("viewer").post("/incident", {"number": "X", "opened_at": "2026-01-01"}).status_code == 403
        assert (
            as_("viewer").patch(f"/incident/{pk}", {"expected_version": 1, "category": "x"}).status_code
            == 403
        )
        assert as_("viewer").delete(f"/incident/{pk}").status_code == 403

    def test_invalid_values_are_a_422_naming_the_field(self, as_, cast):
        api = as_("contributor")
        bad = api.post("/incident", {"number": "INC9", "opened_at": "2026-02-01T10:00:00Z", "priority": 9})
        assert bad.status_code == 422 and fields(bad) == {"priority"}
        assert fields(api.post("/incident", {"number": "INC9", "opened_at": "2026-02-01", "raw": {}})) == {
            "raw"
        }
        assert fields(api.post("/incident", {"number": "INC9", "opened_at": "yesterday"})) == {"opened_at"}
        assert fields(
            api.post("/incident", {"number": "INC9", "opened_at": "2026-02-01", "service": 999})
        ) == {"service"}
        assert not Incident.objects.exists()

    def test_sla_verdicts_are_derived_never_written(self, as_, cast):
        from tikting.records.forms import form_fields

        api = as_("contributor")
        typed = {"number": "INC9", "opened_at": "2026-02-01T10:00:00Z", "resolution_met": True}
        assert fields(api.post("/incident", typed)) == {"resolution_met"}
        assert not set(R.SLA_DERIVED) & set(form_fields(R.KINDS["incident"]))
        assert not Incident.objects.exists()

    def test_a_stale_version_is_a_409_and_a_missing_one_a_422(self, as_, cast, incidents):
        record = incidents[0]
        api = as_("contributor")
        missing = api.patch(f"/incident/{record.pk}", {"category": "mail"})
        assert missing.status_code == 422 and fields(missing) == {"expected_version"}
        assert (
            api.patch(f"/incident/{record.pk}", {"expected_version": 1, "category": "mail"}).status_code
            == 200
        )
        stale = api.patch(f"/incident/{record.pk}", {"expected_version": 1, "category": "network"})
        assert stale.status_code == 409
        assert stale.json()["current_version"] == 2
        record.refresh_from_db()
        assert record.category == "mail"

    def test_an_edit_still_refuses_a_number_taken_and_a_missing_record(self, as_, cast, incidents):
        api = as_("contributor")
        taken = api.patch(f"/incident/{incidents[0].pk}", {"expected_version": 1, "number": "INC2"})
        assert taken.status_code == 422 and fields(taken) == {"number"}
        both = api.patch(
            f"/incident/{incidents[0].pk}", {"expected_version": 1, "number": "INC2", "priority": 9}
        )
        assert both.status_code == 422 and fields(both) == {"number", "priority"}
        same = api.patch(f"/incident/{incidents[0].pk}", {"expected_version": 1, "number": "INC1"})
        assert same.status_code == 200 and same.json()["version"] == 2
        assert api.patch("/incident/424242", {"expected_version": 1, "priority": 2}).status_code == 404
        assert sorted(Incident.objects.values_list("number", flat=True)) == ["INC1", "INC2", "INC3"]

    def test_kinds_without_a_version_edit_without_one(self, as_, cast):
        response = as_("admin").patch(f"/service/{cast.email.pk}", {"description": "Mail for all"})
        assert response.status_code == 200 and response.json()["description"] == "Mail for all"

    def test_many_to_many_fields_take_ids(self, as_, cast):
        ci = R.create_record("ci", actor=None, name="mx-01")
        created = as_("contributor").post(
            "/change",
            {"number": "CHG1", "title": "Patch", "opened_at": "2026-02-01", "affected_cis": [ci.pk]},
        )
        assert created.status_code == 201, created.content
        assert created.json()["affected_cis"] == [ci.pk]
        assert as_("viewer").get("/change").json()["items"][0]["affected_cis"] == [ci.pk]


def test_the_openapi_schema_documents_the_records_endpoints(client):
    schema = client.get("/api/openapi.json").json()
    paths = schema["paths"]
    assert "/api/records/{slug}" in paths and "/api/records/{slug}/{record_id}/history" in paths
    assert set(paths["/api/records/{slug}/{record_id}"]) == {"get", "patch", "delete"}
