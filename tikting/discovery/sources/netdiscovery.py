"""Network discovery and SNMP query results (FusionInventory / GLPI Agent XML) to observations.

    <REQUEST><QUERY>NETDISCOVERY</QUERY><CONTENT><DEVICE>…</DEVICE>…   one DEVICE per answering IP
    <REQUEST><QUERY>SNMPQUERY</QUERY><CONTENT><DEVICE><INFO>…</INFO><PORTS>…   a full SNMP inventory

Read from a NETDISCOVERY device: its IP (and IPS), MAC, names (SNMP sysName, else DNS, else
NetBIOS), sysDescr, manufacturer, model, serial number, type, location, contact, uptime and
firmware. From an SNMPQUERY device's INFO: the same, plus memory, and the count of its ports (the
ports' own MACs are the ports', not the device's identity). Sources: "netdiscovery" and "snmp".
"""

from __future__ import annotations

import datetime as dt
from xml.etree.ElementTree import Element

from django.utils import timezone

from .. import identity
from ..observations import Interface, Observation, ParseError, ParseResult
from .common import Input, as_int, clean, read_request, snmp_uptime

__all__ = ["NETDISCOVERY_FORMAT", "SNMPQUERY_FORMAT", "parse_netdiscovery"]

NETDISCOVERY_FORMAT = "netdiscovery-xml"
SNMPQUERY_FORMAT = "snmpquery-xml"
QUERIES = {"NETDISCOVERY": (NETDISCOVERY_FORMAT, "netdiscovery"), "SNMPQUERY": (SNMPQUERY_FORMAT, "snmp")}
# TYPE values (GLPI's item types as the agent writes them) → observation kinds.
TYPES = {
    "NETWORKING": "network_equipment",
    "PRINTER": "printer",
    "STORAGE": "storage",
    "COMPUTER": "computer",
    "PHONE": "phone",
}


def parse_netdiscovery(
    stream: Input, *, source_name: str | None = None, seen_at: dt.datetime | None = None
) -> ParseResult:
    """Observations of every DEVICE of a NETDISCOVERY or SNMPQUERY document; problems name the
    device ("DEVICE[2] 192.0.2.7"). Neither format carries a time: `seen_at` (default: now) is
    the time of every device."""
    result = ParseResult(format=NETDISCOVERY_FORMAT)
    request = read_request(stream, result.errors)
    if request is None:
        return result
    root, query = request
    if root.tag != "REQUEST" or query not in QUERIES:
        result.errors.append(
            ParseError(
                "REQUEST",
                f"Not a network discovery or SNMP query result (root <{root.tag}>, QUERY '{query}').",
            )
        )
        return result
    result.format, source = QUERIES[query]
    seen = seen_at or timezone.now()
    for index, device in enumerate(root.findall("CONTENT/DEVICE"), start=1):
        info = device.find("INFO") if query == "SNMPQUERY" else device
        if info is None:
            result.errors.append(ParseError(f"DEVICE[{index}]", "The device has no INFO: skipped."))
            continue
        observation = _device(info, device, index, source_name or source, seen, result.errors)
        if observation is not None:
            result.observations.append(observation)
    return result


def _device(
    info: Element, device: Element, index: int, source: str, seen: dt.datetime, errors: list[ParseError]
) -> Observation | None:
    ips = [clean(ip.text, 45) for ip in info.findall("IPS/IP") if clean(ip.text, 45)]
    first_ip = clean(info.findtext("IP"), 45)
    if first_ip and first_ip not in ips:
        ips.insert(0, first_ip)
    where = f"DEVICE[{index}] {ips[0] if ips else ''}".strip()
    mac_text = clean(info.findtext("MAC"), 40)
    mac = identity.canonical_mac(mac_text)
    if mac_text and not mac:
        errors.append(
            ParseError(f"{where} MAC", f"'{mac_text}' is not a MAC address: the device is kept without it.")
        )
    name = clean(info.findtext("SNMPHOSTNAME") or info.findtext("NAME"), 255)
    dns = clean(info.findtext("DNSHOSTNAME"), 255)
    netbios = clean(info.findtext("NETBIOSNAME"), 100)
    if identity.hostname_and_fqdn(dns, "") == ("", ""):  # an IP address written as the DNS name
        dns = ""
    if not (ips or mac or name or dns or netbios or clean(info.findtext("SERIAL"))):
        errors.append(ParseError(where, "The device has no address, name or serial number: skipped."))
        return None
    obs = Observation(
        source=source,
        seen_at=seen,
        where=where,
        kind=TYPES.get(clean(info.findtext("TYPE"), 40).upper(), "unknown"),
        hostname=(name or dns or netbios).split(".", 1)[0][:100],
        fqdn=dns if "." in dns else (name if "." in name else ""),
        serial=clean(info.findtext("SERIAL"), 100),
        manufacturer=clean(info.findtext("MANUFACTURER"), 100),
        model=clean(info.findtext("MODEL"), 100),
        os_version=clean(info.findtext("FIRMWARE"), 100),
        uptime_seconds=snmp_uptime(info.findtext("UPTIME")),
        memory_mb=as_int(info.findtext("RAM")),
        interfaces=[
            Interface(
                mac=mac or None,
                ipv4=tuple(ip for ip in ips if ":" not in ip),
                ipv6=tuple(ip for ip in ips if ":" in ip),
            )
        ],
    )
    for key, value in (
        ("location", clean(info.findtext("LOCATION"), 200)),
        ("contact", clean(info.findtext("CONTACT"), 200)),
        ("description", clean(info.findtext("DESCRIPTION") or info.findtext("COMMENTS"), 255)),
        ("asset_tag", clean(info.findtext("ASSETTAG"), 100)),
        ("netbios_name", netbios),
        ("dns_name", dns),
        ("ports", len(device.findall("PORTS/PORT")) or None),
    ):
        if value:
            obs.extra[key] = value
    return obs
