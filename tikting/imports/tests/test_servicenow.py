"""The ServiceNow incident event log importer: a real 232-row sample, and the whole file on demand."""

import datetime as dt
import os
import shutil
import statistics
import zipfile
from pathlib import Path

import pytest
from django.db.models import Count, F, Q

from tikting.accounts.models import Team
from tikting.changes.models import Change
from tikting.cmdb.models import ConfigurationItem
from tikting.core.models import AuditEntry
from tikting.imports.servicenow import SOURCE, import_servicenow
from tikting.incidents.models import Incident, IncidentActivity
from tikting.problems.models import Problem

SAMPLE = Path(__file__).parent / "fixtures" / "servicenow" / "incident_event_log_sample.csv"
FULL = Path("/work/shared/data/uci_incident_event_log/incident_event_log.zip")
UTC = dt.UTC

pytestmark = pytest.mark.django_db


def counts(report):
    return {kind: (c.created, c.updated, c.unchanged, c.failed) for kind, c in report.counts.items()}


def test_sample_counts_and_links():
    report = import_servicenow(SAMPLE)
    assert report.ok, report.errors
    assert counts(report) == {
        "group": (22, 0, 0, 0),
        "ci": (1, 0, 0, 0),
        "problem": (3, 0, 0, 0),
        "change": (3, 0, 0, 0),
        "incident": (33, 0, 0, 0),
        "activity": (232, 0, 0, 0),
    }
    assert Incident.objects.count() == 33
    assert Incident.objects.filter(source=SOURCE).exclude(external_key=F("number")).count() == 0
    assert IncidentActivity.objects.count() == 232
    # Stubs, keyed by the raw value (double spaces kept).
    problem = Problem.objects.get(external_key="Problem ID  2")
    assert problem.number == "Problem ID  2" and problem.source == SOURCE and problem.raw["stub"]
    assert set(problem.incidents.values_list("number", flat=True)) == {
        "INC0000057",
        "INC0000073",
        "INC0000083",
    }
    # The stub opens with the first incident that names it.
    assert problem.opened_at == dt.datetime(2016, 2, 29, 6, 10, tzinfo=UTC)
    inc = Incident.objects.get(number="INC0000388")
    assert inc.problem is not None and inc.problem.number == "Problem ID  17"
    assert inc.related_change is not None and inc.related_change.number == "CHG0000132"
    assert inc.caused_by_change == inc.related_change
    assert Change.objects.get(number="CHG0000647").related_incidents.get().number == "INC0000084"
    ci = ConfigurationItem.objects.get(name="cmdb_ci 31")
    assert ci.source == SOURCE and ci.external_key == "cmdb_ci 31"
    assert set(ci.incidents.values_list("number", flat=True)) == {"INC0000820", "INC0000822"}
    assert Team.objects.filter(source=SOURCE).count() == 22
    # One audit row per imported incident.
    assert AuditEntry.objects.filter(message=f"Imported from {SOURCE}").count() == 33


def test_final_row_values():
    import_servicenow(SAMPLE)
    inc = Incident.objects.get(number="INC0000135")
    # sys_mod_count 7 appears twice (Active on line 142, Closed on line 149): the later line wins.
    assert inc.status == "closed"
    assert inc.raw["incident_state"] == "Closed" and inc.raw["sys_mod_count"] == "7"
    assert inc.opened_at == dt.datetime(2016, 2, 29, 9, 45, tzinfo=UTC)
    assert inc.resolved_at == dt.datetime(2016, 2, 29, 16, 17, tzinfo=UTC)
    assert inc.closed_at == dt.datetime(2016, 3, 5, 17, 0, tzinfo=UTC)
    assert (inc.priority, inc.impact, inc.urgency) == (3, 2, 2)
    assert inc.category == "Category 53"
    assert inc.assignment_group.name == "Group 70"
    assert inc.assigned_to is None and inc.raw["assigned_to"] == "Resolver 216"
    assert inc.contact_channel == "phone"
    assert inc.closure_code == "code 9"
    assert inc.source == SOURCE and inc.external_key == "INC0000135"
    assert inc.first_contact_resolution is None and inc.major is False and inc.responded_at is None

    p1 = Incident.objects.get(number="INC0000388")
    assert (p1.priority, p1.impact, p1.urgency) == (1, 1, 1)
    assert p1.source_sla_met is False


def test_question_marks_are_null_and_raw_is_verbatim():
    import_servicenow(SAMPLE)
    unresolved = Incident.objects.get(number="INC0000093")
    assert unresolved.resolved_at is None and unresolved.raw["resolved_at"] == "?"
    no_group = Incident.objects.get(number="INC0000358")
    assert no_group.assignment_group is None and no_group.raw["assignment_group"] == "?"
    assert Incident.objects.filter(resolved_at__isnull=True).count() == 3
    assert Incident.objects.filter(ci__isnull=True).count() == 31
    inc = Incident.objects.get(number="INC0000057")
    assert inc.raw["opened_by"].count("  ") == 1  # "Opened by  N": double space kept
    assert len(inc.raw) == 36


def test_made_sla_from_the_final_row_and_channels():
    import_servicenow(SAMPLE)
    assert Incident.objects.filter(source_sla_met=True).count() == 21
    assert Incident.objects.filter(source_sla_met=False).count() == 12
    # INC0000084 starts with made_sla true and ends false: the final row counts.
    assert Incident.objects.get(number="INC0000084").source_sla_met is False
    channels = dict(
        Incident.objects.values_list("contact_channel")
        .annotate(n=Count("id"))
        .values_list("contact_channel", "n")
    )
    assert channels == {"phone": 27, "email": 3, "portal": 1, "ivr": 1, "other": 1}


def test_history_as_activities():
    import_servicenow(SAMPLE)
    inc = Incident.objects.get(number="INC0028089")
    states = list(inc.activities.order_by("external_key").values_list("activity_type", flat=True))
    assert states == ["New", "-100", "-100", "Resolved", "Resolved", "Closed"]
    # The -100 state: activity keeps it; the incident's status comes from the final row.
    assert inc.status == "closed"
    first = inc.activities.get(external_key="INC0028089/1")
    assert first.raw["line"] == 213 and first.raw["sys_mod_count"] == "0"
    assert first.at == dt.datetime(2016, 5, 10, 22, 9, tzinfo=UTC)


def test_reimport_is_idempotent_and_updates_changed_incidents():
    import_servicenow(SAMPLE)
    again = import_servicenow(SAMPLE)
    assert again.ok
    assert counts(again)["incident"] == (0, 0, 33, 0)
    assert counts(again)["activity"] == (0, 0, 232, 0)
    assert counts(again)["problem"] == (0, 0, 3, 0)
    assert counts(again)["group"] == (0, 0, 22, 0)
    assert Incident.objects.count() == 33 and IncidentActivity.objects.count() == 232
    assert Problem.objects.count() == 3 and Change.objects.count() == 3
    # A local edit is put back by the next import (the file is the source of truth).
    Incident.objects.filter(number="INC0000057").update(priority=1, category="edited")
    third = import_servicenow(SAMPLE)
    assert counts(third)["incident"] == (0, 1, 32, 0)
    inc = Incident.objects.get(number="INC0000057")
    assert (inc.priority, inc.category, inc.version) == (3, "Category 20", 2)


def test_dry_run_writes_nothing():
    report = import_servicenow(SAMPLE, dry_run=True)
    assert report.dry_run and report.ok
    assert counts(report)["incident"] == (33, 0, 0, 0)
    assert Incident.objects.count() == 0
    assert Problem.objects.count() == Change.objects.count() == Team.objects.count() == 0
    assert IncidentActivity.objects.count() == 0 and AuditEntry.objects.count() == 0


def test_zip_and_bad_rows(tmp_path):
    lines = SAMPLE.read_text().splitlines()
    # Break the final row of INC0000045 (line 5: two bad fields) and a middle row's cell count (line 3).
    header = lines[0].split(",")
    final = lines[4].split(",")
    assert final[0] == "INC0000045" and final[1] == "Closed"
    final[header.index("priority")] = "High"
    final[header.index("opened_at")] = "2016-02-29"
    lines[4] = ",".join(final)
    lines[2] = lines[2] + ",extra"
    bad = tmp_path / "log.csv"
    bad.write_text("\n".join(lines) + "\n")
    archive = tmp_path / "log.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(bad, "incident_event_log.csv")
    report = import_servicenow(archive)
    assert not report.ok
    found = {(e.line, e.field) for e in report.errors}
    assert (3, "row") in found
    assert (5, "priority") in found and (5, "opened_at") in found
    assert all(e.file == "log.zip:incident_event_log.csv" for e in report.errors)
    assert counts(report)["incident"] == (32, 0, 0, 1)
    assert not Incident.objects.filter(number="INC0000045").exists()
    assert Incident.objects.count() == 32


def test_missing_columns(tmp_path):
    bad = tmp_path / "x.csv"
    bad.write_text("number,foo\nINC1,1\n")
    report = import_servicenow(bad)
    assert [(e.line, e.field) for e in report.errors] == [(1, "header")]
    assert Incident.objects.count() == 0


@pytest.mark.skipif(os.environ.get("TIKTING_FULL_DATA") != "1", reason="set TIKTING_FULL_DATA=1")
@pytest.mark.skipif(not FULL.exists(), reason="the data set is not in ../shared/data")
def test_full_file_reference_figures(tmp_path):
    """docs/datasets.md §2, reference figures, computed from what the import stored."""
    path = tmp_path / FULL.name
    shutil.copy(FULL, path)
    report = import_servicenow(path)
    assert report.ok, report.errors[:5]
    assert counts(report)["incident"] == (24918, 0, 0, 0)
    assert counts(report)["activity"] == (141712, 0, 0, 0)
    qs = Incident.objects.filter(source=SOURCE)
    assert qs.count() == 24918
    assert qs.filter(status="closed").count() == 24918
    assert qs.filter(resolved_at__isnull=False).count() == 23362
    assert qs.filter(source_sla_met=True).count() == 15803
    assert qs.filter(source_sla_met=False).count() == 9115
    by_priority = dict(qs.filter(source_sla_met=True).values_list("priority").annotate(n=Count("id")))
    assert by_priority == {1: 5, 2: 2, 3: 15145, 4: 651}
    assert dict(qs.values_list("priority").annotate(n=Count("id"))) == {1: 270, 2: 408, 3: 23466, 4: 774}
    assert qs.filter(reassignment_count__gt=0).count() == 11369
    assert qs.filter(reopen_count__gt=0).count() == 275
    assert sum(qs.values_list("reopen_count", flat=True)) == 331
    assert qs.filter(problem__isnull=False).count() == 380
    assert qs.filter(related_change__isnull=False).count() == 176
    assert qs.filter(caused_by_change__isnull=False).count() == 3
    assert qs.filter(raw__knowledge="true").count() == 3551
    channels = dict(qs.values_list("contact_channel").annotate(n=Count("id")))
    assert channels == {"phone": 24688, "portal": 158, "email": 59, "ivr": 9, "other": 4}
    assert Problem.objects.filter(source=SOURCE).count() == 244
    hours = [
        (r - o).total_seconds() / 3600
        for o, r in qs.filter(resolved_at__isnull=False).values_list("opened_at", "resolved_at")
        if r is not None  # (always: the filter)
    ]
    assert round(statistics.mean(hours), 2) == 178.17
    assert round(statistics.median(hours), 2) == 22.10
    assert qs.filter(Q(opened_at__year=2016, opened_at__month=3)).count() == 8995
    assert IncidentActivity.objects.filter(activity_type="-100").count() == 5
    again = import_servicenow(path)
    assert counts(again)["incident"] == (0, 0, 24918, 0)
