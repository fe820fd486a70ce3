"""`tikting discover`: import (format from content), runs, scan refusals, agent tokens."""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from tikting.cmdb.models import ConfigurationItem as CI
from tikting.core.models import AuditEntry
from tikting.discovery.agent_models import AgentToken
from tikting.discovery.models import DiscoveredDevice, DiscoveryRun

from .samples import FIXTURES, ROOT, held_elsewhere

pytestmark = pytest.mark.django_db


def discover(*args: str) -> tuple[CommandError | None, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("discover", *args, stdout=out, stderr=err)
    except CommandError as exc:
        return exc, out.getvalue(), err.getvalue()
    return None, out.getvalue(), err.getvalue()


def copy(name: str, folder: Path, as_name: str | None = None) -> Path:
    target = folder / (as_name or name)
    shutil.copy(FIXTURES / name, target)
    return target


# --- import -----------------------------------------------------------------------------------------


def test_import_takes_each_file_by_its_content_as_one_run(tmp_path):
    files = [
        copy("json__computer_1.json", tmp_path, "a.txt"),  # names say nothing
        copy("libnmap__full_sudo6.xml", tmp_path, "b.dat"),
        copy("netdiscovery__10.xml", tmp_path, "c"),
    ]
    exc, out, err = discover("import", *map(str, files))
    assert exc is None, err
    runs = list(DiscoveryRun.objects.order_by("id"))
    assert [(r.source_name, r.format, r.file_name) for r in runs] == [
        ("fusioninventory", "glpi-json", "a.txt"),
        ("nmap", "nmap-xml", "b.dat"),
        ("netdiscovery", "netdiscovery-xml", "c"),
    ]
    assert (runs[1].observed, runs[1].down) == (256, 252)
    assert out.splitlines()[0].startswith(f"run {runs[0].pk} fusioninventory (glpi-json) a.txt: 1 observed")
    laptop = CI.objects.get(serial_number="640HP72")
    assert laptop.status == CI.Status.DISCOVERED  # never silently registered
    assert DiscoveredDevice.objects.get(ci=laptop).source == "fusioninventory"


def test_importing_the_same_file_twice_changes_nothing_the_second_time(tmp_path):
    path = copy("xml__12.xml", tmp_path)
    discover("import", str(path))
    before = (CI.objects.count(), AuditEntry.objects.count())
    exc, _out, _err = discover("import", str(path))
    assert exc is None
    second = DiscoveryRun.objects.latest("id")
    assert (second.confirmed, second.updated, second.created_unregistered) == (1, 0, 0)
    assert (CI.objects.count(), AuditEntry.objects.count()) == before


def test_problems_are_listed_by_file_and_place_and_the_rest_reconciled(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("name,serial_number,mac_address\nsrv-1,SN-001,zz\n,,\nsrv-2,SN-002,\n")
    exc, _out, err = discover("import", str(path))
    assert exc is not None and exc.returncode == 1
    assert err.splitlines() == [
        "export.csv: line 2, mac_address: 'zz' is not a MAC address: left out.",
    ]
    assert str(exc) == "1 problem(s) in the input; what could be read was reconciled."
    assert set(CI.objects.values_list("serial_number", flat=True)) == {"SN-001", "SN-002"}


def test_an_unknown_format_and_a_missing_file(tmp_path):
    odd = tmp_path / "notes.txt"
    odd.write_text("hello\n")
    exc, _out, err = discover("import", str(odd))
    assert exc is not None and exc.returncode == 1
    assert err.splitlines()[0].startswith("notes.txt: input: Not a discovery format")
    exc, _out, _err = discover("import", str(tmp_path / "missing.xml"), str(odd))
    assert exc is not None and str(exc) == f"No such file: {tmp_path / 'missing.xml'}"
    assert DiscoveryRun.objects.count() == 1  # the missing file stopped everything before any run


def test_a_busy_source_is_refused_in_one_line(tmp_path):
    path = copy("json__printer_1.json", tmp_path)
    with held_elsewhere("printers"):
        exc, _out, _err = discover("import", str(path), "--source", "printers")
    assert exc is not None and str(exc).startswith(
        "Another discovery run of source 'printers' is in progress"
    )
    assert not DiscoveryRun.objects.exists()


# --- runs ---------------------------------------------------------------------------------------------


def test_runs_as_json_with_every_count_and_full_precision(tmp_path):
    discover("import", str(copy("libnmap__2_hosts_version.xml", tmp_path)), "--source", "lab")
    discover("import", str(copy("json__printer_1.json", tmp_path)))
    exc, out, _err = discover("runs", "--format", "json", "--source", "lab")
    assert exc is None
    (run,) = json.loads(out)
    assert run["source"] == "lab" and run["file"] == "libnmap__2_hosts_version.xml"
    assert (run["observed"], run["unidentified"], run["created_unregistered"]) == (2, 1, 1)
    saved = DiscoveryRun.objects.get(pk=run["id"])
    assert saved.duration is not None and run["seconds"] == saved.duration.total_seconds()
    exc, out, _err = discover("runs")
    assert len(out.splitlines()) == 2 and "finished" in out


# --- scan: refused before nmap starts --------------------------------------------------------------------


@pytest.fixture
def fake_nmap(tmp_path):
    """An 'nmap' that only leaves a mark: the refusals must come before it could run."""
    mark = tmp_path / "nmap-ran"
    script = tmp_path / "nmap"
    script.write_text(f"#!/bin/sh\ntouch {mark}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    with override_settings(TIKTING_DISCOVERY_NMAP=str(script)):
        yield mark


@pytest.mark.parametrize(
    ("target", "says"),
    [
        (
            "10.0.0.0/8",
            "10.0.0.0/8 is outside the ranges discovery may scan (TIKTING_DISCOVERY_ALLOWED_RANGES: ",
        ),
        ("127.0.0.0/7", "127.0.0.0/7 is outside the ranges"),  # wider than the allowed /8
        ("scanme.nmap.org", "'scanme.nmap.org' is not an address or a network in CIDR form"),
        ("127.0.0.1-20", "'127.0.0.1-20' is not an address"),
        ("127.0.0.1 -iL/etc/hosts", "'127.0.0.1 -iL/etc/hosts' is not an address"),
    ],
)
def test_a_range_outside_the_allow_list_is_refused_before_nmap_starts(fake_nmap, target, says):
    exc, _out, _err = discover("scan", target)
    assert exc is not None and exc.returncode == 1
    assert str(exc).startswith(says)
    assert not fake_nmap.exists()
    assert not DiscoveryRun.objects.exists()


@override_settings(TIKTING_DISCOVERY_ALLOWED_RANGES=["192.0.2.0/29"])
def test_the_allow_list_is_the_setting(fake_nmap):
    exc, _out, _err = discover("scan", "127.0.0.1")
    assert exc is not None and "(TIKTING_DISCOVERY_ALLOWED_RANGES: 192.0.2.0/29)" in str(exc)
    exc, _out, _err = discover("scan", "192.0.2.4/30")
    assert fake_nmap.exists()  # allowed: nmap ran (the fake writes no XML, so nothing is reconciled)
    assert exc is not None and "Not an nmap XML file" not in str(exc)


def test_the_entry_point_says_a_refused_range_in_one_line(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "TIKTING_VAR_DIR": str(tmp_path / "var"),
        "PYTHONPATH": str(ROOT),
    }
    script = Path(sys.executable).with_name("tikting")
    done = subprocess.run(
        [str(script), "discover", "scan", "8.8.8.0/24"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "CommandError: 8.8.8.0/24 is outside the ranges discovery may scan "
        "(TIKTING_DISCOVERY_ALLOWED_RANGES: 127.0.0.0/8, ::1/128). Add it to that setting if this network "
        "is yours to scan."
    ]


# --- agent tokens ---------------------------------------------------------------------------------------


def test_agent_tokens_are_created_listed_and_revoked_with_history(cast):
    exc, out, _err = discover("agent-token", "create", "Paris workstations", "--as", cast.admin.username)
    assert exc is None
    secret = out.splitlines()[1]
    token = AgentToken.objects.get()
    assert token.key_hash == AgentToken.hash(secret) and secret not in token.key_hash  # only the hash is kept
    assert token.created_by == cast.admin
    exc, out, _err = discover("agent-token", "list")
    assert out.startswith(f"{token.pk}\tParis workstations\t{secret[:10]}…\tactive\tnever used")
    exc, out, _err = discover("agent-token", "revoke", str(token.pk), "--as", cast.admin.username)
    token.refresh_from_db()
    assert token.revoked_at is not None
    entries = AuditEntry.objects.filter(object_id=str(token.pk)).order_by("id")
    assert [e.message for e in entries] == ["Agent token created", "Agent token revoked"]


def test_only_an_administrator_creates_agent_tokens(cast):
    exc, _out, _err = discover("agent-token", "create", "x", "--as", cast.manager.username)
    assert exc is not None and str(exc) == "Only an administrator may create or revoke agent tokens."
    assert not AgentToken.objects.exists()


# --- a CMDB export to start from ---------------------------------------------------------------------------

EXPORT = (
    "name,sys_class_name,serial_number,manufacturer,model_id,ip_address,location,install_status\n"
    "Payroll DB,cmdb_ci_db_mssql_database,,,,10.1.0.7,Paris,Installed\n"
    "web01.corp.example,cmdb_ci_linux_server,CZ1234ABC,HP,ProLiant DL360,10.1.0.5,Paris,Installed\n"
    "Printer 2nd floor,cmdb_ci_printer,PHCVN191TG,HP,LaserJet M507,10.1.0.50,Floor 2,Installed\n"
)


def test_a_cmdb_export_to_start_from_is_registered_with_its_names_and_classes(tmp_path, cast):
    path = tmp_path / "servicenow-cmdb_ci.csv"
    path.write_text(EXPORT)
    exc, _out, err = discover("import", str(path), "--register", "--as", cast.manager.username)
    assert exc is None, err
    found = {ci.name: (ci.ci_class, ci.status, ci.location) for ci in CI.objects.all()}
    assert found == {
        "web01.corp.example": ("server", "active", "Paris"),
        "Printer 2nd floor": ("printer", "active", "Floor 2"),
    }
    # A CI discovery cannot identify (a name with spaces, an IP outside the trusted ranges) is
    # listed, not guessed: such CIs come in with `tikting import ci` (docs/discovery.md).
    run = DiscoveryRun.objects.get()
    assert run.unidentified == 1 and "line 2: No identity the rules can use" in err
    web = CI.objects.get(serial_number="CZ1234ABC")
    assert AuditEntry.objects.filter(object_id=str(web.pk), message="Registered from discovery").exists()


def test_registering_an_export_is_for_managers_and_writes_nothing_otherwise(tmp_path, cast):
    path = tmp_path / "export.csv"
    path.write_text(EXPORT)
    exc, _out, _err = discover("import", str(path), "--register", "--as", cast.contributor.username)
    assert exc is not None and str(exc) == "Only managers and administrators may register discovered devices."
    assert not CI.objects.exists() and not DiscoveryRun.objects.exists()  # the run went with it
    exc, _out, _err = discover("import", str(path))  # without --register: found, not registered
    assert set(CI.objects.values_list("status", flat=True)) == {CI.Status.DISCOVERED}


def test_a_folder_of_inventories_is_one_run_per_source_until_the_input_limit(tmp_path, monkeypatch):
    from tikting.discovery import runs

    files = [copy("json__computer_1.json", tmp_path, f"pc{i}.json") for i in range(3)]
    files.append(copy("xml__12.xml", tmp_path))
    exc, _out, err = discover("import", *map(str, files))
    assert exc is None, err
    assert list(DiscoveryRun.objects.order_by("id").values_list("format", "observed", "file_name")) == [
        ("glpi-json", 3, "pc0.json … pc2.json (3 files)"),  # the same machine thrice: one CI, confirmed twice
        ("glpi-xml", 1, "xml__12.xml"),
    ]
    monkeypatch.setattr(runs, "RUN_INPUT_BYTES", 2 * (FIXTURES / "json__computer_1.json").stat().st_size)
    discover("import", *map(str, files[:3]))
    assert list(DiscoveryRun.objects.order_by("id").values_list("observed", flat=True))[2:] == [2, 1]
