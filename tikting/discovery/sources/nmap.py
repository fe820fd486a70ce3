"""nmap XML (`nmap -oX`) to observations, one per <host>, streamed host by host.

Read from each host: its state (up or down: a host seen down is evidence of absence, kept with
up=False), IPv4/IPv6/MAC addresses (the MAC with nmap's vendor), host names (the user-given name
or the reverse DNS one; else the name an NSE script found: NetBIOS, RDP/SQL NTLM info, SMB), open
ports with their services and versions, the OS matches (the best one as the OS when nmap is at
least OS_ACCURACY % sure; every match in the details), and the uptime. Times: the host's end time,
else the scan's start.

Works on every -oX layout from nmap 3.75 to 7.9x (xmloutputversion 1.01 to 1.05: osclass beside
or inside osmatch). A truncated file (an interrupted scan) keeps the hosts read before the break
and reports where it broke.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element
from xml.etree.ElementTree import ParseError as XMLSyntaxError

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET
from django.utils import timezone

from .. import identity
from ..observations import Interface, Observation, ParseError, ParseResult, Port
from .common import Input, InputTooLarge, LimitedReader, as_int, clean, xml_problem

__all__ = ["FORMAT", "OS_ACCURACY", "parse_nmap"]

FORMAT = "nmap-xml"
SOURCE = "nmap"
# nmap calls matches below 100 % guesses; under this accuracy the OS is not taken as the device's.
OS_ACCURACY = 90
# Matches kept in the details (nmap lists up to ten).
OS_MATCHES_KEPT = 5
# osclass types (nmap's device types) → observation kinds.
DEVICE_KINDS = {
    "general purpose": "computer",
    "router": "network_equipment",
    "switch": "network_equipment",
    "broadband router": "network_equipment",
    "wap": "network_equipment",
    "firewall": "network_equipment",
    "load balancer": "network_equipment",
    "bridge": "network_equipment",
    "hub": "network_equipment",
    "printer": "printer",
    "print server": "printer",
    "phone": "phone",
    "voip phone": "phone",
    "storage-misc": "storage",
}
# NSE script outputs that name the machine: (script id, element key) → "fqdn" or "hostname".
SCRIPT_NAMES = {
    ("rdp-ntlm-info", "DNS_Computer_Name"): "fqdn",
    ("ms-sql-ntlm-info", "DNS_Computer_Name"): "fqdn",
    ("smb-os-discovery", "fqdn"): "fqdn",
    ("rdp-ntlm-info", "NetBIOS_Computer_Name"): "hostname",
    ("ms-sql-ntlm-info", "NetBIOS_Computer_Name"): "hostname",
    ("smb-os-discovery", "server"): "hostname",
}


def parse_nmap(
    stream: Input, *, source_name: str | None = None, seen_at: dt.datetime | None = None
) -> ParseResult:
    """Observations of every <host> of an nmap XML document, and the problems met, each naming its
    host ("host[3] 192.0.2.7") or the place in the file. `source_name` is the observations' source
    (default "nmap": the name precedence knows it by); `seen_at` is used for hosts of a file that
    carries no time at all (default: now)."""
    result = ParseResult(format=FORMAT)
    source = source_name or SOURCE
    scan_start: dt.datetime | None = None
    index = 0
    try:
        for event, element in _events(stream):
            if event == "start" and element.tag == "nmaprun" and index == 0:
                scan_start = _epoch(element.get("start"))
            elif event == "root" and element.tag != "nmaprun":
                result.errors.append(
                    ParseError(
                        "input", f"Not an nmap XML file: the root element is <{element.tag}>, not <nmaprun>."
                    )
                )
                return result
            elif event == "end" and element.tag == "host":
                index += 1
                fallback = scan_start or seen_at or timezone.now()
                observation = _host(element, index, source, fallback, result.errors)
                if observation is not None:
                    result.observations.append(observation)
                element.clear()
    except (XMLSyntaxError, DefusedXmlException, InputTooLarge, UnicodeDecodeError) as exc:
        problem = xml_problem(exc)
        if index:
            problem.message += f" {index} host(s) were read before it."
        result.errors.append(problem)
    return result


def _events(stream: Input) -> Iterator[tuple[str, Element]]:
    """(event, element): "root" for the first element, then "start"/"end" as iterparse gives them."""
    first = True
    reader = LimitedReader(stream)
    for event, element in SafeET.iterparse(
        reader, events=("start", "end"), forbid_dtd=False, forbid_entities=True, forbid_external=True
    ):
        if first:
            first = False
            yield "root", element
        yield event, element


def _epoch(value: str | None) -> dt.datetime | None:
    seconds = as_int(value)
    if seconds is None or seconds <= 0:
        return None
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


def _host(
    host: Element, index: int, source: str, fallback: dt.datetime, errors: list[ParseError]
) -> Observation | None:
    addresses = host.findall("address")
    ips: dict[str, list[str]] = {"ipv4": [], "ipv6": []}
    wrong: list[str] = []
    for address in addresses:
        kind, value = address.get("addrtype", ""), clean(address.get("addr"), 45)
        if kind in ips and value:
            (ips[kind] if _is_ip(value, kind) else wrong).append(value)
    ipv4, ipv6 = ips["ipv4"], ips["ipv6"]
    macs = [a for a in addresses if a.get("addrtype") == "mac" and a.get("addr")]
    label = (ipv4 or ipv6 or [clean(m.get("addr")) for m in macs] or [""])[0]
    where = f"host[{index}] {label}".strip()
    for value in wrong:
        errors.append(ParseError(f"{where} address", f"'{value}' is not an IP address: left out."))
    if not (ipv4 or ipv6 or macs):
        errors.append(ParseError(where, "The host has no usable address: skipped."))
        return None
    status = host.find("status")
    up = status is None or status.get("state") == "up"
    seen = _epoch(host.get("endtime")) or _epoch(host.get("starttime")) or fallback
    obs = Observation(source=source, seen_at=seen, where=where, up=up)
    if status is not None and status.get("reason"):
        obs.extra["status_reason"] = clean(status.get("reason"), 40)

    mac = ""
    vendor = ""
    if macs:
        mac = identity.canonical_mac(macs[0].get("addr", ""))
        vendor = clean(macs[0].get("vendor"), 100)
        if not mac:
            errors.append(
                ParseError(f"{where} address", f"'{macs[0].get('addr')}' is not a MAC address: left out.")
            )
    obs.interfaces.append(Interface(mac=mac or None, ipv4=tuple(ipv4), ipv6=tuple(ipv6), vendor=vendor))

    _names(host, obs)
    if not up:
        return obs
    _ports(host, obs, where, errors)
    _os(host, obs)
    uptime = host.find("uptime")
    if uptime is not None:
        obs.uptime_seconds = as_int(uptime.get("seconds"))
        if uptime.get("lastboot"):
            obs.extra["last_boot"] = clean(uptime.get("lastboot"), 40)
    return obs


def _names(host: Element, obs: Observation) -> None:
    """The user-given name first, then the PTR one; NSE script names where DNS gave none."""
    names = [
        (h.get("type", ""), clean(h.get("name"))) for h in host.findall("hostnames/hostname") if h.get("name")
    ]
    names.sort(key=lambda pair: 0 if pair[0] == "user" else 1)
    if names:
        obs.extra["hostnames"] = list(dict.fromkeys(name for _, name in names))
        name = names[0][1]
        if "." in name:
            obs.fqdn = name
            obs.hostname = name.split(".", 1)[0]
        else:
            obs.hostname = name
    found: dict[str, str] = {}
    for script in host.iter("script"):
        script_id = script.get("id", "")
        if script_id == "nbstat":
            netbios = _nbstat_name(script.get("output", ""))
            if netbios:
                found.setdefault("hostname", netbios)
                obs.extra["netbios_name"] = netbios
            continue
        for elem in script.iter("elem"):
            attribute = SCRIPT_NAMES.get((script_id, elem.get("key", "")))
            if attribute and clean(elem.text):
                found.setdefault(attribute, clean(elem.text))
    if not obs.fqdn and "." in found.get("fqdn", ""):
        obs.fqdn = found["fqdn"]
    if not obs.hostname:
        obs.hostname = found.get("hostname", "") or (obs.fqdn.split(".", 1)[0] if obs.fqdn else "")


def _is_ip(value: str, kind: str) -> bool:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False
    return address.version == (4 if kind == "ipv4" else 6)


def _nbstat_name(output: str) -> str:
    """The NetBIOS name in nbstat's output ("NetBIOS name: KINGSLANDING, NetBIOS user: …")."""
    head = "NetBIOS name:"
    if head not in output:
        return ""
    name = output.split(head, 1)[1].split(",", 1)[0].strip()
    return "" if name.startswith("<") else clean(name, 100)


def _ports(host: Element, obs: Observation, where: str, errors: list[ParseError]) -> None:
    for position, port in enumerate(host.findall("ports/port"), start=1):
        state = port.find("state")
        state_name = clean(state.get("state") if state is not None else "", 20)
        if state_name not in ("open", "open|filtered"):
            continue
        number = as_int(port.get("portid"))
        if number is None or not 0 <= number <= 65535:
            errors.append(
                ParseError(
                    f"{where} ports/port[{position}]",
                    f"portid '{port.get('portid')}' is not a port number: left out.",
                )
            )
            continue
        service = port.find("service")
        attrs: dict[str, Any] = dict(service.attrib) if service is not None else {}
        version = " ".join(clean(attrs.get(k), 100) for k in ("version", "extrainfo") if attrs.get(k))
        obs.ports.append(
            Port(
                protocol=clean(port.get("protocol"), 10) or "tcp",
                number=number,
                state=state_name,
                service=clean(attrs.get("name"), 60),
                product=clean(attrs.get("product"), 120),
                version=version[:120],
            )
        )
        if attrs.get("devicetype") and obs.kind == "unknown":
            obs.kind = DEVICE_KINDS.get(attrs["devicetype"].lower(), "unknown")
        if attrs.get("ostype"):
            obs.extra.setdefault("service_os", clean(attrs["ostype"], 60))


@dataclass
class _Match:
    name: str
    accuracy: int
    classes: list[dict[str, str]]
    cpe: list[str]


def _class(element: Element) -> dict[str, str]:
    return {
        key: clean(element.get(key), 60)
        for key in ("type", "vendor", "osfamily", "osgen")
        if element.get(key)
    }


def _os(host: Element, obs: Observation) -> None:
    """The OS matches, best first; classes inside a match (1.04+) or beside the matches (older)."""
    os_element = host.find("os")
    if os_element is None:
        return
    loose_classes = os_element.findall("osclass")
    matches = [
        _Match(
            name=clean(match.get("name"), 200),
            accuracy=as_int(match.get("accuracy")) or 0,
            classes=[_class(c) for c in (match.findall("osclass") or loose_classes)],
            cpe=[
                clean(cpe.text, 200)
                for c in (match.findall("osclass") or loose_classes)
                for cpe in c.findall("cpe")
                if cpe.text
            ],
        )
        for match in os_element.findall("osmatch")
    ]
    if not matches and loose_classes:  # nmap 3.x: classes only
        best_class = max(loose_classes, key=lambda c: as_int(c.get("accuracy")) or 0)
        described = _class(best_class)
        name = " ".join(described[k] for k in ("vendor", "osfamily", "osgen") if k in described)
        matches.append(_Match(name, as_int(best_class.get("accuracy")) or 0, [described], []))
    if not matches:
        return
    matches.sort(key=lambda m: -m.accuracy)  # stable: nmap's order among equals
    best = matches[0]
    obs.extra["os_matches"] = [{"name": m.name, "accuracy": m.accuracy} for m in matches[:OS_MATCHES_KEPT]]
    obs.extra["os_accuracy"] = best.accuracy
    if best.cpe:
        obs.extra["os_cpe"] = best.cpe[:3]
    if best.accuracy < OS_ACCURACY:
        return
    first_class = best.classes[0] if best.classes else {}
    obs.os_name = best.name[:100]
    obs.os_version = first_class.get("osgen", "")[:100]
    device_type = first_class.get("type", "").lower()
    if device_type and obs.kind == "unknown":
        obs.kind = DEVICE_KINDS.get(device_type, "unknown")
