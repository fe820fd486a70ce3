"""/api/docs reads as the app does: a link back to it, every metric by its name and unit beside the
key the API takes, each section of operations explained."""

import pytest

from tikting.metrics.definitions import DEFINITIONS

pytestmark = pytest.mark.django_db


def test_the_api_description_links_back_and_names_the_metrics(client):
    schema = client.get("/api/openapi.json").json()
    text = schema["info"]["description"]
    assert "[← Back to tikting](/register/)" in text
    assert "(/account/tokens/)" in text
    for key, definition in DEFINITIONS.items():
        assert f"| `{key}` | {definition.label} | {definition.unit} |" in text


def test_each_section_of_operations_is_explained(client):
    schema = client.get("/api/openapi.json").json()
    described = {tag["name"]: tag["description"] for tag in schema.get("tags", [])}
    used = {
        tag
        for operations in schema["paths"].values()
        for op in operations.values()
        for tag in op.get("tags", [])
    }
    for tag in {"items", "indicators", "actions", "governance", "metrics", "records", "tokens"}:
        assert tag in used and described.get(tag), tag
