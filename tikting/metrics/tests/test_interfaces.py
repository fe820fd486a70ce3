"""The command line, the API (per role) and the metrics page."""

import csv
import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tikting.accounts.models import ApiToken

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tikting.metrics.tests.urls")]


def run(*args) -> str:
    out = io.StringIO()
    call_command("metrics", *args, stdout=out)
    return out.getvalue()


def test_cli_list():
    out = run("list")
    assert "mttr " in out and "sla_resolution" in out and "csat_satisfied" in out


def test_cli_show_json(mttr_data):
    data = json.loads(run("show", "mttr", "--by", "month", "--format", "json"))
    assert data["metric"] == "mttr" and data["by"] == "month"
    assert [(p["label"], p["value"], p["count"]) for p in data["points"]] == [
        ("2024-01", 4.25, 4),
        ("2024-02", None, 0),
        ("2024-03", 11.5, 2),
    ]
    assert data["points"][0]["definition"].startswith("AVG(resolved_at")
    assert data["total"]["value"] == 6.67


def test_cli_show_filters_and_csv(mttr_data):
    out = run("show", "mttr", "--by", "priority", "--filter", "service=E-mail", "--format", "csv")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["key", "label", "value", "count", "median", "p90", "unresolved", "missing_timestamps"]
    assert rows[1] == ["2", "2 - High", "2.0", "3", "2.0", "2.8", "1", "0"]
    assert len(rows) == 2


def test_cli_show_table(mttr_data):
    out = run("show", "mttr", "--by", "month")
    assert "MTTR (mean time to resolve) (hours; lower is better)" in out
    assert "2024-02" in out and "Total" in out and "6.67" in out
    out = run("show", "mttr", "--filter", "priority=2")
    assert "Filters: priority=2" in out and "2.00" in out


def test_cli_errors(mttr_data):
    with pytest.raises(CommandError):
        run("show", "mttr", "--filter", "colour=red")
    with pytest.raises(CommandError):
        run("show", "mttr", "--filter", "priority")


def test_api_anonymous_401(client):
    assert client.get("/api/metrics/").status_code == 401
    assert client.get("/api/metrics/mttr").status_code == 401


def test_api_viewer_reads(client, cast, mttr_data):
    client.force_login(cast.viewer)
    listing = client.get("/api/metrics/").json()
    assert "mttr" in [m["key"] for m in listing["metrics"]]
    data = client.get("/api/metrics/mttr", {"by": "month", "priority": "2"}).json()
    assert [(p["label"], p["value"], p["count"]) for p in data["points"]] == [
        ("2024-01", 1.5, 2),
        ("2024-02", None, 0),
        ("2024-03", 3.0, 1),
    ]
    assert data["filters"] == {"priority": "2"}


def test_api_token_csv_and_errors(client, cast, mttr_data):
    _token, secret = ApiToken.issue(cast.viewer, "metrics")
    headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    response = client.get("/api/metrics/mttr", {"by": "service", "format": "csv"}, **headers)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response.content.decode().splitlines()[1].startswith(f"{mttr_data[0].pk},E-mail,2.0,3")
    assert client.get("/api/metrics/nope", **headers).status_code == 422
    assert (
        client.get(
            "/api/metrics/mttr", {"colour": "red", "service": "x", "by": "colour"}, **headers
        ).status_code
        == 422
    )
    assert client.get("/api/metrics/sla_response", {"basis": "source"}, **headers).status_code == 422


def test_page_and_export(client, cast, mttr_data):
    assert client.get("/metrics/").status_code == 302  # to the login page
    client.force_login(cast.viewer)
    response = client.get("/metrics/", {"metric": "mttr", "by": "month", "service": "E-mail"})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="metrics-chart-data"' in html and "2024-03" in html
    chart = response.context["chart"]
    assert chart["labels"] == ["2024-01", "2024-02", "2024-03"] and chart["values"] == [1.5, None, 3.0]
    response = client.get("/metrics/", {"metric": "nope"})
    assert response.status_code == 200 and "Unknown metric" in response.content.decode()
    export = client.get("/metrics/export.csv", {"metric": "mttr", "by": "month"})
    assert export.status_code == 200
    assert export.content.decode().splitlines()[1].startswith("2024-01-01,2024-01,4.25,4")
    assert client.get("/metrics/export.csv", {"metric": "nope"}).status_code == 400
