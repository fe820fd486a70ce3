"""`tikting import` and `tikting export` through call_command."""

import io
import json
import sys
import types
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tikting.imports.base import ImportReport
from tikting.incidents.models import Incident

SAMPLE = Path(__file__).parent / "fixtures" / "servicenow" / "incident_event_log_sample.csv"

pytestmark = pytest.mark.django_db


def call(*args):
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
    except CommandError as exc:
        return exc, out.getvalue(), err.getvalue()
    return None, out.getvalue(), err.getvalue()


def test_servicenow_summary_table():
    exc, out, err = call("import", "servicenow", str(SAMPLE))
    assert exc is None, err
    lines = out.splitlines()
    assert lines[0].split() == ["kind", "created", "updated", "unchanged", "failed"]
    table = {line.split()[0]: line.split()[1:] for line in lines[1:-1]}
    assert table["incident"] == ["33", "0", "0", "0"]
    assert table["activity"] == ["232", "0", "0", "0"]
    assert "servicenow-uci: 0 error(s)" in lines[-1]
    assert Incident.objects.count() == 33


def test_servicenow_json_and_dry_run():
    exc, out, _err = call("import", "servicenow", str(SAMPLE), "--dry-run", "--json")
    assert exc is None
    data = json.loads(out)
    assert data["dry_run"] is True and data["error_count"] == 0
    assert data["counts"]["incident"]["created"] == 33
    assert Incident.objects.count() == 0


def test_record_import_errors_exit_code_and_limit(tmp_path):
    rows = ["number,opened_at,priority"]
    rows += [f"INC{i},2025-03-01T10:00:00Z,{9 if i % 2 else 2}" for i in range(120)]
    path = tmp_path / "incidents.csv"
    path.write_text("\n".join(rows) + "\n")
    exc, out, err = call("import", "incident", str(path), "--source", "legacy")
    assert exc is not None and exc.returncode == 1
    errors = err.splitlines()
    assert errors[0].startswith("incidents.csv:3: priority: ")
    assert len(errors) == 51 and errors[-1] == "… and 10 more error(s)."
    assert out.splitlines()[1].split() == ["incident", "60", "0", "0", "60"]
    assert Incident.objects.filter(source="legacy").count() == 60
    exc, out, _err = call("import", "incident", str(path), "--json", "--source", "legacy")
    assert exc.returncode == 1
    data = json.loads(out)
    assert data["counts"]["incident"] == {"created": 0, "updated": 0, "unchanged": 60, "failed": 60}
    assert data["error_count"] == 60 and data["errors"][0]["line"] == 3


def test_record_import_formats(tmp_path):
    path = tmp_path / "changes.data"
    path.write_text('{"number": "CHG9", "opened_at": "2025-03-01T10:00:00Z", "change_type": "standard"}\n')
    exc, out, _err = call("import", "change", str(path), "--format", "jsonl")
    assert exc is None
    assert "change" in out
    from tikting.changes.models import Change

    change = Change.objects.get(number="CHG9")
    assert change.source == "jsonl" and change.change_type == "standard"


def test_unknown_kind_and_missing_file(tmp_path):
    exc, _out, _err = call("import", "tickets", str(SAMPLE))
    assert "Unknown kind 'tickets'" in str(exc)
    exc, _out, _err = call("import", "incident", str(tmp_path / "nope.csv"))
    assert "No such file" in str(exc)


def test_bpic2014_missing_module(monkeypatch, tmp_path):
    import importlib

    real = importlib.import_module

    def fake(name, *args):
        if name == "tikting.imports.bpic2014":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", fake)
    exc, _out, _err = call("import", "bpic2014", str(tmp_path))
    assert exc is not None and "not installed in this version" in str(exc)


def test_bpic2014_delegates(monkeypatch, tmp_path):
    seen: dict[str, object] = {}

    def import_bpic2014(path, *, dry_run=False, progress=None):
        seen.update(path=path, dry_run=dry_run)
        report = ImportReport(source="bpic2014", dry_run=dry_run)
        report.count("incident", "created", 5)
        return report.finish()

    module = types.ModuleType("tikting.imports.bpic2014")
    monkeypatch.setattr(module, "import_bpic2014", import_bpic2014, raising=False)
    monkeypatch.setitem(sys.modules, "tikting.imports.bpic2014", module)
    exc, out, _err = call("import", "bpic2014", str(tmp_path), "--dry-run", "--json")
    assert exc is None
    assert seen == {"path": str(tmp_path), "dry_run": True}
    assert json.loads(out)["counts"]["incident"]["created"] == 5


def test_export_command(tmp_path):
    call("import", "servicenow", str(SAMPLE))
    target = tmp_path / "out.jsonl"
    exc, _out, err = call("export", "incident", "--output", str(target), "--source", "servicenow-uci")
    assert exc is None and "Exported 33 incident record(s)" in err
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert len(rows) == 33 and rows[0]["source"] == "servicenow-uci"
    exc, out, _err = call("export", "problem", "--format", "csv")
    assert exc is None and out.splitlines()[0].startswith("source,external_key,raw,number")
    assert len(out.splitlines()) == 4
    # The export reads back unchanged.
    exc, out, _err = call("import", "incident", str(target), "--json")
    assert exc is None and json.loads(out)["counts"]["incident"]["unchanged"] == 33
    exc, _out, _err = call("export", "nothing")
    assert "Unknown kind" in str(exc)


def test_sla_import_says_it_applied_the_definitions(tmp_path):
    import datetime as dt

    opened = dt.datetime(2025, 3, 3, 9, tzinfo=dt.UTC)
    Incident.objects.create(number="INC1", opened_at=opened, priority=4, status="new")
    path = tmp_path / "slas.csv"
    path.write_text("name,priority,resolution_minutes\nP4 24x7,4,120\n")
    exc, out, err = call("import", "sla", str(path))
    assert exc is None, err
    assert "SLA definitions applied to 1 incident(s)." in out
    assert Incident.objects.get().resolution_due_at == opened + dt.timedelta(hours=2)
