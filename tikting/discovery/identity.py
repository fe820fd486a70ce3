"""Identity values as reconciliation compares them: one spelling per value, and placeholders out.

Sources spell one value many ways (a MAC as "AA-BB-CC-DD-EE-FF" or "aabb.ccdd.eeff", a host name
with or without its domain, a manufacturer as "Dell Inc." or "DELL"), and firmware fills empty
fields with placeholders ("To Be Filled By O.E.M.", a UUID of zeros) that would make every machine
of a model one device. GLPI keeps such values in its blacklists; these lists follow its defaults
and the SMBIOS placeholders seen in the wild. Plain Python, no database.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence

__all__ = [
    "canonical_mac",
    "hostname_and_fqdn",
    "identity_mac",
    "manufacturer_key",
    "serial_key",
    "trusted",
    "uuid_key",
]

# Serial numbers firmware and tools put where there is none (compared upper-case, trimmed).
PLACEHOLDER_SERIALS = frozenset(
    {
        "",
        "N/A",
        "NA",
        "NONE",
        "NULL",
        "(NULL STRING)",
        "INVALID",
        "UNKNOWN",
        "UNKNOW",
        "EMPTY",
        "DEFAULT STRING",
        "NOT SPECIFIED",
        "NOT AVAILABLE",
        "NOT APPLICABLE",
        "TO BE FILLED BY O.E.M.",
        "TO BE FILLED BY OEM",
        "O.E.M.",
        "OEM",
        "OEM_SERIAL",
        "SYSTEM SERIAL NUMBER",
        "SYSTEMSERIALNUMB",
        "CHASSIS SERIAL NUMBER",
        "SERIAL NUMBER XXXXXX",
        "SYS-1234567890",
        "SYS-9876543210",
        "SN-12345",
        "SN-1234567890",
        "MB-1234567890",
        "EVAL",
        "IATPASS",
        "TULIP COMPUTERS",
        "0123456789",
        "NNNNNNN",
    }
)
# Serials made of one repeated character (0000000, FFFFFFF, XXXXXX, 1111111) or a counting run.
_REPEATED = re.compile(r"^(.)\1*$")
_COUNTING = re.compile(r"^(0?123456789(0|00|000|01234567)?|12345678?|123456|12345)$")

# System UUIDs firmware reports when it has none, or the same for every board of a model.
PLACEHOLDER_UUIDS = frozenset(
    {
        "00000000-0000-0000-0000-000000000000",
        "ffffffff-ffff-ffff-ffff-ffffffffffff",
        "03000200-0400-0500-0006-000700080009",
        "00020003-0004-0005-0006-000700080009",
        "01010101-0101-0101-0101-010101010101",
        "6ab5b300-538d-1014-9fb5-b0684d007b53",
    }
)
# MAC addresses of no single device: unset, broadcast, and the fixed ones of well-known virtual
# adapters (Windows RAS, Cisco VPN, Microsoft Teredo/ISATAP).
PLACEHOLDER_MACS = frozenset(
    {
        "00:00:00:00:00:00",
        "ff:ff:ff:ff:ff:ff",
        "20:41:53:59:4e:ff",
        "02:00:4e:43:50:49",
        "00:00:00:00:00:e0",
        "00:50:56:c0:00:01",  # VMware host-only adapter of every workstation install
        "00:50:56:c0:00:08",  # VMware NAT adapter, likewise
    }
)
# Host names that name no particular machine.
PLACEHOLDER_NAMES = frozenset({"", "localhost", "localhost.localdomain", "unknown", "none", "(none)"})
# Manufacturer names under other spellings (after manufacturer_key's first step).
MANUFACTURER_ALIASES = {
    "hewlett": "hp",
    "hewlett-packard": "hp",
    "hpe": "hp",
    "hewlettpackard": "hp",
    "ibm": "ibm",
    "lenovo": "lenovo",
    "vmware,": "vmware",
    "microsoft": "microsoft",
}


def serial_key(value: str) -> str:
    """The serial number in upper case, trimmed; "" for a placeholder."""
    key = (value or "").strip().upper()
    compact = re.sub(r"[^0-9A-Z]", "", key)
    if key in PLACEHOLDER_SERIALS or not compact or _REPEATED.match(compact) or _COUNTING.match(compact):
        return ""
    return key


def uuid_key(value: str) -> str:
    """The system UUID in lower case with its dashes ("" for a placeholder or a malformed one)."""
    text = re.sub(r"[^0-9a-fA-F]", "", value or "").lower()
    if len(text) != 32:
        return ""
    key = f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
    return "" if key in PLACEHOLDER_UUIDS else key


def canonical_mac(value: str) -> str:
    """ "aa:bb:cc:dd:ee:ff" from any common spelling (dashes, dots, none), or "" if it is not one."""
    digits = re.sub(r"[^0-9a-fA-F]", "", value or "").lower()
    if len(digits) != 12:
        return ""
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def identity_mac(value: str, *, virtual: bool = False) -> str:
    """The MAC as an identity, or "" when it cannot be one: virtual (the source says so), locally
    administered (the second bit of the first octet: randomised by phones and laptops, made up by
    hypervisors, containers and VPNs), multicast, or a well-known placeholder."""
    mac = canonical_mac(value)
    if not mac or virtual or mac in PLACEHOLDER_MACS:
        return ""
    first = int(mac[:2], 16)
    if first & 0b10 or first & 0b01:  # locally administered, or a group (multicast) address
        return ""
    return mac


def hostname_and_fqdn(hostname: str, fqdn: str) -> tuple[str, str]:
    """(short host name, fully qualified name), lower case; a dotted host name is an FQDN when no
    FQDN is given. An IP address given as a name, or a placeholder, is no name."""
    host = (hostname or "").strip().rstrip(".").lower()
    full = (fqdn or "").strip().rstrip(".").lower()
    if _is_ip(host):
        host = ""
    if _is_ip(full):
        full = ""
    if "." in host:
        full = full or host
        host = host.split(".", 1)[0]
    if not host and full:
        host = full.split(".", 1)[0]
    if full in PLACEHOLDER_NAMES or "." not in full:
        full = ""  # a single label is a host name, not a fully qualified one
    if host in PLACEHOLDER_NAMES:
        host = ""
    return host[:100], full[:255]


def manufacturer_key(value: str) -> str:
    """The first word of the manufacturer's name, lower case, letters and digits only ("Dell Inc."
    → "dell", "LENOVO" → "lenovo"), with a few known aliases ("Hewlett-Packard" → "hp"). Compared
    as a prefix of the CI's manufacturer, lower-cased (docs/discovery.md)."""
    text = (value or "").strip().lower()
    if not text or text in {"to be filled by o.e.m.", "system manufacturer", "default string", "oem"}:
        return ""
    first = text.split()[0]
    first = MANUFACTURER_ALIASES.get(first, first)
    return re.sub(r"[^0-9a-z]", "", first)


_MAYBE_IP = re.compile(r"^[0-9a-fA-F.:]+$")
_IPV4 = re.compile(r"^(\d{1,3})\.(\d{1,3})\.\d{1,3}\.\d{1,3}$")


def _is_ip(text: str) -> bool:
    if not text or not _MAYBE_IP.match(text):  # most names: no parsing
        return False
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(ranges: Iterable[str]) -> list[Network]:
    """The trusted ranges as networks; ValueError naming a range that is not one."""
    result: list[Network] = []
    for text in ranges:
        try:
            result.append(ipaddress.ip_network(text.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"TIKTING_DISCOVERY_TRUSTED_RANGES: '{text}' is not a network ({exc}).") from exc
    return result


def trusted(ip: str, ranges: Sequence[Network]) -> bool:
    """Is `ip` inside one of the trusted ranges (where addresses are assigned statically)?"""
    if not ip or not ranges:
        return False
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address.version == net.version and address in net for net in ranges)


def _plain_global(text: str, first: str, second: str) -> bool:
    """A dotted IPv4 that is neither "this network", loopback nor link-local."""
    return (
        first not in ("0", "127")
        and (first, second) != ("169", "254")
        and all(int(part) < 256 for part in text.split("."))
    )


def primary_ip(ipv4: Sequence[str], ipv6: Sequence[str]) -> str:
    """The address a CI is shown with: the first IPv4 that is not loopback or link-local, else the
    first global IPv6, else the first address at all."""
    for text in ipv4:
        plain = _IPV4.match(text)  # the common case, without ipaddress's parsing
        if plain and _plain_global(text, plain.group(1), plain.group(2)):
            return text
    for text in (*ipv4, *ipv6):
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            continue
        if not (address.is_loopback or address.is_link_local or address.is_unspecified):
            return str(address)
    for text in (*ipv4, *ipv6):
        try:
            return str(ipaddress.ip_address(text))
        except ValueError:
            continue
    return ""
