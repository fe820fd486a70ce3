"""API bodies and parameters take JSON types as they are: 0 is not a date nor false, "4" is not 4,
true is not 1. Dates and times are ISO 8601 text. Every app's API alike (improvement, governance,
records, metrics, tokens); a wrong type is a 422 naming the field, and nothing is written."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.test import Client

from tikting.accounts.models import ApiToken
from tikting.governance.models import ReviewMeeting
from tikting.improvement.models import Item, Measurement
from tikting.incidents.models import Incident
from tikting.test import ready_item

pytestmark = pytest.mark.django_db


class Api:
    def __init__(self, user: Any) -> None:
        _, raw = ApiToken.issue(user, "tests")
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {raw}"}

    def send(self, method: str, url: str, body: Any) -> Any:
        return getattr(self.client, method)(
            url, json.dumps(body), content_type="application/json", headers=self.headers
        )

    def get(self, url: str, **params: Any) -> Any:
        return self.client.get(url, params, headers=self.headers)


def refused(response: Any, field: str) -> bool:
    assert response.status_code == 422, response.content
    return any(entry["field"] == field for entry in response.json()["detail"])


@pytest.fixture
def item(cast):
    return ready_item(cast)


@pytest.mark.parametrize("value", [0, 1735689600, "0", "1735689600", True])
def test_a_measurement_time_is_iso_text_not_a_number(cast, item, value):
    indicator = item.indicators.get()
    response = Api(cast.owner).send(
        "post", f"/api/indicators/{indicator.pk}/measurements", {"value": "7", "measured_at": value}
    )
    assert refused(response, "measured_at")
    assert not Measurement.objects.exists()


@pytest.mark.parametrize("value", [0, 1, "true", "yes", None])
def test_blocked_is_true_or_false_only(cast, item, value):
    response = Api(cast.owner).send("post", f"/api/items/{item.pk}/block", {"blocked": value, "blocker": "x"})
    assert refused(response, "blocked")
    item.refresh_from_db()
    assert not item.blocked


@pytest.mark.parametrize(
    "body,field",
    [
        ({"title": "x", "impact": "4"}, "impact"),
        ({"title": "x", "impact": 4.0}, "impact"),
        ({"title": "x", "effort": True}, "effort"),
        ({"title": "x", "target_date": 0}, "target_date"),
        ({"title": "x", "service": "1"}, "service"),
        ({"title": 5}, "title"),
    ],
)
def test_item_fields_take_their_json_type(cast, body, field):
    assert refused(Api(cast.contributor).send("post", "/api/items", body), field)
    assert not Item.objects.exists()


def test_the_right_types_are_still_taken(cast, item):
    api = Api(cast.owner)
    indicator = item.indicators.get()
    response = api.send(
        "post",
        f"/api/indicators/{indicator.pk}/measurements",
        {"value": 7.5, "measured_at": "2026-12-01T09:00:00Z"},
    )
    assert response.status_code == 201, response.content
    response = api.send("post", f"/api/items/{item.pk}/block", {"blocked": True, "blocker": "Waiting"})
    assert response.status_code == 200
    body = {"title": "Typed", "impact": 4, "target_date": "2027-01-31", "service": cast.email.pk}
    assert Api(cast.contributor).send("post", "/api/items", body).status_code == 201


@pytest.mark.parametrize("value", [0, "0", 20261231, False])
def test_a_review_date_is_iso_text(cast, value):
    response = Api(cast.manager).send("post", "/api/governance/reviews", {"scheduled_for": value})
    assert refused(response, "scheduled_for")
    assert not ReviewMeeting.objects.exists()


@pytest.mark.parametrize("param", ["start", "end"])
def test_a_dashboard_window_is_iso_dates(cast, param):
    response = Api(cast.viewer).get("/api/governance/practice-metrics", **{param: "0"})
    assert refused(response, param)
    assert (
        Api(cast.viewer).get("/api/governance/practice-metrics", **{param: "2026-01-01"}).status_code == 200
    )


@pytest.mark.parametrize(
    "field,value",
    [
        ("major", 0),
        ("major", "true"),
        ("priority", "2"),
        ("priority", True),
        ("opened_at", 0),
        ("opened_at", 1735689600),
        ("service", "1"),
        ("short_description", 5),
    ],
)
def test_record_fields_take_their_json_type(cast, field, value):
    body = {"number": "INC1", "opened_at": "2026-12-01T09:00:00Z", field: value}
    if field == "service":
        body[field] = str(cast.email.pk)
    response = Api(cast.contributor).send("post", "/api/records/incident", body)
    assert refused(response, field)
    assert not Incident.objects.exists()


def test_a_record_with_the_right_types_is_created(cast):
    body = {
        "number": "INC1",
        "opened_at": "2026-12-01T09:00:00Z",
        "major": True,
        "priority": 2,
        "service": cast.email.pk,
        "short_description": "Mail down",
    }
    assert Api(cast.contributor).send("post", "/api/records/incident", body).status_code == 201


# --- Every JSON body of the API, from its OpenAPI schema: a guard for bodies added later ----------

WRONG = {"integer": ["1", 1.5, True], "boolean": [0, "true"], "date": [0, "0"], "date-time": [0, "0"]}


def _resolve(spec: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in spec:
        return _resolve(components[spec["$ref"].rsplit("/", 1)[1]], components)
    options = [o for o in spec.get("anyOf", []) if o.get("type") != "null"]
    return _resolve(options[0], components) if len(options) == 1 else spec


def _typed_properties(path: str, operation: dict[str, Any], components: dict[str, Any]):
    body = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if not body:
        return
    schema = _resolve(body["schema"], components)
    for name, spec in schema.get("properties", {}).items():
        spec = _resolve(spec, components)
        kind = spec.get("format") if spec.get("format") in {"date", "date-time"} else spec.get("type")
        for value in WRONG.get(kind, []):
            yield name, value


def test_every_json_body_refuses_values_of_the_wrong_type(cast):
    schema = Client().get("/api/openapi.json").json()
    components = schema["components"]["schemas"]
    api = Api(cast.admin)
    checked = []
    for path, operations in schema["paths"].items():
        url = re.sub(r"\{[^}]+\}", "1", path)
        for method, operation in operations.items():
            for name, value in _typed_properties(path, operation, components):
                response = api.send(method, url, {name: value})
                assert response.status_code == 422, f"{method.upper()} {path} {name}={value!r}"
                fields = {entry["field"] for entry in response.json()["detail"]}
                assert name in fields, f"{method.upper()} {path} {name}={value!r}: {fields}"
                checked.append((path, name))
    assert len({path for path, _name in checked}) > 15  # the register, governance, … bodies


def test_open_api_documents_422_on_every_operation(client):
    schema = client.get("/api/openapi.json").json()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert "422" in operation["responses"], f"{method.upper()} {path}"
