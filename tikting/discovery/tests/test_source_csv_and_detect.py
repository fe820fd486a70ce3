"""CSV of CIs (ours and other CMDBs' exports) and the format detection by content."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tikting.discovery.sources import detect as D
from tikting.discovery.sources.csv_cis import parse_csv_cis

from .samples import FIXTURES, fixture

SERVICENOW = (
    "name;sys_class_name;serial_number;manufacturer;model_id;ip_address;mac_address;os;os_version;"
    "location;assigned_to;install_status;sys_updated_on\n"
    "web01.example.com;cmdb_ci_linux_server;CZ1234ABC;HP;ProLiant DL360 Gen10;192.0.2.10;00-1A-2B-3C-4D-5E;"
    "Linux Red Hat;8.6;DC1 Rack 4;alice;Installed;2026-11-30 10:00:00\n"
    '"Printer 2nd floor";cmdb_ci_printer;PHCVN191TG;HP;LaserJet M507;192.0.2.50;;;;'
    '"Floor 2\nnorth";;Installed;\n'
    ";;;;;;;;;;;;\n"
    "bad;cmdb_ci_weird;;;;999.1.1.1;zz:zz;;;;;;yesterday\n"
    ";;;;;;;;;;;;\n"
    "Desk phone;;;;;;;;;;;;\n"
)


def test_a_servicenow_export_with_semicolons():
    result = parse_csv_cis(SERVICENOW.encode())
    web, printer, bad, phone = result.observations
    assert (web.source, web.where, web.kind) == ("csv", "line 2", "computer")
    assert (web.hostname, web.fqdn, web.serial, web.model) == (
        "web01",
        "web01.example.com",
        "CZ1234ABC",
        "ProLiant DL360 Gen10",
    )
    assert web.interfaces[0].mac == "00:1a:2b:3c:4d:5e" and web.interfaces[0].ipv4 == ("192.0.2.10",)
    assert web.seen_at.isoformat() == "2026-11-30T10:00:00+00:00"
    assert web.extra == {
        "name": "web01.example.com",
        "ci_class": "server",  # ServiceNow's class as ours
        "source_class": "cmdb_ci_linux_server",
        "location": "DC1 Rack 4",
        "owner": "alice",
        "status": "Installed",
    }
    assert (printer.where, printer.kind, printer.extra["location"]) == ("line 3", "printer", "Floor 2\nnorth")
    assert printer.hostname == ""  # a name with spaces is not a host name
    assert bad.where == "line 6"  # the quoted value of line 3 spans line 4
    assert phone.where == "line 8" and phone.extra["name"] == "Desk phone"


def test_errors_name_line_and_column_and_good_values_stay():
    result = parse_csv_cis(SERVICENOW.encode())
    assert [(e.where, e.message.split(":")[0]) for e in result.errors] == [
        ("line 6, mac_address", "'zz"),
        ("line 6, ip_address", "'999.1.1.1' is not an IP address"),
        ("line 6, last_seen", "'yesterday' is not a date and time (YYYY-MM-DD HH"),
        (
            "line 6, ci_class",
            "'cmdb_ci_weird' is not a class this import knows (server, workstation, network, printer, vm, "
            "storage, …)",
        ),
    ]
    bad = result.observations[2]
    assert (bad.hostname, bad.interfaces, bad.kind) == ("bad", [], "unknown")


def test_our_own_export_columns_and_a_row_without_identity():
    ours = (
        "\ufeffname,ci_class,hostname,fqdn,serial_number,manufacturer,model_name,system_uuid,mac_address,ip_address,"
        "os_name,os_version,location,status\n"
        "db01,server,db01,db01.corp.example,SN-0042X,Dell Inc.,PowerEdge R650,"
        "4c4c4544-0042-3010-8048-b6c04f503732,"
        "00:1a:2b:3c:4d:60 00:1a:2b:3c:4d:61,10.1.0.5;2001:db8::5,Debian,12,Paris,active\n"
        ",,,,,,,,,,,,Paris,active\n"
        "vm-17,vm,,,,,,not-a-uuid,,,,,,\n"
    )
    result = parse_csv_cis(ours.encode())
    db01, vm = result.observations
    assert (db01.uuid, db01.manufacturer, db01.kind) == (
        "4c4c4544-0042-3010-8048-b6c04f503732",
        "Dell Inc.",
        "computer",
    )
    assert [i.mac for i in db01.interfaces] == ["00:1a:2b:3c:4d:60", "00:1a:2b:3c:4d:61"]
    assert (db01.interfaces[0].ipv4, db01.interfaces[0].ipv6) == (("10.1.0.5",), ("2001:db8::5",))
    assert vm.kind == "virtual_machine" and vm.uuid == ""
    assert [(e.where, e.message[:30]) for e in result.errors] == [
        ("line 3", "No identifying value (name, ho"),
        ("line 4, system_uuid", "'not-a-uuid' is not a UUID: le"),
    ]


def test_a_csv_without_a_known_column_or_not_utf8():
    result = parse_csv_cis(b"foo,bar\n1,2\n")
    assert result.errors[0].where == "line 1" and result.errors[0].message.startswith(
        "No column this import reads"
    )
    result = parse_csv_cis("name\nok\ncaf\u00e9\n".encode("latin-1"))
    assert (result.errors[0].where, result.observations) == ("line 3", [])


# --- Detection --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("libnmap__full_sudo6.xml", "nmap-xml"),
        ("nmapparser__nmap_results.xml", "nmap-xml"),
        ("xml__12.xml", "glpi-xml"),
        ("json__computer_1.json", "glpi-json"),
        ("json__printer_1.json", "glpi-json"),
        ("netdiscovery__10.xml", "netdiscovery-xml"),
        ("snmpquery__17.xml", "snmpquery-xml"),
    ],
)
def test_the_format_comes_from_the_content(name: str, fmt: str, tmp_path: Path):
    assert D.detect(fixture(name)) == fmt
    misleading = tmp_path / "export.csv"  # the file's name says nothing
    shutil.copy(FIXTURES / name, misleading)
    result = D.parse_file(misleading)
    assert result.format == fmt and result.observations


def test_a_csv_is_detected_by_its_header():
    assert D.detect(SERVICENOW.encode()) == "csv"
    assert D.detect(b"\xef\xbb\xbfSerial Number,Name\nX1,a\n") == "csv"


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"<?xml version='1.0'?><!-- hi --><svg/>", "XML whose root element is <svg>"),
        (b"<REQUEST><DEVICEID>x</DEVICEID><QUERY>PROLOG</QUERY></REQUEST>", "QUERY 'PROLOG'"),
        (b'{"ansible_facts": {}}', "JSON that is not a GLPI inventory"),
        (b"\x1f\x8b\x08\x00rest", "Compressed data"),
        (b"just some text\n", "Not a discovery format"),
    ],
)
def test_an_unknown_format_is_one_clear_error(data: bytes, says: str):
    result = D.parse_bytes(data)
    assert result.format == "unknown" and result.observations == []
    assert says in result.errors[0].message


def test_a_file_without_times_takes_its_modification_time(tmp_path: Path):
    path = tmp_path / "printer.json"
    path.write_bytes(fixture("json__printer_1.json"))
    os.utime(path, (1_700_000_000, 1_700_000_000))
    (obs,) = D.parse_file(path).observations
    assert obs.seen_at.timestamp() == 1_700_000_000  # so importing it again is the same observation
