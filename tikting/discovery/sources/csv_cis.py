"""CSV of configuration items to observations (source "csv"), one per row.

The columns are ours (docs/discovery.md, "CSV of CIs": the names `tikting export ci` writes) or
another CMDB's export: each column has the names ServiceNow (cmdb_ci export), GLPI (computer list
export) and iTop give it, matched without regard to case, spaces, dashes or underscores. Columns
not listed are not read. The delimiter is the one of `,` `;` or tab the header uses most.

A row needs one identifying value (name, host name, FQDN, serial number, UUID, MAC or IP address);
errors name the line (of the file: a quoted value spanning lines counts all of them) and the
column, and the row's other values are kept. `last_seen` (or an alias) is when the row's device
was seen; without it, the `seen_at` given (the CLI passes the file's modification time).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import ipaddress
import re

from django.utils import timezone

from .. import identity
from ..observations import Interface, Observation, ParseError, ParseResult
from .common import Input, clean, local_time, read_input

__all__ = ["COLUMNS", "FORMAT", "column_for", "parse_csv_cis"]

FORMAT = "csv"
SOURCE = "csv"
# Our column → the names other CMDB exports give it (compared by `_key`).
COLUMNS: dict[str, tuple[str, ...]] = {
    "name": ("name", "ci_name", "display_name", "asset_name", "computer_name", "device_name"),
    "ci_class": (
        "ci_class",
        "class",
        "sys_class_name",
        "itemtype",
        "item_type",
        "asset_type",
        "ci_type_class",
    ),
    "hostname": ("hostname", "host_name", "host"),
    "fqdn": ("fqdn", "dns_name", "fully_qualified_domain_name", "dns"),
    "serial_number": ("serial_number", "serial", "serialnumber", "ssn", "serial_no"),
    "manufacturer": ("manufacturer", "vendor", "make", "brand"),
    "model_name": ("model_name", "model", "model_id", "model_number", "computer_model"),
    "system_uuid": ("system_uuid", "uuid", "bios_uuid", "smbios_uuid", "hardware_uuid"),
    "asset_tag": ("asset_tag", "assettag", "inventory_number", "asset_number", "otherserial"),
    "mac_address": ("mac_address", "mac", "mac_addresses", "macaddress", "network_mac"),
    "ip_address": ("ip_address", "ip", "ip_addresses", "ipaddress", "management_ip", "primary_ip"),
    "os_name": ("os_name", "os", "operating_system", "operating_system_name", "os_family"),
    "os_version": ("os_version", "operating_system_version", "os_release", "os_service_pack"),
    "location": ("location", "site", "room"),
    "owner": ("owner", "assigned_to", "managed_by", "technician_in_charge", "user", "owned_by"),
    "status": ("status", "install_status", "operational_status", "state", "lifecycle_status"),
    "service": ("service", "business_service", "application_service"),
    "last_seen": (
        "last_seen",
        "last_seen_at",
        "last_discovered",
        "last_inventory_update",
        "last_scan",
        "discovery_date",
        "sys_updated_on",
    ),
}
# Class names of other CMDBs (and ours) → (observation kind, our CI class).
CLASSES: dict[str, tuple[str, str]] = {
    "server": ("computer", "server"),
    "workstation": ("computer", "workstation"),
    "computer": ("computer", "workstation"),
    "pc": ("computer", "workstation"),
    "laptop": ("computer", "workstation"),
    "desktop": ("computer", "workstation"),
    "network": ("network_equipment", "network"),
    "networkequipment": ("network_equipment", "network"),
    "networkdevice": ("network_equipment", "network"),
    "netgear": ("network_equipment", "network"),
    "switch": ("network_equipment", "network"),
    "router": ("network_equipment", "network"),
    "firewall": ("network_equipment", "network"),
    "printer": ("printer", "printer"),
    "vm": ("virtual_machine", "vm"),
    "virtualmachine": ("virtual_machine", "vm"),
    "vminstance": ("virtual_machine", "vm"),
    "vmwareinstance": ("virtual_machine", "vm"),
    "phone": ("phone", "other"),
    "storage": ("storage", "storage"),
    "storagedevice": ("storage", "storage"),
    "application": ("unknown", "application"),
    "database": ("unknown", "database"),
    "other": ("unknown", "other"),
}
# Endings of longer class names ("cmdb_ci_linux_server", "cmdb_ci_db_mssql_database").
CLASS_ENDINGS = ("server", "computer", "printer", "switch", "router", "database", "storage")
_SPLIT = re.compile(r"[;,\s|]+")


def _key(name: str) -> str:
    return re.sub(r"[\s_\-./]+", "", name.strip().lower())


_ALIASES = {_key(alias): column for column, aliases in COLUMNS.items() for alias in aliases}


def column_for(header: str) -> str | None:
    """Our column for a header of a CSV file ("Serial Number" → "serial_number"), or None."""
    return _ALIASES.get(_key(header))


def class_for(value: str) -> tuple[str, str] | None:
    """(observation kind, our CI class) of a class as CMDBs write it ("cmdb_ci_linux_server" →
    ("computer", "server")), or None for one this import does not know."""
    key = _key(value).removeprefix("cmdbci")
    if not key:
        return ("unknown", "")
    if key in CLASSES:
        return CLASSES[key]
    ending = next((end for end in CLASS_ENDINGS if key.endswith(end)), None)
    return CLASSES[ending] if ending else None


def parse_csv_cis(
    stream: Input, *, source_name: str | None = None, seen_at: dt.datetime | None = None
) -> ParseResult:
    """One observation per row of a CSV of CIs; errors name the line and the column."""
    result = ParseResult(format=FORMAT)
    raw = read_input(stream, result.errors)
    if raw is None:
        return result
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        result.errors.append(
            ParseError(
                f"line {line}", "Not UTF-8 text: save the file as UTF-8 (CSV UTF-8) and import it again."
            )
        )
        return result
    text = text.replace("\x00", "")
    first_line = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        result.errors.append(
            ParseError("line 1", "The file is empty: expected a header line naming the columns.")
        )
        return result
    columns = [column_for(name) for name in header]
    if not any(columns):
        result.errors.append(
            ParseError(
                "line 1",
                "No column this import reads (name, hostname, serial_number, … in docs/discovery.md); found: "
                f"{', '.join(header)[:300]}.",
            )
        )
        return result
    fallback = seen_at or timezone.now()
    start = reader.line_num + 1
    try:
        for row in reader:
            line = start
            start = reader.line_num + 1
            if not any(cell.strip() for cell in row):
                continue
            values: dict[str, str] = {}
            for column, cell in zip(columns, row, strict=False):
                if column and cell.strip() and column not in values:
                    values[column] = cell.strip()
            if len(row) > len(header):
                result.errors.append(
                    ParseError(
                        f"line {line}",
                        f"{len(row)} values for {len(header)} columns: the extra values are not read.",
                    )
                )
            observation = _row(values, line, source_name or SOURCE, fallback, result.errors)
            if observation is not None:
                result.observations.append(observation)
    except csv.Error as exc:
        result.errors.append(
            ParseError(
                f"line {reader.line_num}", f"Not readable as CSV ({exc}): the rest of the file is not read."
            )
        )
    return result


def _row(
    values: dict[str, str], line: int, source: str, fallback: dt.datetime, errors: list[ParseError]
) -> Observation | None:
    where = f"line {line}"

    def problem(column: str, message: str) -> None:
        errors.append(ParseError(f"{where}, {column}", message))

    macs: list[str] = []
    for text in _SPLIT.split(values.get("mac_address", "")):
        if not text:
            continue
        mac = identity.canonical_mac(text)
        if mac:
            macs.append(mac)
        else:
            problem("mac_address", f"'{text}' is not a MAC address: left out.")
    ips: list[str] = []
    for text in _SPLIT.split(values.get("ip_address", "")):
        if not text:
            continue
        try:
            ips.append(str(ipaddress.ip_address(text)))
        except ValueError:
            problem("ip_address", f"'{text}' is not an IP address: left out.")
    name = clean(values.get("name"), 200)
    hostname = clean(values.get("hostname"), 255)
    fqdn = clean(values.get("fqdn"), 255)
    if not hostname and name and " " not in name:
        hostname = name  # a CI named after its host, as most exports have it
    if "." in hostname and not fqdn:
        fqdn = hostname
    identifying = (name, hostname, fqdn, values.get("serial_number"), values.get("system_uuid"), macs, ips)
    if not any(identifying):
        errors.append(
            ParseError(
                where,
                "No identifying value (name, hostname, fqdn, serial_number, system_uuid, mac_address or "
                "ip_address): row skipped.",
            )
        )
        return None
    seen = fallback
    if values.get("last_seen"):
        parsed = local_time(values["last_seen"])
        if parsed is None:
            problem(
                "last_seen",
                f"'{values['last_seen']}' is not a date and time (YYYY-MM-DD HH:MM:SS): the file's time "
                "is used.",
            )
        else:
            seen = parsed
    kind, ci_class = "unknown", ""
    if values.get("ci_class"):
        found = class_for(values["ci_class"])
        if found is None:
            problem(
                "ci_class",
                f"'{values['ci_class']}' is not a class this import knows (server, workstation, network, "
                "printer, vm, storage, …): kept as unknown.",
            )
        else:
            kind, ci_class = found
    uuid = clean(values.get("system_uuid"), 36)
    if uuid and len(re.sub(r"[^0-9a-fA-F]", "", uuid)) != 32:
        problem("system_uuid", f"'{uuid}' is not a UUID: left out.")
        uuid = ""
    obs = Observation(
        source=source,
        seen_at=seen,
        where=where,
        kind=kind,
        hostname=hostname.split(".", 1)[0][:100],
        fqdn=fqdn if "." in fqdn else "",
        serial=clean(values.get("serial_number"), 100),
        manufacturer=clean(values.get("manufacturer"), 100),
        model=clean(values.get("model_name"), 100),
        uuid=uuid,
        os_name=clean(values.get("os_name"), 100),
        os_version=clean(values.get("os_version"), 100),
        interfaces=_interfaces(macs, ips),
    )
    for key in ("name", "asset_tag", "location", "owner", "status", "service"):
        if values.get(key):
            obs.extra[key] = clean(values[key], 200)
    if ci_class:  # our class, which a CI created from the row takes; the file's own word beside it
        obs.extra["ci_class"] = ci_class
    if values.get("ci_class") and values["ci_class"] != ci_class:
        obs.extra["source_class"] = clean(values["ci_class"], 100)
    return obs


def _interfaces(macs: list[str], ips: list[str]) -> list[Interface]:
    """The addresses as interfaces: the first MAC with all the IPs (an export lists a CI's
    addresses, not which interface has which), the other MACs alone."""
    if not macs and not ips:
        return []
    first = Interface(
        mac=macs[0] if macs else None,
        ipv4=tuple(ip for ip in ips if ":" not in ip),
        ipv6=tuple(ip for ip in ips if ":" in ip),
    )
    return [first, *(Interface(mac=mac) for mac in macs[1:])]
