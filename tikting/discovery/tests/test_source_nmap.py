"""nmap XML: what is read from each host, the problems named, and the XML attacks refused."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.test import override_settings

from tikting.discovery.sources.nmap import parse_nmap

from .samples import fixture, needs_shared, shared_files

HEADER = (
    b'<?xml version="1.0"?>\n<!DOCTYPE nmaprun>\n<nmaprun scanner="nmap" start="1700000000" version="7.93">\n'
)


def scan(*hosts: str) -> bytes:
    return HEADER + "".join(hosts).encode() + b"</nmaprun>\n"


def host(body: str, state: str = "up", end: str = "1700000100") -> str:
    return f'<host endtime="{end}"><status state="{state}" reason="echo-reply"/>{body}</host>\n'


# --- Real files -----------------------------------------------------------------------------------


@needs_shared
@pytest.mark.parametrize("path", shared_files("nmap", "*.xml"), ids=lambda p: p.name)
def test_every_shared_nmap_file_is_read_or_its_problem_named(path: Path):
    result = parse_nmap(path.read_bytes())
    assert result.format == "nmap-xml"
    assert (
        result.observations or result.errors or path.name in {"nmap-ndiff__empty.xml", "nmap-ndiff__down.xml"}
    )
    for observation in result.observations:
        assert observation.where.startswith("host[")
        assert observation.seen_at.tzinfo is not None
    if path.name in {"scans2any__goad-mini-incomplete.xml", "nmap-zenmap__nmap-output-error.xml"}:
        assert result.errors[0].where.startswith("line ")  # names where the file breaks


def test_hosts_up_and_down_with_mac_vendors():
    result = parse_nmap(fixture("libnmap__full_sudo6.xml"))
    assert len(result.observations) == 256
    up = [o for o in result.observations if o.up]
    assert len(up) == 4  # 252 hosts listed down: evidence of absence, kept with up=False
    vendors = {i.mac: i.vendor for o in up for i in o.interfaces if i.mac}
    assert vendors == {
        "6c:2e:85:19:af:00": "Sagemcom",
        "c0:63:94:05:01:03": "Apple",
        "00:1f:3c:87:66:50": "Intel Corporate",
    }
    assert result.errors == []


def test_a_down_host_keeps_its_address_and_no_ports():
    result = parse_nmap(scan(host('<address addr="192.0.2.9" addrtype="ipv4"/>', state="down")))
    (down,) = result.observations
    assert down.up is False
    assert down.interfaces[0].ipv4 == ("192.0.2.9",)
    assert down.ports == []


def test_addresses_names_ports_services_and_versions():
    result = parse_nmap(fixture("nmapparser__nmap_results.xml"))
    host3 = next(o for o in result.observations if o.where == "host[3] 127.0.0.3")
    assert host3.hostname == "host_3"
    ports = {(p.protocol, p.number): (p.service, p.product, p.version) for p in host3.ports}
    assert ports[("tcp", 21)] == ("ftp", "ProFTPD", "1.2.5rc1")
    assert ports[("udp", 80)] == ("http", "Apache httpd", "1.3.26 (Unix) Debian GNU/Linux")
    assert host3.extra["netbios_name"] == "NAS"  # from the nbstat script


def test_user_name_before_ptr_and_fqdn_split():
    result = parse_nmap(fixture("libnmap__2_hosts_version.xml"))
    scanme = result.observations[1]
    assert (scanme.hostname, scanme.fqdn) == ("scanme", "scanme.nmap.org")
    ping = parse_nmap(fixture("libnmap__1_host_ping.xml")).observations[0]
    assert ping.hostname == "dionaea"  # type="user" wins over the PTR name
    assert ping.extra["hostnames"] == ["dionaea", "dionaea.honeynet_testing_net"]


def test_best_os_match_with_accuracy_and_uptime():
    (first, *_) = parse_nmap(fixture("nmapparser__nmap_results.xml")).observations
    assert (first.os_name, first.os_version) == ("Linux 2.6.38 - 3.0", "2.6.X")
    assert first.extra["os_accuracy"] == 100
    assert first.extra["os_cpe"] == ["cpe:/o:linux:linux_kernel:2.6", "cpe:/o:linux:linux_kernel:3"]
    assert first.uptime_seconds == 1973
    assert first.kind == "computer"  # osclass type "general purpose"


def test_an_os_guess_below_90_percent_is_kept_in_the_details_only():
    os_xml = (
        '<address addr="192.0.2.5" addrtype="ipv4"/><os>'
        '<osmatch name="Linux 2.6.32" accuracy="85"><osclass type="general purpose" vendor="Linux" '
        'osfamily="Linux" osgen="2.6.X" accuracy="85"/></osmatch></os>'
    )
    (obs,) = parse_nmap(scan(host(os_xml))).observations
    assert obs.os_name == ""  # nmap only guesses: not taken as the device's OS
    assert obs.extra["os_matches"] == [{"name": "Linux 2.6.32", "accuracy": 85}]
    assert obs.kind == "unknown"


def test_ipv6_address_and_host_time():
    (obs,) = parse_nmap(
        scan(host('<address addr="2001:db8::7" addrtype="ipv6"/>', end="1700000123"))
    ).observations
    assert obs.interfaces[0].ipv6 == ("2001:db8::7",)
    assert obs.seen_at == dt.datetime(2023, 11, 14, 22, 15, 23, tzinfo=dt.UTC)


def test_a_mac_drift_shows_in_the_interfaces():
    before = parse_nmap(fixture("libnmap__1_host_ping.xml")).observations[0]
    after = parse_nmap(fixture("libnmap__diff_1_host_ping_mac_changed.xml")).observations[0]
    assert (before.interfaces[0].mac, after.interfaces[0].mac) == ("02:42:ac:1c:01:03", "02:42:ac:1c:01:04")


# --- Problems, each named ---------------------------------------------------------------------------


def test_a_bad_port_and_a_bad_address_are_named_and_the_host_kept():
    body = (
        '<address addr="192.0.2.8" addrtype="ipv4"/><address addr="not-an-ip" addrtype="ipv4"/>'
        '<ports><port protocol="tcp" portid="22"><state state="open"/><service name="ssh"/></port>'
        '<port protocol="tcp" portid="99999"><state state="open"/></port></ports>'
    )
    result = parse_nmap(scan(host(body)))
    (obs,) = result.observations
    assert [p.number for p in obs.ports] == [22]
    assert [(e.where, e.message) for e in result.errors] == [
        ("host[1] 192.0.2.8 address", "'not-an-ip' is not an IP address: left out."),
        ("host[1] 192.0.2.8 ports/port[2]", "portid '99999' is not a port number: left out."),
    ]


def test_a_truncated_scan_keeps_the_hosts_before_the_break():
    data = fixture("libnmap__full_sudo6.xml")
    cut = data[: data.index(b"<host", len(data) // 2) + 200]
    result = parse_nmap(cut)
    assert 100 < len(result.observations) < 256
    (error,) = result.errors
    assert error.where.startswith("line ")
    assert f"{len(result.observations)} host(s) were read before it" in error.message


def test_a_file_that_is_not_nmap_xml_is_one_error():
    result = parse_nmap(b"<?xml version='1.0'?><REQUEST><QUERY>INVENTORY</QUERY></REQUEST>")
    assert result.observations == []
    assert result.errors[0].message.startswith("Not an nmap XML file: the root element is <REQUEST>")


def test_xxe_is_refused_and_nothing_is_read():
    evil = (
        b'<?xml version="1.0"?><!DOCTYPE nmaprun [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b'<nmaprun><host><status state="up"/><address addr="192.0.2.1" addrtype="ipv4"/>'
        b'<hostnames><hostname name="&xxe;"/></hostnames></host></nmaprun>'
    )
    result = parse_nmap(evil)
    assert result.observations == []
    assert "entities" in result.errors[0].message
    assert "root:" not in repr(result)  # /etc/passwd was never read


def test_billion_laughs_is_refused():
    lol = b'<!ENTITY lol "lol">' + b"".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'.encode()
        for i in range(1, 10)
    )
    evil = b'<?xml version="1.0"?><!DOCTYPE nmaprun [' + lol + b"]><nmaprun><host>&lol9;</host></nmaprun>"
    result = parse_nmap(evil)
    assert result.observations == []
    assert "EntitiesForbidden" in result.errors[0].message


@override_settings(TIKTING_DISCOVERY_MAX_BYTES=4096)
def test_an_oversized_file_is_refused_at_the_limit():
    result = parse_nmap(fixture("libnmap__full_sudo6.xml"))
    assert "larger than 4,096 bytes (TIKTING_DISCOVERY_MAX_BYTES)" in result.errors[-1].message
