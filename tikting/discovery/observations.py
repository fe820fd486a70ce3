"""What a discovery source says it saw: plain data, no database writes.

Odysseus reads many sources (nmap XML, GLPI Agent / FusionInventory inventories in XML and JSON,
network discovery and SNMP query results, CSV exports of a CMDB). Each parser turns its input into
`Observation`s; reconciliation (`tikting/discovery/reconcile.py`) holds them against the CMDB in one
transactional, idempotent run. Parsers never write; reconciliation never parses.

    parse_<format>(stream, *, source_name) -> ParseResult   # observations + errors naming the place
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Interface:
    """A network interface: MAC (normalised "aa:bb:cc:dd:ee:ff", None when unknown) and addresses."""

    mac: str | None = None
    ipv4: tuple[str, ...] = ()
    ipv6: tuple[str, ...] = ()
    name: str = ""
    vendor: str = ""  # the MAC's vendor as the source reports it (nmap's OUI lookup)
    virtual: bool = False  # a virtual or randomised MAC: never an identity (bridges, VPNs, VMs)


@dataclass(frozen=True)
class Port:
    protocol: str  # "tcp" / "udp"
    number: int
    state: str = "open"
    service: str = ""
    product: str = ""
    version: str = ""


@dataclass(frozen=True)
class Software:
    name: str
    version: str = ""
    publisher: str = ""


@dataclass
class Observation:
    """One device as one source saw it at one time. Empty strings / None: the source did not say."""

    source: str  # "nmap", "glpi-agent", "fusioninventory", "netdiscovery", "snmp", "csv"
    seen_at: dt.datetime
    where: str  # the place in the input, for messages: "hosts[3] 192.0.2.7", "line 12"
    kind: str = "unknown"  # "computer", "network_equipment", "printer", "phone", "virtual_machine", "unknown"
    up: bool = True  # nmap: host state; a host seen down is evidence of absence, not presence
    hostname: str = ""
    fqdn: str = ""
    serial: str = ""
    manufacturer: str = ""
    model: str = ""
    uuid: str = ""  # the system (SMBIOS) UUID
    os_name: str = ""
    os_version: str = ""
    uptime_seconds: int | None = None
    cpus: int | None = None
    memory_mb: int | None = None
    interfaces: list[Interface] = field(default_factory=list)
    ports: list[Port] = field(default_factory=list)
    software: list[Software] = field(default_factory=list)
    virtual_machines: list[dict[str, Any]] = field(default_factory=list)  # name, uuid, vmtype, status
    extra: dict[str, Any] = field(default_factory=dict)  # anything else worth keeping, JSON-safe


@dataclass
class ParseError:
    where: str  # "line 12", "hosts[3]", "REQUEST/CONTENT/NETWORKS[2]"
    message: str  # what is wrong and what to do


@dataclass
class ParseResult:
    format: str  # "nmap-xml", "glpi-json", "glpi-xml", "netdiscovery-xml", "snmpquery-xml", "csv"
    observations: list[Observation] = field(default_factory=list)
    errors: list[ParseError] = field(default_factory=list)
