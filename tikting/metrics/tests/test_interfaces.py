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
    assert data["total"]["value"] == pytest.approx(40 / 6, abs=1e-9)  # unrounded in JSON


def test_cli_show_filters_and_csv(mttr_data):
    out = run("show", "mttr", "--by", "priority", "--filter", "service=E-mail", "--format", "csv")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == [
        "key",
        "label",
        "value_hours",
        "count",
        "median_hours",
        "p90_hours",
        "unresolved",
        "missing_timestamps",
        "incomplete",
    ]
    assert rows[1][:4] == ["2", "2 - High", "2.0", "3"]
    assert float(rows[1][5]) == pytest.approx(2.8)
    assert rows[1][6:] == ["1", "0", "true"]  # one E-mail P2 incident still open
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


# --- Figures that do not mislead: date field, incomplete periods, units, precision, checked filters


def test_cli_show_date_field_window_unit_and_precision(mttr_data):
    out = run(
        "show", "mttr", "--by", "month", "--date-field", "resolved", "--from", "2024-01-01", "--to",
        "2024-03-31", "--unit", "minutes", "--precision", "3",
    )  # fmt: skip
    assert "MTTR (mean time to resolve) (minutes; lower is better)" in out and "Date: resolved" in out
    assert "value (minutes)" in out and "p90 (minutes)" in out
    assert "255.000" in out  # January: 4.25 h in minutes, three decimals asked for
    data = json.loads(run("show", "mttr", "--unit", "days", "--format", "json"))
    assert data["unit"] == "days" and data["total"]["value"] == pytest.approx(40 / 6 / 24, abs=1e-12)
    with pytest.raises(CommandError, match="durations only"):
        run("show", "reopen_rate", "--unit", "days")
    with pytest.raises(CommandError, match="use date_from"):
        run("show", "mttr", "--date-field", "closed", "--filter", "opened_from=2024-01-01")


def test_cli_table_marks_incomplete_periods(mttr_data):
    out = run("show", "mttr", "--by", "month")
    march = next(line for line in out.splitlines() if line.startswith("2024-03"))
    assert march.rstrip().endswith("yes: 2 records still open")
    january = next(line for line in out.splitlines() if line.startswith("2024-01"))
    assert "yes" not in january
    assert "Incomplete (2024-03, Total): records still open" in out


def test_cli_filter_values_are_checked_with_a_non_zero_exit(mttr_data):
    with pytest.raises(CommandError) as caught:
        run("show", "mttr", "--filter", "status=Shut")
    assert caught.value.returncode == 1
    assert "status: No status 'Shut'. Accepted: new, in_progress" in str(caught.value)
    with pytest.raises(CommandError, match="checked against the values present"):
        run("show", "mttr", "--filter", "source=bpic2041")
    assert "Filters: status=Closed" in run("show", "mttr", "--filter", "status=Closed")


def test_api_date_field_unit_incomplete_and_unrounded(client, cast, mttr_data):
    client.force_login(cast.viewer)
    data = client.get("/api/metrics/mttr", {"by": "month", "date_field": "opened"}).json()
    assert [(p["label"], p["unresolved"], p["incomplete"]) for p in data["points"]] == [
        ("2024-01", 0, False),
        ("2024-02", 0, False),
        ("2024-03", 2, True),
    ]
    assert data["total"]["value"] == pytest.approx(40 / 6, abs=1e-9) and data["decimals"] == 2
    data = client.get(
        "/api/metrics/mttr", {"by": "month", "date_field": "resolved", "unit": "minutes"}
    ).json()
    assert (data["date_field"], data["unit"]) == ("resolved", "minutes")
    assert [(p["label"], p["value"], p["incomplete"]) for p in data["points"]] == [
        ("2024-01", 255.0, False),
        ("2024-02", None, False),
        ("2024-03", 690.0, False),
    ]
    csv_text = client.get(
        "/api/metrics/mttr", {"by": "month", "unit": "days", "format": "csv"}
    ).content.decode()
    assert csv_text.splitlines()[0].startswith("key,label,value_days,count,median_days")
    definition = client.get("/api/metrics/").json()["metrics"][0]
    assert definition["date_fields"] == ["opened", "resolved", "closed"]
    assert definition["units"] == ["minutes", "hours", "days"]


def test_api_unknown_parameters_and_values_are_422_listing_the_accepted(client, cast, mttr_data):
    client.force_login(cast.viewer)
    response = client.get("/api/metrics/mttr", {"colour": "red"})
    assert response.status_code == 422
    assert "accepted: by, date_field" in json.dumps(response.json())
    response = client.get("/api/metrics/mttr", {"status": "Shut"})
    assert response.status_code == 422
    assert "Accepted: new, in_progress, on_hold" in json.dumps(response.json())
    response = client.get("/api/metrics/mttr", {"source": "servicenw"})
    assert response.status_code == 422 and "values present in the records" in json.dumps(response.json())
    assert client.get("/api/metrics/mttr", {"status": "Closed"}).status_code == 200
    assert client.get("/api/metrics/mttr", {"date_field": "someday"}).status_code == 422
    assert client.get("/api/metrics/fcr_rate", {"unit": "days"}).status_code == 422


def test_page_marks_incomplete_periods_and_rounds_for_display_only(client, cast, mttr_data):
    client.force_login(cast.viewer)
    response = client.get("/metrics/", {"metric": "mttr", "by": "month"})
    html = response.content.decode()
    assert 'id="metrics-incomplete-note"' in html and "2024-03 (2 records still open)" in html
    assert "Choose <em>Date: resolved</em>" in html
    assert html.count("data-incomplete") == 1  # March's row
    assert response.context["chart"]["incomplete"] == [False, False, True]
    assert ">6.67 <span" in html  # the total, rounded for display
    assert "value (hours)" in html
    # by resolution date the past months are complete: no note
    html = client.get(
        "/metrics/", {"metric": "mttr", "by": "month", "date_field": "resolved"}
    ).content.decode()
    assert 'id="metrics-incomplete-note"' not in html
    # minutes, and the unit select is ignored for a metric that is not a duration
    html = client.get("/metrics/", {"metric": "mttr", "by": "month", "unit": "minutes"}).content.decode()
    assert ">400.0 <span" in html and "value (minutes)" in html
    assert client.get("/metrics/", {"metric": "reopen_rate", "unit": "minutes"}).context["error"] is None
    # a value that matches nothing is an error on the page, listing the accepted ones
    response = client.get("/metrics/", {"metric": "mttr", "status": "Shut"})
    assert "Accepted: new, in_progress" in response.context["error"]
    export = client.get("/metrics/export.csv", {"metric": "mttr", "by": ""}).content.decode()
    assert export.splitlines()[1].startswith(f",Total,{40 / 6!r},6,")  # unrounded
