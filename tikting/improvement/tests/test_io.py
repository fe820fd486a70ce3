"""`tikting register export|import|housekeeping` and the io services behind them."""

import csv
import datetime as dt
import io as stdio
import json
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from tikting.core.models import AuditEntry, StatusChange
from tikting.improvement import choices as C
from tikting.improvement import io
from tikting.improvement import services as S
from tikting.improvement.models import Action, Indicator, Item, Measurement
from tikting.test import ready_item

pytestmark = pytest.mark.django_db

HEADER = "external_id,title,impact,effort,owner,target_date,status,service\n"


def run(*args, expect_failure=False):
    out, err = stdio.StringIO(), stdio.StringIO()
    if expect_failure:
        with pytest.raises(CommandError):
            call_command("register", *args, stdout=out, stderr=err)
    else:
        call_command("register", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def export_text(fmt):
    out, _ = run("export", "--format", fmt)
    return out


def comparable(text, fmt):
    """Exported rows keyed by ref: what a round trip must preserve."""
    if fmt == "csv":
        rows = list(csv.DictReader(stdio.StringIO(text)))
        for row in rows:
            row["indicators"] = json.loads(row["indicators"] or "[]")
            row["actions"] = json.loads(row["actions"] or "[]")
    else:
        rows = json.loads(text)
    return {row["ref"]: row for row in rows}


@pytest.fixture
def register(cast):
    """A small register touching every exported field."""
    acting = ready_item(cast, external_id="SHEET-1", description='Long\ntext, with "quotes"')
    S.update_item(acting, actor=cast.manager, rank=1, review_milestone="Q3 review")
    S.set_blocked(acting, actor=cast.owner, blocked=True, blocker="Waiting for the vendor")
    indicator = acting.indicators.get()
    S.record_measurement(indicator, actor=cast.owner, value="8.25", measured_at=timezone.now())

    closed = ready_item(cast, title="Faster changes", practice="change", service=cast.network)
    closed = S.transition_item(closed, actor=cast.owner, to="action")
    S.record_measurement(closed.indicators.get(), actor=cast.owner, value="5")
    S.update_action(closed.actions.get(), actor=cast.owner, done=True)
    closed = S.transition_item(closed, actor=cast.owner, to="evaluation")
    closed = S.evaluate_item(closed, actor=cast.owner)
    closed = S.transition_item(closed, actor=cast.owner, to="momentum")
    closed = S.close_item(
        closed,
        actor=cast.owner,
        outcome="successful",
        benefit_category="time_saved",
        realised_delta="-5",
        lessons="Automate early",
        follow_ups=[{"title": "Extend to releases"}],
    )

    deferred = S.create_item(actor=cast.contributor, title="Chatbot", justification="Deflect calls")
    S.assess_item(
        deferred,
        actor=cast.manager,
        decision="defer",
        reason="Budget next year",
        revisit_date=timezone.localdate() + dt.timedelta(days=90),
    )
    rejected = S.create_item(
        actor=cast.contributor, title="Fax gateway", source_channel="audit_finding", source_reference="AUD-7"
    )
    S.assess_item(rejected, actor=cast.manager, decision="reject", reason="Obsolete")
    return Item.objects.all()


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_it_round_trips_losslessly(register, tmp_path, fmt):
    text = export_text(fmt)
    if fmt == "jsonl":
        before = {json.loads(line)["ref"]: json.loads(line) for line in text.splitlines()}
    else:
        before = comparable(text, fmt)
    assert len(before) == 5
    path = write(tmp_path, f"register.{fmt}", text)

    # Into an empty register: every item comes back with its ref, parent and nested records.
    Item.objects.all().delete()
    out, _ = run("import", path)
    assert "5 created, 0 updated, 0 unchanged, 0 failed" in out
    again = export_text(fmt)
    if fmt == "jsonl":
        after = {json.loads(line)["ref"]: json.loads(line) for line in again.splitlines()}
    else:
        after = comparable(again, fmt)
    assert after == before
    # Ids were given explicitly: the next item still gets a fresh one (PostgreSQL's sequence moved on).
    highest = max(Item.objects.values_list("pk", flat=True))
    assert S.create_item(actor=None, title="After the import").pk > highest


def test_it_round_trips_every_field_value(register):
    rows = comparable(export_text("json"), "json")
    closed = next(r for r in rows.values() if r["status"] == "closed")
    assert closed["outcome"] == "successful"
    assert closed["benefit_category"] == "time_saved"
    assert closed["realised_delta"] == "-5"
    assert closed["closed_at"]
    child = next(r for r in rows.values() if r["parent"])
    assert child["parent"] == closed["ref"]
    blocked = next(r for r in rows.values() if r["blocked"])
    assert blocked["blocker"] == "Waiting for the vendor"
    assert blocked["external_id"] == "SHEET-1"
    assert blocked["rank"] == 1
    assert [m["value"] for m in blocked["indicators"][0]["measurements"]] == ["8.25"]
    assert blocked["actions"][0]["owner"] == "olga"


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_reimport_is_idempotent_and_applies_updates(register, tmp_path, fmt):
    text = export_text(fmt)
    path = write(tmp_path, f"register.{fmt}", text)
    counts = (
        Item.objects.count(),
        Indicator.objects.count(),
        Measurement.objects.count(),
        Action.objects.count(),
    )
    audit_rows = AuditEntry.objects.count()

    out, _ = run("import", path)
    assert "0 created, 0 updated, 5 unchanged, 0 failed" in out
    assert (
        Item.objects.count(),
        Indicator.objects.count(),
        Measurement.objects.count(),
        Action.objects.count(),
    ) == counts
    assert AuditEntry.objects.count() == audit_rows  # nothing changed, nothing recorded

    edited = text.replace("Chatbot", "Chatbot for the service desk")
    out, _ = run("import", write(tmp_path, f"edited.{fmt}", edited))
    assert "0 created, 1 updated, 4 unchanged, 0 failed" in out
    item = Item.objects.get(title="Chatbot for the service desk")
    assert item.version == 3  # created 1, assessed 2, imported 3
    entry = AuditEntry.objects.filter(object_id=str(item.pk), action="update").first()
    assert entry is not None
    assert entry.changes["title"] == ["Chatbot", "Chatbot for the service desk"]
    assert Item.objects.count() == counts[0]


def test_it_creates_items_with_status_audit_and_status_change(cast, tmp_path):
    path = write(
        tmp_path,
        "sheet.csv",
        HEADER + "S-1,Clean up CMDB duplicates,4,2,olga,2030-01-31,plan,E-mail\n"
        "S-2,Printer self-service,2,1,,,new,\n",
    )
    out, _ = run("import", path, "--as", "mia")
    assert "2 created" in out
    item = Item.objects.get(external_id="S-1")
    assert item.status == C.Status.PLAN
    assert item.owner == cast.owner
    assert item.service == cast.email
    assert item.quadrant == C.Quadrant.QUICK_WIN
    assert item.priority_score == 16
    assert item.submitted_by == cast.manager
    created = AuditEntry.objects.get(object_id=str(item.pk), action="create")
    assert created.actor == cast.manager
    change = StatusChange.objects.get(object_id=str(item.pk))
    assert (change.old_status, change.new_status, change.actor) == ("", "plan", cast.manager)


def test_status_change_on_reimport_is_recorded(cast, tmp_path):
    run("import", write(tmp_path, "a.csv", HEADER + "S-1,Runbooks,3,3,,,vision,\n"))
    run("import", write(tmp_path, "b.csv", HEADER + "S-1,Runbooks,3,3,,,current_state,\n"))
    item = Item.objects.get(external_id="S-1")
    assert list(
        StatusChange.objects.filter(object_id=str(item.pk))
        .order_by("id")
        .values_list("old_status", "new_status")
    ) == [("", "vision"), ("vision", "current_state")]


def test_bad_rows_are_reported_by_line_and_field_and_good_rows_kept(cast, tmp_path):
    text = (
        HEADER
        + "S-1,Good one,3,3,olga,2030-01-31,new,\n"  # line 2
        + "S-2,Bad impact,9,3,,,new,\n"  # line 3
        + "S-3,Unknown owner,3,3,nobody,,new,\n"  # line 4
        + "S-4,,3,3,,,new,\n"  # line 5: no title
        + "S-5,Bad date,3,3,,2030-13-45,new,\n"  # line 6
        + "S-6,Unknown service,3,3,,,new,Mainframe\n"  # line 7
        + "S-7,Another good one,2,4,,,new,\n"  # line 8
    )
    out, err = run("import", write(tmp_path, "bad.csv", text), expect_failure=True)
    assert "2 created, 0 updated, 0 unchanged, 5 failed" in out
    assert "line 3, impact: '9' is not between 1 and 5." in err
    assert "line 4, owner: No user 'nobody'." in err
    assert "line 5, title: A title is required." in err
    assert "line 6, target_date:" in err
    assert "line 7, service: No service 'Mainframe'" in err
    assert sorted(Item.objects.values_list("external_id", flat=True), key=str) == ["S-1", "S-7"]


def test_line_numbers_count_multiline_cells(cast, tmp_path):
    text = 'external_id,title,description,impact\nS-1,One,"two\nlines",3\nS-2,Two,,7\n'
    _, err = run("import", write(tmp_path, "multi.csv", text), expect_failure=True)
    assert "line 4, impact:" in err


def test_unknown_service_is_created_on_request(cast, tmp_path):
    path = write(tmp_path, "s.csv", HEADER + "S-1,Mainframe batch,3,3,,,new,Mainframe\n")
    run("import", path, "--create-services")
    service = Item.objects.get(external_id="S-1").service
    assert service is not None and service.name == "Mainframe"


def test_a_row_needs_a_ref_or_an_external_id(cast, tmp_path):
    _, err = run("import", write(tmp_path, "n.csv", "title\nNo key\n"), expect_failure=True)
    assert "line 2, ref: Give a ref (CI-00012) or an external_id" in err
    assert not Item.objects.exists()


def test_ref_and_external_id_must_agree(cast, tmp_path):
    item = S.create_item(actor=None, title="One", external_id="A")
    text = f"ref,external_id,title\n{item.ref},B,One\n"
    _, err = run("import", write(tmp_path, "c.csv", text), expect_failure=True)
    assert "line 2, external_id:" in err


def test_dry_run_writes_nothing(cast, tmp_path):
    path = write(tmp_path, "d.csv", HEADER + "S-1,One,3,3,,,new,\nS-2,Two,3,3,,,closed,\n")
    out, _ = run("import", path, "--dry-run")
    assert "Dry run (nothing written): 2 created" in out
    assert not Item.objects.exists()
    assert not AuditEntry.objects.exists()
    assert not StatusChange.objects.exists()


def test_json_lines_report_errors_by_line(cast, tmp_path):
    lines = [
        {"external_id": "J-1", "title": "One", "indicators": [{"name": "CSAT", "baseline_value": "3.1"}]},
        "not json",
        {"external_id": "J-2", "title": "Two", "closed_at": "yesterday"},
        {"external_id": "J-3", "title": "Three", "status": "closed"},
    ]
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"
    out, err = run("import", write(tmp_path, "j.jsonl", text), expect_failure=True)
    assert "2 created, 0 updated, 0 unchanged, 2 failed" in out
    assert "line 2, row: Not valid JSON" in err
    assert "line 3, closed_at:" in err
    assert Indicator.objects.get().baseline_value == Decimal("3.1")
    assert Item.objects.get(external_id="J-3").closed_at is not None


def test_json_array_reports_errors_by_line(cast, tmp_path):
    text = (
        '[\n{"external_id": "J-1", "title": "One"},\n{"external_id": "J-2", "title": "Two", "effort": 0}\n]\n'
    )
    _, err = run("import", write(tmp_path, "a.json", text), expect_failure=True)
    assert "line 3, effort:" in err
    assert Item.objects.count() == 1


def test_parent_later_in_the_file_is_resolved(cast, tmp_path):
    text = "external_id,title,parent\nC-1,Child,P-1\nP-1,Parent,\n"
    run("import", write(tmp_path, "p.csv", text))
    assert Item.objects.get(external_id="C-1").parent == Item.objects.get(external_id="P-1")


def test_only_managers_import(cast, tmp_path):
    path = write(tmp_path, "o.csv", HEADER + "S-1,One,3,3,,,new,\n")
    with pytest.raises(CommandError, match="may not import"):
        call_command("register", "import", path, "--as", "carl", stdout=stdio.StringIO())


def test_export_filters_like_the_register_list(cast):
    S.create_item(actor=None, title="Incident one", practice="incident")
    S.create_item(actor=None, title="Change one", practice="change")
    ready_item(cast, title="Incident acting")
    out, _ = run("export", "--format", "json", "--practice", "incident", "--status", "new")
    assert [row["title"] for row in json.loads(out)] == ["Incident one"]
    out, _ = run("export", "--format", "json", "--owner", "olga")
    assert [row["title"] for row in json.loads(out)] == ["Incident acting"]


def test_export_rejects_unknown_filter_values(cast):
    with pytest.raises(CommandError, match="status"):
        run("export", "--status", "nonsense")


def test_export_to_a_file(cast, tmp_path):
    S.create_item(actor=None, title="One")
    target = tmp_path / "out.csv"
    run("export", "--output", str(target))
    assert list(csv.DictReader(target.open()))[0]["title"] == "One"


def test_import_result_summary_as_json(cast, tmp_path):
    path = write(tmp_path, "s.csv", HEADER + "S-1,One,3,3,,,new,\n")
    out, _ = run("import", path, "--json-summary")
    assert json.loads(out)["created"] == 1


def test_housekeeping_wakes_deferred_items(cast):
    item = S.create_item(actor=None, title="Later")
    S.assess_item(
        item,
        actor=cast.manager,
        decision="defer",
        reason="Budget",
        revisit_date=timezone.localdate() + dt.timedelta(days=5),
    )
    day = (timezone.localdate() + dt.timedelta(days=6)).isoformat()
    out, _ = run("housekeeping", "--date", day)
    assert "Deferred items back for assessment: 1" in out
    assert Item.objects.get(pk=item.pk).status == C.Status.NEW


def test_io_service_counts_without_the_command(cast):
    stream = stdio.StringIO("external_id,title\nX-1,One\nX-1,One again\n")
    result = io.import_items(stream, fmt="csv")
    # The second row matches the item the first created (same external_id): no duplicate.
    assert (result.created, result.updated, result.failed) == (1, 1, 0)
    assert Item.objects.get().title == "One again"


def test_housekeeping_task_does_what_the_command_does(cast):
    from tikting.improvement.tasks import housekeeping

    item = S.create_item(actor=None, title="Later")
    S.assess_item(
        item,
        actor=cast.manager,
        decision="defer",
        reason="Budget",
        revisit_date=timezone.localdate() + dt.timedelta(days=5),
    )
    day = (timezone.localdate() + dt.timedelta(days=6)).isoformat()
    assert housekeeping.call(day) == {
        "woken": 1,
        "measured": 0,
        "sustainment": {},
        "announced": {"action_due": 0, "action_overdue": 0, "measurement_due": 0},
    }
    assert Item.objects.get(pk=item.pk).status == C.Status.NEW
