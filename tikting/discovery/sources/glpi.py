"""GLPI Agent / FusionInventory inventories, JSON and XML, to one observation each.

JSON (GLPI's native format since GLPI 10) is checked against the published schema
(schemas/inventory.schema.json, MIT, glpi-project/inventory_format): every violation is reported
with its path ("content.networks[2].mac"), and what can still be read is kept, as a person would
want from a file whose one field is off. The XML (`<REQUEST><QUERY>INVENTORY</QUERY><CONTENT>…`,
the OCS lineage FusionInventory agents send) is turned into the same shape as the JSON first (tags
lower-cased; a section is a list where the schema says it is), so both are read by one function.

Read: the device kind (item type; a computer whose hardware says it is virtual is a virtual
machine), host name and FQDN, BIOS serial number, manufacturer and model, the system UUID,
network interfaces with MAC and addresses (virtual ones flagged: never an identity), OS name and
version, uptime (from the boot time), CPU cores, memory, software, virtual machines hosted; for
network equipment and printers inventoried by SNMP (`network_device`), its name, serial number,
MAC, addresses, location and uptime. The time seen is the inventory's ACCESSLOG/LOGDATE.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

from django.utils import timezone

from tikting.lib import untrusted

from .. import identity
from ..observations import Interface, Observation, ParseError, ParseResult, Software
from .common import (
    Input,
    as_int,
    clean,
    flag,
    local_time,
    read_input,
    read_request,
    snmp_uptime,
    too_deep,
)

__all__ = ["JSON_FORMAT", "XML_FORMAT", "observe", "parse_glpi_json", "parse_glpi_xml", "xml_to_document"]

JSON_FORMAT = "glpi-json"
XML_FORMAT = "glpi-xml"
SCHEMA_PATH = Path(__file__).parent / "schemas" / "inventory.schema.json"
# Schema violations listed per inventory (the rest are counted).
MAX_SCHEMA_ERRORS = 20
ITEM_KINDS = {
    "computer": "computer",
    "-": "computer",
    "networkequipment": "network_equipment",
    "printer": "printer",
    "phone": "phone",
    "unmanaged": "unknown",
}
DEVICE_TYPES = {
    "networking": "network_equipment",
    "printer": "printer",
    "storage": "storage",
    "computer": "computer",
    "phone": "phone",
}
# hardware.vmsystem values of a physical machine.
PHYSICAL = {"", "physical"}
VIRTUAL_INTERFACE_TYPES = {"loopback", "bridge", "tunnel", "virtual", "vpn", "aggregate", "dialup"}


@functools.cache
def validator() -> Any:
    """The compiled draft-07 validator of the inventory schema (built once per process; the library
    loaded here, not in every web worker: about 4 MB)."""
    import jsonschema_rs

    return jsonschema_rs.Draft7Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def parse_glpi_json(
    stream: Input, *, source_name: str | None = None, seen_at: dt.datetime | None = None
) -> ParseResult:
    """One observation from a GLPI JSON inventory (`{"deviceid": …, "content": {…}}`), with the
    schema's violations as errors naming their path. `source_name` overrides the source the agent
    is recognised as ("glpi-agent", "fusioninventory", "snmp", "netdiscovery"); `seen_at` is the
    time of an inventory without ACCESSLOG (default: now)."""
    result = ParseResult(format=JSON_FORMAT)
    data = read_input(stream, result.errors)
    if data is None:
        return result
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        result.errors.append(ParseError(_json_place(exc), f"Not valid JSON: {exc}."))
        return result
    if too_deep(document):
        result.errors.append(ParseError("input", untrusted.DEPTH_MESSAGE))
        return result
    if not isinstance(document, dict) or not isinstance(document.get("content"), dict):
        result.errors.append(
            ParseError("content", "Not a GLPI inventory: expected an object with 'deviceid' and 'content'.")
        )
        return result
    where = f"inventory {clean(document.get('deviceid'), 120) or '(no deviceid)'}"
    violations = list(validator().iter_errors(document))
    for error in violations[:MAX_SCHEMA_ERRORS]:
        result.errors.append(ParseError(_path(error.instance_path), f"Schema: {error.message[:300]}"))
    if len(violations) > MAX_SCHEMA_ERRORS:
        result.errors.append(
            ParseError(where, f"… and {len(violations) - MAX_SCHEMA_ERRORS} more schema violation(s).")
        )
    result.observations.append(
        observe(
            document, where=where, source_name=source_name, seen_at=seen_at, xml=False, errors=result.errors
        )
    )
    return result


def parse_glpi_xml(
    stream: Input, *, source_name: str | None = None, seen_at: dt.datetime | None = None
) -> ParseResult:
    """One observation from a FusionInventory / OCS XML inventory (QUERY INVENTORY)."""
    result = ParseResult(format=XML_FORMAT)
    request = read_request(stream, result.errors)
    if request is None:
        return result
    root, query = request
    if root.tag != "REQUEST" or query != "INVENTORY" or root.find("CONTENT") is None:
        found = f"<{root.tag}>" + (f" with QUERY {query}" if query else "")
        result.errors.append(
            ParseError(
                "REQUEST",
                f"Not an inventory: expected <REQUEST> with QUERY INVENTORY and CONTENT, found {found}.",
            )
        )
        return result
    document = xml_to_document(root)
    where = f"inventory {clean(document.get('deviceid'), 120) or '(no DEVICEID)'}"
    result.observations.append(
        observe(
            document, where=where, source_name=source_name, seen_at=seen_at, xml=True, errors=result.errors
        )
    )
    return result


# --- XML to the JSON shape ------------------------------------------------------------------------


@functools.cache
def _list_sections() -> frozenset[str]:
    """The content sections the schema declares as arrays (networks, softwares, cpus, …)."""
    properties = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))["properties"]["content"]["properties"]
    return frozenset(name for name, spec in properties.items() if spec.get("type") == "array")


def _element(element: Element) -> Any:
    """An element as text (a leaf) or a dict of its children, lower-cased; repeated tags → lists."""
    children = list(element)
    if not children:
        return (element.text or "").strip()
    value: dict[str, Any] = {}
    for child in children:
        key, item = child.tag.lower(), _element(child)
        if key in value:
            if not isinstance(value[key], list):
                value[key] = [value[key]]
            value[key].append(item)
        else:
            value[key] = item
    return value


def xml_to_document(root: Element) -> dict[str, Any]:
    """A <REQUEST> inventory as the JSON inventory format has it: {"deviceid", "content": {…}}."""
    lists = _list_sections()
    content: dict[str, Any] = {}
    for section in root.find("CONTENT") or []:
        key, value = section.tag.lower(), _element(section)
        if key in lists:
            content.setdefault(key, []).append(value)
        else:
            content[key] = value
    return {
        "deviceid": clean(root.findtext("DEVICEID"), 200),
        "action": "inventory",
        "content": content,
    }


# --- Reading a document ---------------------------------------------------------------------------


def observe(
    document: dict[str, Any],
    *,
    where: str,
    source_name: str | None,
    seen_at: dt.datetime | None,
    xml: bool,
    errors: list[ParseError],
) -> Observation:
    """The observation an inventory document gives (JSON shape; values may be text, from XML);
    values it cannot take (a malformed MAC) are added to `errors`."""
    content: dict[str, Any] = document["content"]
    hardware = _object(content.get("hardware"))
    bios = _object(content.get("bios"))
    system = _object(content.get("operatingsystem"))
    device = _object(content.get("network_device"))
    seen = local_time(_object(content.get("accesslog")).get("logdate")) or seen_at or timezone.now()
    obs = Observation(
        source=source_name or _source(document, xml=xml),
        seen_at=seen,
        where=where,
        kind=_kind(document, hardware, device),
    )
    if device:
        _network_device(obs, device, content, errors)
    else:
        _computer(obs, hardware, bios, system, content, errors)
    obs.extra.update(
        {
            key: value
            for key, value in (
                ("deviceid", clean(document.get("deviceid"), 200)),
                ("tag", clean(document.get("tag"), 100)),
                ("itemtype", clean(document.get("itemtype"), 40)),
                ("partial", True if flag(document.get("partial")) else None),
                ("agent", clean(content.get("versionclient"), 100)),
            )
            if value
        }
    )
    return obs


def _source(document: dict[str, Any], *, xml: bool) -> str:
    """The source an inventory comes from, as precedence knows it."""
    action = clean(document.get("action"), 20).lower()
    if action == "netdiscovery":
        return "netdiscovery"
    if action == "netinventory" or document["content"].get("network_device"):
        return "snmp"
    agent = clean(document["content"].get("versionclient"), 100).lower()
    if agent.startswith("glpi"):
        return "glpi-agent"
    if agent.startswith("fusioninventory"):
        return "fusioninventory"
    return "fusioninventory" if xml else "glpi-agent"


def _kind(document: dict[str, Any], hardware: dict[str, Any], device: dict[str, Any]) -> str:
    itemtype = clean(document.get("itemtype"), 40).lower()
    if device and itemtype in ("", "-"):
        return DEVICE_TYPES.get(clean(device.get("type"), 40).lower(), "unknown")
    kind = ITEM_KINDS.get(itemtype or "computer", "unknown")
    if kind == "computer" and clean(hardware.get("vmsystem"), 40).lower() not in PHYSICAL:
        return "virtual_machine"
    return kind


def _computer(
    obs: Observation,
    hardware: dict[str, Any],
    bios: dict[str, Any],
    system: dict[str, Any],
    content: dict[str, Any],
    errors: list[ParseError],
) -> None:
    obs.hostname = clean(hardware.get("name"), 100)
    fqdn = clean(system.get("fqdn"), 255)
    obs.fqdn = fqdn if "." in fqdn else ""
    obs.serial = clean(bios.get("ssn"), 100)
    obs.manufacturer = clean(
        bios.get("smanufacturer") or bios.get("mmanufacturer") or bios.get("bmanufacturer"), 100
    )
    obs.model = clean(bios.get("smodel") or bios.get("mmodel"), 100)
    obs.uuid = clean(hardware.get("uuid"), 36)
    obs.os_name = clean(system.get("full_name") or system.get("name") or hardware.get("osname"), 100)
    obs.os_version = clean(system.get("version") or hardware.get("osversion"), 100)
    boot = local_time(system.get("boot_time"))
    if boot is not None and boot <= obs.seen_at:
        obs.uptime_seconds = int((obs.seen_at - boot).total_seconds())
    cpus = _objects(content.get("cpus"))
    if cpus:
        obs.cpus = sum(as_int(cpu.get("core")) or 1 for cpu in cpus)
        obs.extra["cpu_models"] = sorted({clean(cpu.get("name"), 120) for cpu in cpus if cpu.get("name")})
        threads = sum(as_int(cpu.get("thread")) or 0 for cpu in cpus)
        if threads:
            obs.extra["cpu_threads"] = threads
    obs.memory_mb = as_int(hardware.get("memory")) or (
        sum(as_int(m.get("capacity")) or 0 for m in _objects(content.get("memories"))) or None
    )
    obs.interfaces = _interfaces(_objects(content.get("networks")), errors, obs.where)
    obs.software = [
        Software(
            name=clean(s.get("name"), 200),
            version=clean(s.get("version"), 100),
            publisher=clean(s.get("publisher"), 200),
        )
        for s in _objects(content.get("softwares"))
        if clean(s.get("name"))
    ]
    obs.virtual_machines = [
        {
            key: clean(vm.get(key), 100)
            for key in ("name", "uuid", "vmtype", "subsystem", "status", "memory", "vcpu")
            if vm.get(key)
        }
        for vm in _objects(content.get("virtualmachines"))
    ]
    for key, value in (
        ("asset_tag", clean(bios.get("assettag"), 100)),
        ("chassis_type", clean(hardware.get("chassis_type"), 40)),
        ("mainboard_serial", clean(bios.get("msn"), 100)),
        ("os_arch", clean(system.get("arch"), 40)),
        ("kernel", clean(system.get("kernel_version"), 100)),
        ("virtualization", clean(hardware.get("vmsystem"), 40)),
    ):
        if value:
            obs.extra[key] = value


def _network_device(
    obs: Observation, device: dict[str, Any], content: dict[str, Any], errors: list[ParseError]
) -> None:
    """A switch, router, printer or storage inventoried by SNMP (netinventory)."""
    obs.hostname = clean(device.get("name"), 100)
    obs.serial = clean(device.get("serial"), 100)
    obs.manufacturer = clean(device.get("manufacturer"), 100)
    obs.model = clean(device.get("model"), 100)
    obs.os_version = clean(device.get("firmware"), 100)
    obs.uptime_seconds = snmp_uptime(device.get("uptime"))
    obs.memory_mb = as_int(device.get("ram"))
    ips = device.get("ips")
    addresses = [clean(ip, 45) for ip in (ips if isinstance(ips, list) else [ips]) if clean(ip, 45)]
    obs.interfaces = [
        _interface(
            device.get("mac"), addresses, name="", errors=errors, where=f"{obs.where} network_device.mac"
        )
    ]
    for key, value in (
        ("location", clean(device.get("location"), 200)),
        ("contact", clean(device.get("contact"), 200)),
        ("description", clean(device.get("description"), 255)),
        ("asset_tag", clean(device.get("assettag"), 100)),
        ("ports", len(_objects(content.get("network_ports"))) or None),
    ):
        if value:
            obs.extra[key] = value


def _interfaces(networks: Iterable[dict[str, Any]], errors: list[ParseError], where: str) -> list[Interface]:
    """One interface per (name, MAC): agents list an interface's IPv4 and IPv6 as separate entries."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for net in networks:
        name = clean(net.get("description"), 100)
        mac = clean(net.get("mac") or net.get("macaddr"), 40)
        entry = merged.setdefault((name, mac.lower()), {"ipv4": [], "ipv6": [], "virtual": False})
        for key, field in (("ipv4", "ipaddress"), ("ipv6", "ipaddress6")):
            value = clean(net.get(field), 45)
            if value and value not in entry[key]:
                entry[key].append(value)
        entry["virtual"] = (
            entry["virtual"]
            or flag(net.get("virtualdev"))
            or (clean(net.get("type"), 40).lower() in VIRTUAL_INTERFACE_TYPES)
        )
    return [
        _interface(
            mac,
            entry["ipv4"] + entry["ipv6"],
            name=name,
            virtual=entry["virtual"],
            errors=errors,
            where=f"{where} networks {name or mac}",
        )
        for (name, mac), entry in merged.items()
    ]


def _interface(
    mac: object,
    addresses: list[str],
    *,
    name: str,
    errors: list[ParseError],
    where: str,
    virtual: bool = False,
) -> Interface:
    text = clean(mac, 40)
    canonical = identity.canonical_mac(text)
    if text and not canonical:
        errors.append(ParseError(where, f"'{text}' is not a MAC address: the interface is kept without it."))
    return Interface(
        mac=canonical or None,
        ipv4=tuple(a for a in addresses if ":" not in a),
        ipv6=tuple(a for a in addresses if ":" in a),
        name=name,
        virtual=virtual,
    )


def _object(value: Any) -> dict[str, Any]:
    if isinstance(value, list):  # a section the XML repeated: the first one
        value = value[0] if value else {}
    return value if isinstance(value, dict) else {}


def _objects(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        return [value]
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _path(parts: Iterable[str | int]) -> str:
    """A JSON Schema instance path as people read it: content.networks[2].mac."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "inventory"


def _json_place(exc: Exception) -> str:
    line = getattr(exc, "lineno", None)
    column = getattr(exc, "colno", None)
    return f"line {line}, column {column}" if line else "input"
