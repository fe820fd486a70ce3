"""The BPI Challenge 2014 importer, on synthetic files in the data set's exact format.

The fixtures (tests/fixtures/bpic2014/) are invented rows, not copies of the data set: same
headers, separators, line ends, encodings and quirks (padding rows and columns, #N/B,
#MULTIVALUE, decimal comma, `5 - Very Low`, BOMs in EventLog ids, change rows per CI, links to
missing incidents and changes, the repeated DST hour), plus a few deliberately bad rows.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import shutil
import zipfile
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from tikting.accounts.models import Team
from tikting.changes.models import Change
from tikting.cmdb.models import ConfigurationItem, Service
from tikting.imports.bpic2014 import find_files, import_bpic2014, parse_datetime, parse_level
from tikting.incidents.models import Incident, IncidentActivity, Interaction
from tikting.knowledge.models import Article

FIXTURES = Path(__file__).parent / "fixtures" / "bpic2014"
REAL_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "bpic2014"
AMS = ZoneInfo("Europe/Amsterdam")
ZIPS = {
    "detail_incident.zip": "Detail Incident.csv",
    "detail_interaction.zip": "Detail Interaction.csv",
    "detail_change.zip": "Detail Change.csv",
    "EventLog_incident_activity_derived.zip": "EventLog.csv",
}

pytestmark = pytest.mark.django_db


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=AMS)


@pytest.fixture
def zipped(tmp_path: Path) -> Path:
    """The fixtures packed as the data set ships them: one zip per CSV, plus unrelated files."""
    for zip_name, member in ZIPS.items():
        with zipfile.ZipFile(tmp_path / zip_name, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.write(FIXTURES / member, member)
    (tmp_path / "SOURCE.md").write_text("not data")
    (tmp_path / "other.csv").write_text("a;b\n1;2\n")
    return tmp_path


def counts(report) -> dict[str, tuple[int, int, int, int]]:
    return {k: (c.created, c.updated, c.unchanged, c.failed) for k, c in report.counts.items()}


EXPECTED_FIRST = {
    "service": (4, 0, 0, 0),
    "ci": (6, 0, 0, 0),
    "article": (3, 0, 0, 0),
    "change": (3, 0, 0, 1),
    "incident": (4, 0, 0, 2),
    "interaction": (4, 0, 0, 2),
    "group": (4, 0, 0, 0),
    "activity": (9, 0, 0, 2),
}


def test_files_are_recognised_by_header(zipped: Path, tmp_path: Path):
    files = find_files(zipped)
    assert {k: f.label for k, f in files.items()} == {
        "incident": "detail_incident.zip/Detail Incident.csv",
        "interaction": "detail_interaction.zip/Detail Interaction.csv",
        "change": "detail_change.zip/Detail Change.csv",
        "activity": "EventLog_incident_activity_derived.zip/EventLog.csv",
    }
    renamed = tmp_path / "renamed"
    renamed.mkdir()
    for i, name in enumerate(ZIPS.values()):
        shutil.copy(FIXTURES / name, renamed / f"file{i}.csv")
    assert sorted(find_files(renamed)) == ["activity", "change", "incident", "interaction"]


def test_import_from_zips_maps_every_field(zipped: Path):
    progress: list[tuple[int, str]] = []
    report = import_bpic2014(zipped, progress=lambda n, label: progress.append((n, label)))

    assert counts(report) == EXPECTED_FIRST
    assert progress and all(n > 0 for n, _ in progress)
    assert {str(e) for e in report.errors} == {
        "detail_incident.zip/Detail Incident.csv:5: Open Time: not a date/time: '31/02/2013 10:00:00'",
        "detail_incident.zip/Detail Incident.csv:6: Priority: not a level 1-5: '9'",
        "detail_interaction.zip/Detail Interaction.csv:6: First Call Resolution: expected Y or N: 'X'",
        "detail_interaction.zip/Detail Interaction.csv:7: Handle Time (secs): not a whole number: 'abc'",
        "detail_change.zip/Detail Change.csv:7: Change record Open Time: missing",
        "EventLog_incident_activity_derived.zip/EventLog.csv:10: Incident ID: "
        "IM0000001 is not an imported incident",
        "EventLog_incident_activity_derived.zip/EventLog.csv:11: DateStamp: not a date/time: 'not a date'",
    }
    assert report.error_count == 7 and not report.dry_run

    # Services, CIs, groups, articles.
    assert set(Service.objects.filter(source="bpic2014").values_list("name", flat=True)) == {
        "WBS900001",
        "WBS900002",
        "WBS900003",
        "WBS900004",
    }
    cis = {ci.name: ci for ci in ConfigurationItem.objects.select_related("service")}
    assert {n: (c.ci_class, c.ci_type, c.service and c.service.name) for n, c in cis.items()} == {
        "WBA900001": ("application", "application / Web Based Application", "WBS900001"),
        "LAP900001": ("workstation", "computer / Laptop", "WBS900002"),
        "WSR900001": ("server", "computer / Windows Server", "WBS900001"),  # the known type wins
        "SBA900001": ("application", "application / Server Based Application", "WBS900002"),
        "NET900001": ("network", "networkcomponents / Switch", "WBS900003"),
        "HMD900001": ("other", "hardware / MigratieDummy", "WBS900004"),
    }
    assert all(c.source == "bpic2014" and c.external_key == n for n, c in cis.items())
    assert cis["WSR900001"].raw["seen"]["CI Type"] == {"": 2, "computer": 2}
    assert set(Team.objects.filter(source="bpic2014").values_list("name", flat=True)) == {
        "TEAM9000",
        "TEAM9001",
        "TEAM9002",
        "TEAM9003",
    }
    # uses = imported incidents + interactions naming the article (bad rows do not count)
    assert dict(Article.objects.values_list("number", "uses")) == {
        "KM9000001": 4,  # IM9000001, IM9000003, SD9000001, SD9000003
        "KM9000002": 2,  # IM9000002, IM9000006 (SD9000006 was rejected)
        "KM9000003": 2,
    }

    # Changes: collapsed per Change ID, first row wins, CI rows → links (duplicates collapsed).
    c1, c2, c3 = (Change.objects.get(number=n) for n in ("C90000001", "C90000002", "C90000003"))
    assert not Change.objects.filter(number="C90000004").exists()
    assert (c1.change_type, c1.status, c1.outcome, c1.risk) == (
        "standard",
        "closed",
        "caused_incident",
        "Minor Change",
    )
    assert c1.closed_at == local(2013, 8, 31, 10, 0)  # the first row's close time (quirk 9)
    assert (c1.planned_start, c1.actual_end) == (local(2013, 8, 30, 7, 0), local(2013, 8, 30, 8, 0))
    assert sorted(c1.affected_cis.values_list("name", flat=True)) == ["WBA900001", "WSR900001"]
    assert c1.ci.name == "WBA900001" and c1.service.name == "WBS900001"
    assert c1.raw["Change Type"] == "Standard Change Type 12" and c1.raw["CAB-approval needed"] == "N"
    # C90000002: no count of related incidents, but IM9000006 names it → caused_incident
    assert (c2.change_type, c2.status, c2.outcome) == ("normal", "new", "caused_incident")
    assert c2.actual_start is None and c2.closed_at is None
    assert (c3.change_type, c3.outcome, c3.status) == ("emergency", "", "closed")
    # the repeated hour of 27 Oct 2013 (DST end) is read with fold=0: the first, CEST, 02:05
    assert c3.opened_at == dt.datetime(2013, 10, 27, 0, 5, tzinfo=dt.UTC)

    # Incidents.
    i1 = Incident.objects.get(number="IM9000001")
    assert (i1.source, i1.external_key, i1.status) == ("bpic2014", "IM9000001", "closed")
    assert (i1.priority, i1.impact, i1.urgency, i1.category) == (4, 4, 4, "incident")
    assert i1.opened_at == local(2013, 2, 5, 13, 32, 57)
    assert i1.resolved_at == local(2013, 2, 6, 10, 0, 0) and i1.closed_at == local(2013, 2, 6, 10, 0, 30)
    assert (i1.ci.name, i1.caused_by_ci.name, i1.service.name) == ("WBA900001", "WBA900001", "WBS900001")
    assert (i1.reassignment_count, i1.reopen_count, i1.closure_code) == (2, 0, "Software")
    assert i1.related_change == c1 and i1.caused_by_change == c1
    assert i1.knowledge_article is not None and i1.knowledge_article.number == "KM9000001"
    assert i1.raw["Handle Time (Hours)"] == "1,5" and i1.raw["Closure Code"] == "SOFTWARE"
    assert len(i1.raw) == 28  # the 50 unnamed padding columns are dropped
    assert i1.assignment_group.name == "TEAM9002"  # last Reassignment by time, not by file order
    assert i1.responded_at is None and i1.first_contact_resolution is None and not i1.major

    i2 = Incident.objects.get(number="IM9000002")
    assert (i2.status, i2.urgency, i2.reassignment_count, i2.reopen_count) == ("in_progress", 5, None, 1)
    assert i2.resolved_at is None and i2.closure_code == "Software"
    assert i2.related_change is None and i2.raw["Related Change"] == "#MULTIVALUE"
    assert i2.caused_by_ci is None and i2.raw["CI Name (CBy)"] == "#N/B"
    assert i2.assignment_group.name == "TEAM9003"  # no assignment: the Closed activity's group

    i3 = Incident.objects.get(number="IM9000003")
    assert i3.related_change is None and i3.raw["Related Change"] == "C99999999"  # not in the extract
    assert i3.ci.ci_class == "server" and i3.assignment_group is None
    assert i3.opened_at == dt.datetime(2013, 10, 27, 0, 30, tzinfo=dt.UTC)
    assert Incident.objects.get(number="IM9000006").closure_code == "Gebruikersfout"
    assert not Incident.objects.filter(number__in=["IM9000004", "IM9000005"]).exists()

    # Interactions.
    s1 = Interaction.objects.get(number="SD9000001")
    assert (s1.incident, s1.first_contact_resolution, s1.handle_time_seconds) == (i1, False, 239)
    assert s1.opened_at == local(2013, 2, 5, 13, 20) and s1.closed_at == local(2013, 2, 5, 13, 30)
    assert s1.knowledge_article is not None
    assert (s1.ci.name, s1.service.name, s1.knowledge_article.number, s1.priority) == (
        "WBA900001",
        "WBS900001",
        "KM9000001",
        4,
    )
    s2 = Interaction.objects.get(number="SD9000002")
    assert s2.incident is None and s2.first_contact_resolution is True and s2.ci.ci_class == "network"
    s3 = Interaction.objects.get(number="SD9000003")
    assert s3.incident is None and s3.raw["Related Incident"] == "#MULTIVALUE"
    s4 = Interaction.objects.get(number="SD9000004")
    assert s4.incident is None and s4.raw["Related Incident"] == "IM0000001"
    assert s4.opened_at == local(2011, 9, 9, 9, 23)

    # Activities: BOM stripped from the id, keyed incident|type|time|group.
    acts = list(IncidentActivity.objects.filter(incident=i1).values_list("activity_type", "at"))
    assert [a for a, _ in acts] == ["Open", "Assignment", "Reassignment", "Reassignment", "Closed"]
    opened = IncidentActivity.objects.get(incident=i2, activity_type="Open")
    assert opened.external_key == "IM9000002|Open|2013-03-13 09:00:02|TEAM9000"
    assert opened.raw["Incident ID"] == "IM9000002" and opened.raw["CI Subtype (CBy)"] == "#N/B"
    assert opened.assignment_group.name == "TEAM9000" and opened.at == local(2013, 3, 13, 9, 0, 2)


def test_reimport_is_idempotent_and_updates_changed_rows(zipped: Path, tmp_path: Path):
    import_bpic2014(zipped)
    totals = {
        m: m.objects.count()
        for m in (Service, ConfigurationItem, Article, Change, Incident, Interaction, IncidentActivity, Team)
    }
    links = Change.affected_cis.through.objects.count()
    again = import_bpic2014(zipped)
    assert counts(again) == {
        k: (0, 0, created, failed) for k, (created, _, _, failed) in EXPECTED_FIRST.items()
    }
    assert {m: m.objects.count() for m in totals} == totals
    assert Change.affected_cis.through.objects.count() == links

    # Extracted CSVs, one incident edited: that one is updated, the rest unchanged.
    edited = tmp_path / "edited"
    edited.mkdir()
    for name in ZIPS.values():
        shutil.copy(FIXTURES / name, edited / name)
    path = edited / "Detail Incident.csv"
    path.write_bytes(path.read_bytes().replace(b"IM9000006;Closed;5;5;5", b"IM9000006;Closed;5;5;4"))
    version = Incident.objects.get(number="IM9000006").version
    third = import_bpic2014(edited)
    assert counts(third)["incident"] == (0, 1, 3, 2)
    changed = Incident.objects.get(number="IM9000006")
    assert changed.priority == 4 and changed.version == version + 1
    assert changed.assignment_group.name == "TEAM9001"  # kept: the activity log sets it
    assert Incident.objects.count() == totals[Incident]


def test_dry_run_writes_nothing(zipped: Path):
    report = import_bpic2014(zipped, dry_run=True)
    assert report.dry_run and counts(report) == EXPECTED_FIRST
    for model in (Service, ConfigurationItem, Article, Change, Incident, Interaction, IncidentActivity, Team):
        assert not model.objects.exists(), model


def test_existing_services_and_teams_are_reused_and_other_sources_kept(zipped: Path):
    Service.objects.create(name="WBS900001", source="manual")
    Team.objects.create(name="TEAM9001", source="manual")
    Incident.objects.create(number="IM9000006", opened_at=local(2020, 1, 1), source="demo", external_key="x")
    report = import_bpic2014(zipped)
    assert counts(report)["service"] == (3, 0, 1, 0)
    assert counts(report)["group"] == (3, 0, 1, 0)
    assert Service.objects.get(name="WBS900001").source == "manual"
    # the number is taken by another source's record: reported, not overwritten
    assert counts(report)["incident"] == (3, 0, 0, 3)
    assert any(e.field == "number" and "IM9000006" in e.message for e in report.errors)
    assert Incident.objects.get(number="IM9000006").source == "demo"


def test_missing_folder_and_empty_folder(tmp_path: Path):
    assert import_bpic2014(tmp_path / "nope").errors[0].field == "path"
    report = import_bpic2014(tmp_path)
    assert report.error_count == 1 and report.counts == {}


def test_parsers():
    assert parse_level("5 - Very Low", "Urgency") == 5
    with pytest.raises(Exception, match="level"):
        parse_level("12", "Urgency")
    assert parse_datetime("9-9-2011 9:23", AMS, "x") == local(2011, 9, 9, 9, 23)
    assert parse_datetime("05/02/2012 13:32:57", AMS, "x") == local(2012, 2, 5, 13, 32, 57)
    assert parse_datetime("2013-10-04 10:59:40", AMS, "x") == local(2013, 10, 4, 10, 59, 40)
    assert parse_datetime("", AMS, "x") is None


@pytest.mark.skipif(
    os.environ.get("TIKTING_FULL_DATA") != "1" or not REAL_DATA.is_dir(),
    reason="full BPIC 2014 import: set TIKTING_FULL_DATA=1 (needs ../shared/data/bpic2014)",
)
def test_full_data_set_reference_figures():
    report = import_bpic2014(REAL_DATA)
    assert report.error_count == 0, report.errors[:5]
    created = {k: c.created for k, c in report.counts.items()}
    assert created["incident"] == 46_606
    assert created["interaction"] == 147_004
    assert created["change"] == 18_000
    assert created["activity"] == 466_660
    assert created["group"] == 242
    assert created["ci"] == 15_133
    bpic = Incident.objects.filter(source="bpic2014")
    assert bpic.filter(status="closed").count() == 46_597
    assert bpic.filter(status="in_progress").count() == 9
    assert [bpic.filter(priority=p).count() for p in range(1, 6)] == [3, 697, 6_703, 22_717, 16_486]
    assert bpic.filter(resolved_at__isnull=False).count() == 44_826
    assert bpic.filter(reopen_count=1).count() == 2_284
    assert bpic.filter(reassignment_count__gt=0).count() == 19_137
    interactions = Interaction.objects.filter(source="bpic2014")
    assert interactions.filter(first_contact_resolution=True).count() == 93_996
    assert interactions.filter(incident__isnull=False).count() == 51_259
    changes = Change.objects.filter(source="bpic2014")
    assert changes.filter(change_type="emergency").count() == 35
    assert IncidentActivity.objects.filter(activity_type="Reassignment").count() == 51_958
    assert IncidentActivity.objects.filter(activity_type="Reopen").count() == 2_428


def test_original_activity_file_format(tmp_path: Path):
    """The original Detail_Incident_Activity.csv (`;`, day-first dates, an activity number) is
    recognised by its header too; its activity number is the key."""
    shutil.copy(FIXTURES / "Detail Incident.csv", tmp_path / "Detail Incident.csv")
    (tmp_path / "Detail_Incident_Activity.csv").write_bytes(
        b"Incident ID;DateStamp;IncidentActivity_Number;IncidentActivity_Type;Assignment Group;"
        b"KM number;Interaction ID\r\n"
        b"IM9000001;05-02-2013 13:33:00;001A3689763;Open;TEAM9000;KM9000001;SD9000001\r\n"
        b"IM9000001;05-02-2013 13:40:00;001A3689764;Assignment;TEAM9001;KM9000001;SD9000001\r\n"
    )
    report = import_bpic2014(tmp_path)
    assert counts(report)["activity"] == (2, 0, 0, 0)
    act = IncidentActivity.objects.get(external_key="001A3689764")
    assert (act.activity_type, act.at, act.assignment_group.name) == (
        "Assignment",
        local(2013, 2, 5, 13, 40),
        "TEAM9001",
    )
    assert Incident.objects.get(number="IM9000001").assignment_group.name == "TEAM9001"


# --- raw-only values: warnings, never the row's loss ---------------------------------------------


@pytest.fixture
def bad_raw_only(tmp_path: Path) -> Path:
    """The fixtures with IM9000001's Handle Time (Hours) and # Related Changes unreadable."""
    for member in ZIPS.values():
        shutil.copy(FIXTURES / member, tmp_path / member)
    path = tmp_path / "Detail Incident.csv"
    text = path.read_bytes().decode("latin-1")
    good = ";06/02/2013 10:00:30;1,5;SOFTWARE;1;SD9000001;;1;C90000001;"
    assert text.count(good) == 1
    path.write_bytes(
        text.replace(good, ";06/02/2013 10:00:30;1,5 h;SOFTWARE;1;SD9000001;;one;C90000001;").encode(
            "latin-1"
        )
    )
    return tmp_path


def test_bad_raw_only_value_is_a_warning_and_the_row_is_kept(bad_raw_only: Path):
    report = import_bpic2014(bad_raw_only)
    assert counts(report)["incident"] == EXPECTED_FIRST["incident"]  # nothing more failed
    assert report.error_count == 7
    label = "Detail Incident.csv"
    assert [str(w) for w in report.warnings] == [
        f"{label}:2: Handle Time (Hours): warning: not a number: '1,5 h' (kept in raw only)",
        f"{label}:2: # Related Changes: warning: not a whole number: 'one' (kept in raw only)",
    ]
    assert report.warning_count == 2 and report.as_dict()["warning_count"] == 2
    assert report.as_dict()["warnings"][0] == {
        "file": label,
        "line": 2,
        "field": "Handle Time (Hours)",
        "message": "not a number: '1,5 h' (kept in raw only)",
    }
    i1 = Incident.objects.get(number="IM9000001")
    assert i1.raw["Handle Time (Hours)"] == "1,5 h" and i1.raw["# Related Changes"] == "one"
    assert i1.priority == 4  # the mapped fields are imported as usual
    again = import_bpic2014(bad_raw_only)  # idempotent, and warned again
    assert counts(again)["incident"] == (0, 0, 4, 2) and again.warning_count == 2


def test_command_prints_warnings(bad_raw_only: Path):
    import io
    import json

    from django.core.management import CommandError, call_command

    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError):  # the fixtures' deliberate bad rows: exit code 1
        call_command("import", "bpic2014", str(bad_raw_only), "--no-progress", stdout=out, stderr=err)
    assert "Detail Incident.csv:2: Handle Time (Hours): warning: not a number: '1,5 h'" in err.getvalue()
    assert "7 error(s), 2 warning(s)" in out.getvalue()
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("import", "bpic2014", str(bad_raw_only), "--json", stdout=out, stderr=io.StringIO())
    summary = json.loads(out.getvalue())
    assert summary["warning_count"] == 2 and summary["warnings"][1]["field"] == "# Related Changes"


def test_import_writes_the_sla_fields_with_the_rows(zipped: Path):
    from tikting.slas.models import SLADefinition

    SLADefinition.objects.create(name="P4", priority=4, resolution_minutes=60)
    SLADefinition.objects.create(name="P2", priority=2, resolution_minutes=600, calendar="business")
    first = import_bpic2014(zipped)
    i1 = Incident.objects.get(number="IM9000001")  # P4, resolved the next day
    assert i1.resolution_due_at == i1.opened_at + dt.timedelta(hours=1)
    assert (i1.response_due_at, i1.response_met, i1.resolution_met) == (None, None, False)
    assert not Incident.objects.filter(priority=3, resolution_due_at__isnull=False).exists()
    # the same rules as apply_slas: applying it afterwards changes nothing
    from tikting.slas.verdicts import SLA_FIELDS, apply_slas

    before = list(Incident.objects.order_by("pk").values_list(*SLA_FIELDS))
    assert any(row[3] is not None for row in before)
    apply_slas(Incident.objects.all(), now=timezone.now())
    assert list(Incident.objects.order_by("pk").values_list(*SLA_FIELDS)) == before
    again = import_bpic2014(zipped)
    assert counts(again)["incident"] == (0, 0, counts(first)["incident"][0], 2)


def test_incidents_bulk_loaded_are_found_by_their_full_text_index(zipped: Path):
    """The import loads incidents with the index's per-row triggers off and rebuilds the index once
    (registered by tikting/incidents/apps.py): every imported incident is found, and the triggers
    are back."""
    from django.db import connection

    from tikting.imports.bulk import rebuilds_for
    from tikting.incidents import search
    from tikting.incidents.models import Incident

    assert "full-text" in [r.name for r in rebuilds_for(search.TABLE)]  # triggers off, one rebuild
    import_bpic2014(zipped)
    incidents = list(Incident.objects.order_by("pk"))
    assert incidents
    for incident in incidents:
        assert search.latest(incident.number, 10) == [incident.pk], incident.number
    incident = incidents[0]
    if connection.vendor == "sqlite":
        assert search.ensure_index() is False  # nothing was missing: the triggers were put back
        Incident.objects.filter(pk=incident.pk).update(short_description="zanzibar outage")
        assert search.latest("zanzibar", 10) == [incident.pk]


def test_a_bulk_load_moves_the_data_stamp_and_marks_the_rollup_once(zipped: Path):
    """SQLite's per-row triggers of the metrics (data stamp on every table metrics read, dirty
    months of the rollup) are off during a first import's bulk loads (tikting/metrics/apps.py):
    after it the stamp has moved, the months of the imported incidents are marked, the rollup
    answers as the records do, and the triggers are back (a later write moves the stamp again)."""
    from django.db import connection

    from tikting.core.loads import rebuilds_for
    from tikting.incidents.models import Incident
    from tikting.metrics import cache, rollups
    from tikting.metrics.engine import compute

    names = {r.name for r in rebuilds_for("incidents_interaction")}
    assert "data stamp" in names
    (rollup,) = [r for r in rebuilds_for("incidents_incident") if r.name == "rollup"]
    assert rollup.triggers["sqlite"] == rollups.SQLITE_TRIGGERS  # apps.py names them apart
    rollups.refresh()  # the rollup up to date (empty): nothing marked before the import
    stamp = cache.data_stamp()
    import_bpic2014(zipped)
    assert cache.data_stamp() != stamp
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("SELECT month FROM metrics_rollupdirty")
            marked = {row[0] for row in cursor.fetchall()}
        months = {d.strftime("%Y-%m") for d in Incident.objects.values_list("opened_at", flat=True)}
        assert rollups.ALL not in marked
        assert months <= marked
        with connection.cursor() as cursor:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            triggers = {row[0] for row in cursor.fetchall()}
        assert set(rollups.SQLITE_TRIGGERS) <= triggers
        assert set(cache.sqlite_trigger_names("incidents_interaction")) <= triggers
    for key in ("mttr", "mttr_p90", "reassignment_mean"):
        from_rollup = compute(key, by="month", cache=False).as_dict()
        assert from_rollup == compute(key, by="month", cache=False, rollup=False).as_dict()
    stamp = cache.data_stamp()
    Incident.objects.filter(pk=Incident.objects.values_list("pk", flat=True)[0]).update(priority=1)
    assert cache.data_stamp() != stamp


# --- rows written as tuples in their stored form (TableWriter.insert_rows) -----------------------


def _csv_rows(name: str) -> list[tuple[int, dict[str, str]]]:
    """(line, {column: value}) of a fixture as the csv module reads it (no padding rows)."""
    import csv

    text = (FIXTURES / name).read_text(encoding="utf-8-sig" if name == "EventLog.csv" else "latin-1")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="," if name == "EventLog.csv" else ";")
    header = [h.replace("Detail Incident Activity.", "") for h in next(reader)]
    return [
        (reader.line_num, {k: v for k, v in zip(header, row, strict=False) if k})
        for row in reader
        if any(row)
    ]


def test_stored_raw_and_times_are_those_of_the_reference_parsers(zipped: Path):
    """The tuple writers build the raw JSON from a template and the timestamps from cached hours:
    every stored row holds the very JSON text json.dumps gives for the row read by the csv module
    (SQLite keeps the text; PostgreSQL the same document) and the times parse_datetime gives."""
    from django.db import connection

    import_bpic2014(zipped)
    sqlite = connection.vendor == "sqlite"
    for model, name, key, stamps in (
        (
            Incident,
            "Detail Incident.csv",
            "Incident ID",
            {"opened_at": "Open Time", "closed_at": "Close Time"},
        ),
        (Interaction, "Detail Interaction.csv", "Interaction ID", {"opened_at": "Open Time (First Touch)"}),
    ):
        rows = {row[key]: row for _line, row in _csv_rows(name) if row[key]}
        stored = list(model.objects.filter(source="bpic2014").values("number", "raw", *stamps))
        assert stored
        for record in stored:
            row = rows[record["number"]]
            assert record["raw"] == row, record["number"]
            for field, column in stamps.items():
                assert record[field] == parse_datetime(row[column], AMS, column), record["number"]
        if sqlite:
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT number, raw FROM {model._meta.db_table}")  # noqa: S608
                for number, text in cursor.fetchall():
                    assert text == json.dumps(rows[number]), number
    activities = {}
    for _line, row in _csv_rows("EventLog.csv"):
        incident = row["Incident ID"].replace("\ufeff", "")
        activities[f"{incident}|{row['IncidentActivity_Type']}|{row['DateStamp']}"] = row
    for activity in IncidentActivity.objects.all():
        row = activities[activity.external_key.rsplit("|", 1)[0]]
        assert activity.raw == {**row, "Incident ID": row["Incident ID"].replace("\ufeff", "")}
        assert activity.at == parse_datetime(row["DateStamp"], AMS, "DateStamp")


def test_reimport_updates_a_row_whose_raw_only_value_changed(zipped: Path, tmp_path: Path):
    """A value kept in raw only (an interaction's closure code) changes the row on a re-import, on
    SQLite (stored text compared) and PostgreSQL (jsonb compared by the database) alike."""
    import_bpic2014(zipped)
    version = Interaction.objects.get(number="SD9000001").version
    edited = tmp_path / "edited"
    edited.mkdir()
    for name in ZIPS.values():
        shutil.copy(FIXTURES / name, edited / name)
    path = edited / "Detail Interaction.csv"
    data = path.read_bytes()
    assert (
        data.count(b";SD9000001;Closed;4;4;4;incident;KM9000001;5-2-2013 13:20;5-2-2013 13:30;Software;") == 1
    )
    path.write_bytes(data.replace(b"5-2-2013 13:30;Software;", b"5-2-2013 13:30;Hardware;"))
    again = import_bpic2014(edited)
    assert counts(again)["interaction"] == (0, 1, 3, 2)
    assert counts(again)["incident"] == (0, 0, 4, 2) and counts(again)["activity"] == (0, 0, 9, 2)
    changed = Interaction.objects.get(number="SD9000001")
    assert changed.raw["Closure Code"] == "Hardware" and changed.version == version + 1
    assert changed.opened_at == local(2013, 2, 5, 13, 20)
    assert counts(import_bpic2014(edited))["interaction"] == (0, 0, 4, 2)
