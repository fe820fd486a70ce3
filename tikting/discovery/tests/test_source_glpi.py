"""GLPI Agent / FusionInventory inventories (JSON against the schema, XML), network discovery and
SNMP query results: what is read, the problems named, the attacks refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.test import override_settings

from tikting.discovery.sources.glpi import parse_glpi_json, parse_glpi_xml
from tikting.discovery.sources.netdiscovery import parse_netdiscovery

from .samples import fixture, needs_shared, shared_files

# --- JSON -----------------------------------------------------------------------------------------


@needs_shared
@pytest.mark.parametrize("path", shared_files("glpi-inventory", "json__*.json"), ids=lambda p: p.name)
def test_every_shared_json_inventory_is_valid_and_read(path: Path):
    result = parse_glpi_json(path.read_bytes())
    assert result.errors == []  # all of them validate against the published schema
    (obs,) = result.observations
    assert obs.hostname and obs.serial


def test_a_computer_inventory():
    (obs,) = parse_glpi_json(fixture("json__computer_1.json")).observations
    assert (obs.source, obs.kind) == ("fusioninventory", "computer")  # VERSIONCLIENT FusionInventory-Agent
    assert (obs.hostname, obs.serial, obs.manufacturer, obs.model) == (
        "glpixps",
        "640HP72",
        "Dell Inc.",
        "XPS 13 9350",
    )
    assert obs.uuid == "4c4c4544-0034-3010-8048-b6c04f503732"
    assert (obs.os_name, obs.cpus, obs.memory_mb) == ("Fedora 31 (Workstation Edition)", 2, 7800)
    assert obs.seen_at.isoformat() == "2020-06-12T14:19:54+00:00"  # ACCESSLOG/LOGDATE, in TIME_ZONE (UTC)
    assert obs.uptime_seconds == 282106  # LOGDATE - BOOT_TIME
    interfaces = {i.name: i for i in obs.interfaces}
    assert interfaces["enp57s0u1u4"].mac == "00:e0:4c:68:01:db"
    assert interfaces["enp57s0u1u4"].ipv4 == ("192.168.1.142",)
    assert interfaces["enp57s0u1u4"].ipv6 == ("fe80::b283:4fa3:d3f2:96b1",)  # IPv4 and IPv6 entries merged
    assert interfaces["virbr0"].virtual and interfaces["lo"].virtual
    assert not interfaces["wlp58s0"].virtual
    assert len(obs.software) == 6 and obs.software[0].name == "gitg"
    assert obs.extra["deviceid"] == "glpixps-2018-07-09-09-07-13"


def test_virtual_machines_and_asset_tag():
    (obs,) = parse_glpi_json(fixture("json__computer_2.json")).observations
    assert [vm["name"] for vm in obs.virtual_machines][:2] == ["skydive-agent_1", "skydive-analyzer_1"]
    assert obs.virtual_machines[1]["vmtype"] == "docker"
    assert obs.extra["asset_tag"] == "COMP1"


def test_network_equipment_and_printer_by_snmp():
    (switch,) = parse_glpi_json(fixture("json__networkequipment_5.json")).observations
    assert (switch.source, switch.kind) == ("snmp", "network_equipment")
    assert (switch.serial, switch.manufacturer, switch.model) == ("R3843D1000001", "D-Link", "DGS-3420-52T")
    assert switch.interfaces[0].mac == "ac:f1:df:8e:8e:00" and switch.interfaces[0].ipv4 == ("192.168.16.51",)
    assert switch.extra["location"] == "WOB Serverraum"
    assert switch.uptime_seconds == 65 * 86400 + 20 * 3600 + 13 * 60 + 8
    (printer,) = parse_glpi_json(fixture("json__printer_1.json")).observations
    assert (printer.kind, printer.serial, printer.memory_mb) == ("printer", "PHCVN191TG", 512)


def test_a_schema_violation_is_named_by_its_path_and_the_rest_kept():
    document = json.loads(fixture("json__computer_1.json"))
    document["content"]["hardware"]["memory"] = "lots"
    document["content"]["networks"][2]["virtualdev"] = "no"
    result = parse_glpi_json(json.dumps(document).encode())
    paths = sorted(e.where for e in result.errors)
    assert paths == ["content.hardware.memory", "content.networks[2].virtualdev"]
    assert all(e.message.startswith("Schema: ") for e in result.errors)
    (obs,) = result.observations
    assert obs.serial == "640HP72"
    assert obs.memory_mb == 8192  # hardware.memory unreadable: the sum of the memory modules


def test_an_inventory_without_deviceid_breaks_the_schema():
    result = parse_glpi_json(b'{"content": {"versionclient": "GLPI-Agent_v1.7"}}')
    assert [(e.where, e.message) for e in result.errors] == [
        ("inventory", 'Schema: "deviceid" is a required property')
    ]
    assert result.observations[0].source == "glpi-agent"


def test_not_json_names_line_and_column():
    result = parse_glpi_json(b'{"deviceid": "x",\n "content": {')
    assert result.errors[0].where == "line 2, column 14"
    assert result.observations == []


def test_json_nested_too_deeply_is_refused():
    deep = b'{"deviceid": "x", "content": {"versionclient": "v", "x": ' + b"[" * 100 + b"]" * 100 + b"}}"
    result = parse_glpi_json(deep)
    assert result.errors[0].message.startswith("The JSON is nested too deeply")
    assert result.observations == []


@override_settings(TIKTING_DISCOVERY_MAX_BYTES=1000)
def test_an_oversized_json_inventory_is_refused():
    result = parse_glpi_json(fixture("json__computer_1.json"))
    assert "TIKTING_DISCOVERY_MAX_BYTES" in result.errors[0].message and result.observations == []


# --- XML ------------------------------------------------------------------------------------------


@needs_shared
@pytest.mark.parametrize("path", shared_files("glpi-inventory", "xml__*.xml"), ids=lambda p: p.name)
def test_every_shared_xml_inventory_is_read(path: Path):
    result = parse_glpi_xml(path.read_bytes())
    assert result.errors == []
    (obs,) = result.observations
    assert obs.source == "fusioninventory" and obs.serial and obs.uuid and obs.software


def test_an_xml_inventory_reads_as_its_json_twin_would():
    (obs,) = parse_glpi_xml(fixture("xml__12.xml")).observations
    assert (obs.hostname, obs.fqdn) == ("pc-arg-23", "pc-arg-23.cedre.local")
    assert (obs.serial, obs.manufacturer, obs.model) == (
        "CZC0479792",
        "Hewlett-Packard",
        "HP EliteBook 2540p",
    )
    assert obs.uuid == "33E737A8-F827-11DF-9297-47C0A301005A"
    assert (obs.os_name, obs.os_version) == ("Microsoft Windows 8.1 Professionnel", "6.3.9600")
    assert (obs.cpus, obs.memory_mb, len(obs.software)) == (2, 3887, 8)
    by_mac = {i.mac: i for i in obs.interfaces}
    assert by_mac["68:b5:99:e6:84:eb"].ipv4 == ("10.253.6.55",)  # MACADDR, the XML's name for mac
    assert by_mac["00:27:15:d4:3e:75"].virtual  # VIRTUALDEV 1
    assert obs.seen_at.isoformat() == "2017-05-15T18:38:07+00:00"


def test_an_xml_message_that_is_not_an_inventory_is_refused():
    prolog = b"<?xml version='1.0'?><REQUEST><DEVICEID>x</DEVICEID><QUERY>PROLOG</QUERY></REQUEST>"
    result = parse_glpi_xml(prolog)
    assert result.errors[0].message.endswith("found <REQUEST> with QUERY PROLOG.")


def test_xxe_in_an_xml_inventory_is_refused():
    evil = (
        b'<?xml version="1.0"?><!DOCTYPE REQUEST [<!ENTITY x SYSTEM "file:///etc/hostname">]>'
        b"<REQUEST><CONTENT><HARDWARE><NAME>&x;</NAME></HARDWARE></CONTENT><QUERY>INVENTORY</QUERY></REQUEST>"
    )
    result = parse_glpi_xml(evil)
    assert result.observations == [] and "entities" in result.errors[0].message


# --- Network discovery and SNMP query -----------------------------------------------------------------


def test_network_discovery_of_a_switch():
    result = parse_netdiscovery(fixture("netdiscovery__10.xml"))
    assert result.format == "netdiscovery-xml"
    (obs,) = result.observations
    assert (obs.source, obs.kind, obs.hostname) == ("netdiscovery", "network_equipment", "swdc-07-01-dc1")
    assert (obs.manufacturer, obs.model) == ("Cisco", "Cisco Nexus 5596")
    assert obs.interfaces[0].mac == "00:23:04:ee:be:02" and obs.interfaces[0].ipv4 == ("192.168.0.8",)
    assert obs.extra["location"] == "dc1 salle 07"
    assert obs.uptime_seconds == 175 * 86400 + 11 * 3600 + 33 * 60 + 37


def test_a_malformed_mac_is_named_and_the_device_kept():
    result = parse_netdiscovery(fixture("snmpquery__17.xml"))
    assert result.format == "snmpquery-xml"
    assert [(e.where, e.message) for e in result.errors] == [
        (
            "DEVICE[1] 192.168.1.9 MAC",
            "'d5:c9:gh:81:cf:80' is not a MAC address: the device is kept without it.",
        )
    ]
    (obs,) = result.observations
    assert (obs.source, obs.serial, obs.interfaces[0].mac) == ("snmp", "cn3afrt37n", None)
    assert obs.extra["ports"] == 1


@needs_shared
@pytest.mark.parametrize(
    "path",
    shared_files("glpi-netdiscovery", "*.xml") + shared_files("snmp", "*.result.xml"),
    ids=lambda p: p.name,
)
def test_every_shared_discovery_result_is_read_or_its_problem_named(path: Path):
    result = parse_netdiscovery(path.read_bytes())
    assert result.observations or result.errors
    for error in result.errors:
        assert error.where.startswith("DEVICE[")
