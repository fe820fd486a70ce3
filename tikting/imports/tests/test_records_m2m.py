"""Many-to-many fields (a change's affected CIs) in the generic import and export."""

import datetime as dt
import io
import json

import pytest

from tikting.changes.models import Change
from tikting.cmdb.models import ConfigurationItem
from tikting.core.models import AuditEntry
from tikting.imports.records import export_records, import_records, join_keys, split_keys

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2025, 3, 1, 9, 30, tzinfo=dt.UTC)


@pytest.fixture
def cis(db):
    names = ["mail-01", "core-sw", "=odd;name\\x", "web-02"]
    return {n: ConfigurationItem.objects.create(name=n, ci_class="server") for n in names}


def export(fmt):
    out = io.StringIO()
    export_records("change", out, fmt)
    return out.getvalue()


def run(text, fmt="csv", **kw):
    return import_records("change", io.StringIO(text), fmt=fmt, **kw)


def counts(report):
    c = report.counts["change"]
    return (c.created, c.updated, c.unchanged, c.failed)


def affected(number):
    return sorted(Change.objects.get(number=number).affected_cis.values_list("name", flat=True))


def test_keys_cell_round_trip():
    keys = ["a", "b;c", "d\\e", "=f"]
    assert split_keys(join_keys(keys)) == keys
    assert split_keys(" a ; b ;; ") == ["a", "b"]
    assert split_keys(["x", "y"]) == ["x", "y"] and split_keys("") == [] and split_keys(None) == []
    with pytest.raises(ValueError):
        split_keys({"a": 1})


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_round_trip_with_affected_cis(cis, fmt):
    one = Change.objects.create(number="CHG1", title="Patch", opened_at=T0)
    one.affected_cis.set([cis["mail-01"], cis["core-sw"], cis["=odd;name\\x"]])
    Change.objects.create(number="CHG2", title="None affected", opened_at=T0)
    before = export(fmt)
    if fmt == "csv":
        assert before.splitlines()[0].endswith(",affected_cis")
        assert "'=odd\\;name\\\\x;core-sw;mail-01" in before  # sorted, escaped, formula-safe
    else:
        rows = json.loads(before) if fmt == "json" else [json.loads(x) for x in before.splitlines()]
        assert rows[0]["affected_cis"] == ["=odd;name\\x", "core-sw", "mail-01"]
        assert rows[1]["affected_cis"] == []
    same = run(before, fmt)
    assert same.ok, same.errors
    assert counts(same) == (0, 0, 2, 0)  # unchanged sets: unchanged
    Change.objects.all().delete()
    again = run(before, fmt)
    assert again.ok, again.errors
    assert counts(again) == (2, 0, 0, 0)
    assert affected("CHG1") == ["=odd;name\\x", "core-sw", "mail-01"]
    assert export(fmt) == before


def test_changed_sets_update_and_are_audited(cis):
    run("number,title,opened_at,affected_cis\nCHG1,Patch,2025-03-01T09:30:00Z,mail-01;core-sw\n")
    assert affected("CHG1") == ["core-sw", "mail-01"]
    report = run("number,affected_cis\nCHG1,web-02; mail-01\n")
    assert counts(report) == (0, 1, 0, 0)
    assert affected("CHG1") == ["mail-01", "web-02"]
    change = Change.objects.get(number="CHG1")
    entry = AuditEntry.objects.filter(object_id=str(change.pk), action="update").get()
    assert entry.changes["affected_cis"] == [["core-sw", "mail-01"], ["mail-01", "web-02"]]
    assert change.version == 2
    assert counts(run("number,affected_cis\nCHG1,mail-01;web-02\n")) == (0, 0, 1, 0)
    assert counts(run("number,title\nCHG1,Patch\n")) == (0, 0, 1, 0)  # column absent: set kept
    assert affected("CHG1") == ["mail-01", "web-02"]
    assert counts(run("number,affected_cis\nCHG1,\n")) == (0, 1, 0, 0)  # empty cell: empty set
    assert affected("CHG1") == []


def test_unknown_key_is_a_row_error(cis):
    text = (
        "number,title,opened_at,affected_cis\n"
        "CHG1,Good,2025-03-01T09:30:00Z,mail-01\n"
        "CHG2,Bad,2025-03-01T09:30:00Z,mail-01;nope-99\n"
    )
    report = run(text, file="changes.csv")
    assert counts(report) == (1, 0, 0, 1)
    assert [str(e) for e in report.errors] == [
        "changes.csv:3: affected_cis: No configuration item 'nope-99'."
    ]
    assert list(Change.objects.values_list("number", flat=True)) == ["CHG1"]
    assert affected("CHG1") == ["mail-01"]


def test_ambiguous_name_and_bad_json_value(cis):
    ConfigurationItem.objects.create(name="mail-01", ci_class="server")  # CI names are not unique
    rows = [
        {"number": "CHG1", "title": "A", "opened_at": "2025-03-01", "affected_cis": ["mail-01"]},
        {"number": "CHG2", "title": "B", "opened_at": "2025-03-01", "affected_cis": [{"x": 1}]},
        {"number": "CHG3", "title": "C", "opened_at": "2025-03-01", "affected_cis": ["web-02"]},
    ]
    report = run("[\n" + ",\n".join(json.dumps(r) for r in rows) + "\n]\n", "json")
    assert counts(report) == (1, 0, 0, 2)
    assert {(e.line, e.field) for e in report.errors} == {(2, "affected_cis"), (3, "affected_cis")}
    assert "Several records are named 'mail-01'" in report.errors[0].message
    assert affected("CHG3") == ["web-02"]


def test_dry_run_writes_no_links(cis):
    report = run("number,title,opened_at,affected_cis\nCHG1,Patch,2025-03-01,mail-01\n", dry_run=True)
    assert counts(report) == (1, 0, 0, 0)
    assert not Change.objects.exists()
    assert not Change.affected_cis.through.objects.exists()
