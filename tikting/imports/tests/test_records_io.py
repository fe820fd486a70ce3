"""Generic import/export of registry kinds: round trips, idempotence, errors by line and field."""

import datetime as dt
import io
import json

import pytest

from tikting.accounts.models import Team
from tikting.changes.models import Change
from tikting.cmdb.models import ConfigurationItem, Service
from tikting.core.exceptions import PermissionDeniedError
from tikting.core.models import AuditEntry, StatusChange
from tikting.imports.records import columns_for, export_records, import_records
from tikting.incidents.models import Incident
from tikting.knowledge.models import Article
from tikting.problems.models import Problem
from tikting.slas.models import SLADefinition
from tikting.surveys.models import SurveyResponse

pytestmark = pytest.mark.django_db
UTC = dt.UTC
T0 = dt.datetime(2025, 3, 1, 9, 30, tzinfo=UTC)


@pytest.fixture
def world(cast):
    team = Team.objects.create(name="Service Desk")
    ci = ConfigurationItem.objects.create(name="mail-01", ci_class="server", service=cast.email)
    problem = Problem.objects.create(number="PRB1", title="Mail queue", opened_at=T0)
    change = Change.objects.create(number="CHG1", title="Patch", opened_at=T0)
    article = Article.objects.create(number="KB1", title="Reset a password", service=cast.email)
    return {"team": team, "ci": ci, "problem": problem, "change": change, "article": article, "cast": cast}


def make_records(world):
    cast = world["cast"]
    Incident.objects.create(
        number="INC1",
        short_description="Mail down, =SUM(A1)",
        description="line one\nline two, with a comma",
        status="resolved",
        opened_at=T0,
        resolved_at=T0 + dt.timedelta(hours=3, seconds=7),
        priority=2,
        impact=1,
        urgency=2,
        category="E-mail",
        service=cast.email,
        ci=world["ci"],
        assignment_group=world["team"],
        assigned_to=cast.contributor,
        reassignment_count=2,
        reopen_count=1,
        contact_channel="phone",
        first_contact_resolution=False,
        major=True,
        problem=world["problem"],
        related_change=world["change"],
        knowledge_article=world["article"],
        source_sla_met=True,
        source="legacy",
        external_key="L-1",
        raw={"a": 1, "b": ["x"]},
    )
    Incident.objects.create(number="INC2", opened_at=T0, priority=None, source="manual")
    Change.objects.create(
        number="CHG2",
        title="Firewall rule",
        change_type="emergency",
        status="closed",
        opened_at=T0,
        planned_start=T0,
        planned_end=T0 + dt.timedelta(hours=1),
        outcome="failed",
        unplanned=True,
        pir_done=True,
        pir_delivered_outcome=False,
        service=cast.network,
        assignment_group=world["team"],
        owner=cast.manager,
    )
    Article.objects.create(
        number="KB2",
        title="VPN",
        body="Steps…",
        status="retired",
        views=10,
        uses=3,
        helpful_yes=2,
        helpful_no=1,
        last_reviewed_at=dt.date(2025, 1, 2),
        review_due=dt.date(2026, 1, 2),
        author=cast.owner,
    )
    ConfigurationItem.objects.create(
        name="core-sw", ci_class="network", status="maintenance", ci_type="switch"
    )
    SLADefinition.objects.create(
        name="P1 mail", service=cast.email, priority=1, response_minutes=15, resolution_minutes=240
    )
    SLADefinition.objects.create(name="P3 any", priority=3, resolution_minutes=2880, calendar="business")


def export(kind, fmt):
    out = io.StringIO()
    export_records(kind, out, fmt)
    return out.getvalue()


def run(kind, text, fmt="csv", **kw):
    return import_records(kind, io.StringIO(text), fmt=fmt, **kw)


def counts(report, kind):
    c = report.counts[kind]
    return (c.created, c.updated, c.unchanged, c.failed)


KINDS = ["incident", "change", "article", "ci", "sla"]
MODELS = {
    "incident": Incident,
    "change": Change,
    "article": Article,
    "ci": ConfigurationItem,
    "sla": SLADefinition,
}


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
@pytest.mark.parametrize("kind", KINDS)
def test_round_trip(world, kind, fmt):
    make_records(world)
    before = export(kind, fmt)
    n = MODELS[kind]._default_manager.count()
    # Unchanged when read back into the same database.
    same = run(kind, before, fmt)
    assert same.ok, same.errors
    assert counts(same, kind) == (0, 0, n, 0)
    # Lossless into an empty table: the export of the re-imported records is the same text.
    if kind == "ci":
        Incident.objects.all().delete()
    MODELS[kind]._default_manager.all().delete()
    again = run(kind, before, fmt)
    assert again.ok, again.errors
    assert counts(again, kind) == (n, 0, 0, 0)
    assert export(kind, fmt) == before


def test_export_formats(world):
    make_records(world)
    text = export("incident", "csv")
    header = text.splitlines()[0].split(",")
    assert header == columns_for("incident")
    assert "id" not in header and "version" not in header and "raw" in header
    assert "'=SUM(A1)" not in text and "Mail down, =SUM(A1)" in text  # only leading triggers escaped
    rows = [json.loads(line) for line in export("incident", "jsonl").splitlines()]
    inc1 = next(r for r in rows if r["number"] == "INC1")
    assert inc1["service"] == "E-mail" and inc1["assigned_to"] == "carl" and inc1["problem"] == "PRB1"
    assert inc1["knowledge_article"] == "KB1" and inc1["raw"] == {"a": 1, "b": ["x"]}
    assert inc1["resolved_at"] == "2025-03-01T12:30:07+00:00"
    assert json.loads(export("incident", "json"))[0]["number"] in {"INC1", "INC2"}


def test_idempotent_on_source_and_external_key(world):
    text = (
        "number,opened_at,external_key,priority,service\n"
        "INC10,2025-03-01T10:00:00Z,X-10,3,E-mail\n"
        "INC11,2025-03-01 11:00,X-11,,\n"
    )
    first = run("incident", text, source="acme")
    assert counts(first, "incident") == (2, 0, 0, 0)
    inc = Incident.objects.get(number="INC10")
    assert (inc.source, inc.external_key, inc.priority, inc.service.name) == ("acme", "X-10", 3, "E-mail")
    assert Incident.objects.get(number="INC11").opened_at == dt.datetime(2025, 3, 1, 11, tzinfo=UTC)
    assert counts(run("incident", text, source="acme"), "incident") == (0, 0, 2, 0)
    # The number changes in the source: matched on (source, external_key), so updated, not created.
    changed = text.replace("INC10,", "INC10-B,")
    report = run("incident", changed, source="acme")
    assert counts(report, "incident") == (0, 1, 1, 0)
    inc.refresh_from_db()
    assert inc.number == "INC10-B" and inc.version == 2
    # History: an audit row per created/updated record, status changes for new records.
    assert AuditEntry.objects.filter(object_id=str(inc.pk), message="Imported").count() == 2
    assert StatusChange.objects.filter(object_id=str(inc.pk), new_status="new").count() == 1
    # The same external key under another source is another record; its number clashes.
    other = run("incident", changed, source="other")
    assert counts(other, "incident") == (0, 0, 0, 2)
    assert {e.field for e in other.errors} == {"number"}


def test_key_field_matching_without_external_key(world):
    text = "name,ci_class,service\nweb-01,server,E-mail\n"
    assert counts(run("ci", text), "ci") == (1, 0, 0, 0)
    assert counts(run("ci", text.replace(",server,", ",vm,")), "ci") == (0, 1, 0, 0)
    assert ConfigurationItem.objects.get(name="web-01").ci_class == "vm"
    # Services and groups have no source: matched on their name.
    assert counts(run("service", "name,criticality\nE-mail,4\nPrinting,1\n"), "service") == (1, 1, 0, 0)
    assert Service.objects.get(name="E-mail").criticality == 4
    assert Service.objects.get(name="Printing").source == "csv"  # the import's label on new records
    assert counts(run("group", "name\nService Desk\nNetwork team\n"), "group") == (1, 0, 1, 0)


def test_bad_rows_reported_by_line_and_field_good_rows_kept(world):
    text = (
        "number,opened_at,priority,service,status,reopen_count,major\n"
        "INC20,2025-03-01T10:00:00Z,2,E-mail,new,0,false\n"  # line 2: good
        "INC21,yesterday,9,Nowhere,asleep,-1,maybe\n"  # line 3: six bad fields
        'INC22,2025-03-02T10:00:00Z,1,"Network",closed,0,true\n'  # line 4: good
        "INC23,,2,,new,0,false\n"  # line 5: no opened_at
        "INC24,2025-03-02T10:00:00Z,2,,new,0,false,extra\n"  # line 6: too many cells
    )
    report = run("incident", text, file="in.csv")
    assert counts(report, "incident") == (2, 0, 0, 3)
    found = {(e.line, e.field) for e in report.errors}
    assert {(3, f) for f in ("opened_at", "priority", "service", "status", "reopen_count", "major")} <= found
    assert (5, "opened_at") in found and (6, "row") in found
    assert str(report.errors[0]).startswith("in.csv:3: ")
    assert set(Incident.objects.values_list("number", flat=True)) == {"INC20", "INC22"}


def test_json_errors_and_unknown_fields(world):
    text = '{"number": "INC30", "opened_at": "2025-03-01T10:00:00Z", "colour": "red"}\nnot json\n[1]\n'
    report = run("incident", text, fmt="jsonl")
    assert counts(report, "incident") == (0, 0, 0, 3)
    assert {(e.line, e.field) for e in report.errors} == {(1, "colour"), (2, "row"), (3, "row")}
    csv_report = run("incident", "number,colour\nX,red\n")
    assert [(e.line, e.field) for e in csv_report.errors] == [(1, "file")]


def test_survey_and_unique_clash_in_database(world):
    report = run(
        "survey", "score,responded_at,comment\n5,2025-03-01T10:00:00Z,great\n7,2025-03-01T10:00:00Z,x\n"
    )
    assert counts(report, "survey") == (1, 0, 0, 1)
    assert report.errors[0].field == "score"
    survey = SurveyResponse.objects.get()
    text = export("survey", "csv")
    assert text.splitlines()[0].startswith("id,")
    assert counts(run("survey", text), "survey") == (0, 0, 1, 0)
    assert str(survey.pk) in text
    # Two SLAs for the same service and priority: the database refuses the second, the first is kept.
    sla = "name,service,priority,resolution_minutes\nA,E-mail,2,60\nB,E-mail,2,90\n"
    clash = run("sla", sla)
    assert counts(clash, "sla") == (1, 0, 0, 1)
    assert clash.errors[0].line == 3 and clash.errors[0].field == "row"


def test_dry_run_and_permissions(world):
    cast = world["cast"]
    text = "number,opened_at\nINC40,2025-03-01T10:00:00Z\n"
    report = run("incident", text, dry_run=True, actor=cast.contributor)
    assert counts(report, "incident") == (1, 0, 0, 0) and report.dry_run
    assert not Incident.objects.filter(number="INC40").exists()
    assert AuditEntry.objects.count() == 0
    with pytest.raises(PermissionDeniedError):
        run("incident", text, actor=cast.viewer)
    run("incident", text, actor=cast.contributor)
    entry = AuditEntry.objects.get()
    assert entry.actor == cast.contributor and entry.action == "create"


def test_sla_verdicts_in_a_file_are_ignored_the_sla_pass_decides(world):
    """An incident file carrying resolution_met / due times (an export from elsewhere) neither
    writes them nor puts them in the history; a second run of the same file changes nothing."""
    SLADefinition.objects.create(name="P4 any", priority=4, resolution_minutes=60)
    text = (
        "number,opened_at,resolved_at,priority,status,resolution_met,resolution_due_at\n"
        "INC77,2025-03-03T12:00:00Z,2025-03-04T12:00:00Z,4,closed,true,2030-01-01T00:00:00Z\n"
    )
    assert counts(run("incident", text), "incident") == (1, 0, 0, 0)
    incident = Incident.objects.get(number="INC77")
    assert incident.resolution_met is False  # resolved a day after a one-hour target
    assert incident.resolution_due_at is not None
    assert incident.resolution_due_at.isoformat() == "2025-03-03T13:00:00+00:00"
    created = AuditEntry.objects.get(object_id=str(incident.pk))
    assert "resolution_met" not in created.changes and "resolution_due_at" not in created.changes
    assert counts(run("incident", text), "incident") == (0, 0, 1, 0)
