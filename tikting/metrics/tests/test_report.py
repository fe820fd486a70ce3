"""`tikting metrics report`: record counts and every metric per source, checked against figures
computed by hand (and, with TIKTING_FULL_DATA=1, against docs/datasets.md on the real data sets)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import shutil
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tikting.changes.models import Change
from tikting.incidents.models import Incident, IncidentActivity, Interaction
from tikting.problems.models import Problem
from tikting.surveys.models import SurveyResponse

pytestmark = pytest.mark.django_db

UTC = dt.UTC
DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"


def at(y, m, d, h=0, mi=0) -> dt.datetime:
    return dt.datetime(y, m, d, h, mi, tzinfo=UTC)


def make_incident(number, source, opened, hours=None, **kw) -> Incident:
    if hours is not None:
        kw.setdefault("resolved_at", opened + dt.timedelta(hours=hours))
        kw.setdefault("closed_at", opened + dt.timedelta(hours=hours + 1))
        kw.setdefault("status", "closed")
    return Incident.objects.create(number=number, source=source, opened_at=opened, **kw)


@pytest.fixture
def two_sources(db):
    """alpha: TTR 2, 4, 9 h and one open incident; beta: TTR 10, 20 h, no changes."""
    a1 = make_incident(
        "A1",
        "alpha",
        at(2024, 1, 1, 8),
        2,
        reassignment_count=0,
        first_contact_resolution=True,
        source_sla_met=True,
    )
    make_incident(
        "A2",
        "alpha",
        at(2024, 1, 2, 8),
        4,
        reassignment_count=1,
        reopen_count=1,
        first_contact_resolution=False,
        source_sla_met=True,
    )
    make_incident("A3", "alpha", at(2024, 1, 3, 8), 9, reassignment_count=3, source_sla_met=False)
    # still open at the end of alpha's last opening day (2024-01-05): backlog 1, age 14 h
    make_incident("A4", "alpha", at(2024, 1, 5, 10), status="in_progress")
    for i, fcr in enumerate((True, True, True, False)):
        Interaction.objects.create(
            number=f"SDA{i}", source="alpha", opened_at=at(2024, 1, 1, 9), first_contact_resolution=fcr
        )
    IncidentActivity.objects.create(incident=a1, source="alpha", at=at(2024, 1, 1, 8), activity_type="Open")
    Problem.objects.create(number="PRA1", title="p", source="alpha", opened_at=at(2024, 1, 1))
    for i, outcome in enumerate(("successful", "successful", "failed", "")):
        Change.objects.create(number=f"CHA{i}", source="alpha", opened_at=at(2024, 1, 1), outcome=outcome)
    for i, score in enumerate((5, 4, 2)):
        SurveyResponse.objects.create(source="alpha", score=score, responded_at=at(2024, 1, 2, 10 + i))

    # beta: SLA verdicts from definitions (as apply_slas stores them), no changes at all
    make_incident("B1", "beta", at(2024, 2, 1), 10, reassignment_count=0, resolution_met=True)
    make_incident("B2", "beta", at(2024, 2, 2), 20, reassignment_count=0, resolution_met=False)
    # a source with only changes is reportable when asked for, but not listed by default
    Change.objects.create(number="CHX", source="gamma", opened_at=at(2024, 1, 1), outcome="successful")


def r2(value: float) -> float:
    return round(value, 2)


def run(*args) -> str:
    out = io.StringIO()
    call_command("metrics", "report", *args, stdout=out)
    return out.getvalue()


def figures_of(data: dict, source: str) -> dict[str, dict]:
    block = next(s for s in data["sources"] if s["source"] == source)
    return {f["key"]: f for f in block["figures"]}


def test_json_figures_match_hand_computed_values(two_sources):
    data = json.loads(run("--format", "json"))
    assert [s["source"] for s in data["sources"]] == ["alpha", "beta"]  # gamma has no incidents

    alpha = next(s for s in data["sources"] if s["source"] == "alpha")
    records = alpha["records"]
    assert records["incident"]["count"] == 4
    assert (records["incident"]["open"], records["incident"]["closed"]) == (1, 3)
    assert records["interaction"]["count"] == 4
    assert records["activity"]["count"] == 1
    assert records["problem"]["count"] == 1
    assert records["change"]["count"] == 4
    assert records["survey"]["count"] == 3
    assert records["request"]["count"] == 0

    f = figures_of(data, "alpha")
    # TTR 2, 4, 9 h: mean 5, median 4, p90 at rank 0.9 × 2 = 1.8 → 4 + 0.8 × (9 − 4) = 8
    assert (f["mttr_mean"]["value"], f["mttr_mean"]["count"]) == (5.0, 3)
    assert f["mttr_median"]["value"] == 4.0
    assert f["mttr_p90"]["value"] == 8.0
    assert f["mttr_mean"]["unresolved"] == 1
    assert f["mttr_mean"]["metric"] == "mttr"
    assert "AVG(resolved_at" in f["mttr_mean"]["definition"]
    # reassignments 0, 1, 3 known, one unknown
    # unrounded in JSON (the table rounds): 2 of 3 is 66.666…, not 66.67
    assert (f["reassignment_rate"]["value"], f["reassignment_rate"]["count"]) == (pytest.approx(200 / 3), 3)
    assert f["reassignment_rate"]["unknown"] == 1
    assert (f["reassignment_mean"]["value"], f["reassignment_mean"]["count"]) == (pytest.approx(4 / 3), 3)
    # one of the three resolved incidents reopened
    assert (f["reopen_rate"]["value"], f["reopen_rate"]["count"]) == (pytest.approx(100 / 3), 3)
    assert (f["fcr_rate"]["value"], f["fcr_rate"]["count"]) == (75.0, 4)
    assert (f["incident_fcr_rate"]["value"], f["incident_fcr_rate"]["count"]) == (50.0, 2)
    sla = f["sla_resolution"]
    assert (sla["value"], sla["count"], sla["basis"], sla["not_evaluated"]) == (
        pytest.approx(200 / 3),
        3,
        "source",
        1,
    )
    assert f["sla_response"]["value"] is None
    change = f["change_success_rate"]
    assert (change["value"], change["count"], change["no_outcome"]) == (pytest.approx(200 / 3), 3, 1)
    assert (f["csat_mean"]["value"], f["csat_mean"]["count"]) == (pytest.approx(11 / 3), 3)
    assert f["csat_satisfied"]["value"] == pytest.approx(200 / 3)
    assert (f["backlog"]["value"], f["backlog"]["count"]) == (1, 1)
    assert f["backlog_age"]["value"] == pytest.approx(14 / 24)
    assert alpha["backlog_as_of"].startswith("2024-01-06T00:00")

    g = figures_of(data, "beta")
    assert (g["mttr_mean"]["value"], g["mttr_median"]["value"], g["mttr_p90"]["value"]) == (15.0, 15.0, 19.0)
    assert (g["sla_resolution"]["value"], g["sla_resolution"]["basis"]) == (50.0, "definitions")
    assert (g["reassignment_rate"]["value"], g["reassignment_rate"]["count"]) == (0.0, 2)
    assert g["change_success_rate"]["value"] is None
    assert g["change_success_rate"]["note"] == "n/a: no changes"
    assert g["backlog"]["value"] == 0


def test_report_agrees_with_metrics_show(two_sources):
    data = json.loads(run("--format", "json"))
    f = figures_of(data, "alpha")
    for key in ("mttr", "reopen_rate", "sla_resolution", "fcr_rate"):
        out = io.StringIO()
        call_command("metrics", "show", key, "--filter", "source=alpha", "--format", "json", stdout=out)
        shown = json.loads(out.getvalue())["total"]
        figure = next(x for x in f.values() if x["metric"] == key)
        assert (figure["value"], figure["count"]) == (shown["value"], shown["count"])


def test_table_is_one_aligned_block_per_source(two_sources):
    text = run()
    assert text.index("Source: alpha") < text.index("Source: beta")
    assert "Source: gamma" not in text
    alpha, beta = text.split("Source: beta")
    lines = {line.strip().split("  ")[0]: line for line in alpha.splitlines() if line.strip()}
    assert "5.00 h" in lines["MTTR, mean"] and " 3 " in lines["MTTR, mean"]
    assert "4.00 h" in lines["MTTR, median"]
    assert "8.00 h" in lines["MTTR, p90"]
    assert "66.67 %" in lines["SLA compliance, resolution"]
    assert "basis source (source flag)" in lines["SLA compliance, resolution"]
    assert "66.67 %" in lines["Change success rate"]
    assert "1.333" in lines["Reassignments per incident"]
    assert "open 1" in lines["Incidents"]
    # the value column is right-aligned: every figure row ends its value at the same column
    header = next(line for line in alpha.splitlines() if line.strip().startswith("figure"))
    value_end = header.index("value") + len("value")
    rows = [line for line in alpha.splitlines() if " h " in line or " % " in line]
    assert rows and all(line[value_end - 1] != " " and line[value_end] == " " for line in rows)
    change = next(line for line in beta.splitlines() if line.strip().startswith("Change success rate"))
    assert "n/a: no changes" in change
    assert "15.00 h" in beta and "50.00 %" in beta and "basis definitions" in beta


def test_csv_rows(two_sources):
    rows = list(csv.DictReader(io.StringIO(run("--format", "csv"))))
    by = {(r["source"], r["key"]): r for r in rows}
    assert by[("alpha", "mttr_mean")]["value"] == "5.0"
    assert by[("alpha", "mttr_mean")]["count"] == "3"
    assert by[("alpha", "incident")]["value"] == "4"
    assert by[("alpha", "incident_open")]["value"] == "1"
    assert by[("beta", "mttr_p90")]["value"] == "19.0"
    assert by[("beta", "sla_resolution")]["basis"] == "definitions"
    assert by[("beta", "change_success_rate")]["value"] == ""
    assert by[("beta", "change_success_rate")]["note"] == "n/a: no changes"


def test_source_option_restricts_and_unknown_source_is_an_error(two_sources):
    data = json.loads(run("--source", "beta", "--format", "json"))
    assert [s["source"] for s in data["sources"]] == ["beta"]
    gamma = json.loads(run("--source", "gamma", "--format", "json"))["sources"][0]
    assert gamma["records"]["change"]["count"] == 1
    assert figures_of({"sources": [gamma]}, "gamma")["change_success_rate"]["value"] == 100.0
    with pytest.raises(CommandError, match="Unknown source 'unknown'"):
        run("--source", "unknown")


def test_caused_incident_alone_is_no_outcome_data(db):
    make_incident("D1", "derived", at(2024, 1, 1), 1)
    Change.objects.create(
        number="CHD1", source="derived", opened_at=at(2024, 1, 1), outcome="caused_incident"
    )
    Change.objects.create(number="CHD2", source="derived", opened_at=at(2024, 1, 1))
    f = figures_of(json.loads(run("--format", "json")), "derived")["change_success_rate"]
    assert f["value"] is None
    assert f["engine_value"] == 0.0  # what the engine says over the one caused_incident change
    assert f["note"].startswith("n/a: no outcome data")


def test_no_incidents_at_all(db):
    assert run() == "No incidents: nothing to report.\n"


@pytest.mark.skipif(
    os.environ.get("TIKTING_FULL_DATA") != "1"
    or not (DATA / "bpic2014").is_dir()
    or not (DATA / "uci_incident_event_log" / "incident_event_log.zip").exists(),
    reason="full data sets: set TIKTING_FULL_DATA=1 (needs ../shared/data)",
)
def test_full_data_sets_reference_figures(tmp_path):
    """docs/datasets.md, reference figures of BPIC 2014 and ServiceNow, through the report."""
    zip_path = tmp_path / "incident_event_log.zip"
    shutil.copy(DATA / "uci_incident_event_log" / "incident_event_log.zip", zip_path)
    call_command("import", "servicenow", str(zip_path), stdout=io.StringIO())
    call_command("import", "bpic2014", str(DATA / "bpic2014"), stdout=io.StringIO())
    data = json.loads(run("--format", "json"))
    assert [s["source"] for s in data["sources"]] == ["bpic2014", "servicenow-uci"]

    bpic, sn = data["sources"]
    assert bpic["records"]["incident"]["count"] == 46_606
    assert bpic["records"]["interaction"]["count"] == 147_004
    assert bpic["records"]["change"]["count"] == 18_000
    f = figures_of(data, "bpic2014")
    # Europe/Amsterdam timestamps (DST-aware): docs/datasets.md gives 124.67 / 18.76 / 263.42
    # (JSON values are unrounded: the published figures are their rounding)
    assert (r2(f["mttr_mean"]["value"]), f["mttr_mean"]["count"]) == (124.67, 44_826)
    assert (r2(f["mttr_median"]["value"]), r2(f["mttr_p90"]["value"])) == (18.76, 263.42)
    assert (r2(f["fcr_rate"]["value"]), f["fcr_rate"]["count"]) == (63.94, 147_004)
    assert f["fcr_rate"]["resolved_first_contact"] == 93_996
    assert (r2(f["reassignment_rate"]["value"]), round(f["reassignment_mean"]["value"], 3)) == (41.06, 1.132)
    assert f["reopen_rate"]["reopened"] == 2_284
    assert f["change_success_rate"]["value"] is None
    assert f["change_success_rate"]["note"].startswith("n/a: no outcome data")

    assert sn["records"]["incident"]["count"] == 24_918
    g = figures_of(data, "servicenow-uci")
    assert (r2(g["mttr_mean"]["value"]), g["mttr_mean"]["count"]) == (178.17, 23_362)
    assert (r2(g["mttr_median"]["value"]), r2(g["mttr_p90"]["value"])) == (22.10, 381.55)
    sla = g["sla_resolution"]
    assert (r2(sla["value"]), sla["count"], sla["met"], sla["basis"]) == (63.42, 24_918, 15_803, "source")
    assert (r2(g["reassignment_rate"]["value"]), round(g["reassignment_mean"]["value"], 3)) == (45.63, 0.94)
    assert (r2(g["reopen_rate"]["value"]), g["reopen_rate"]["reopened"]) == (1.10, 275)
