"""Real scans with the real nmap: 127.0.0.1, and a test host in network namespaces this test
creates (only loopback and our own namespaces are ever scanned), imported and reconciled."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import override_settings

from tikting.cmdb.models import ConfigurationItem as CI
from tikting.discovery import runs
from tikting.discovery.models import DiscoveredDevice, DiscoveryRun
from tikting.discovery.sources import scan

from .samples import held_elsewhere

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        shutil.which("nmap") is None, reason="nmap is not installed (scripts/system-deps test)"
    ),
]


@pytest.fixture
def listener() -> Iterator[int]:
    """A TCP service of our own on 127.0.0.1 (an ephemeral port), answering HTTP."""
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", "0", "--bind", "127.0.0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert server.stdout is not None
    line = server.stdout.readline()  # "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
    port = int(line.split(" port ")[1].split()[0])
    yield port
    server.terminate()
    server.wait(timeout=10)


@override_settings(TIKTING_DISCOVERY_TRUSTED_RANGES=["127.0.0.0/8"])
def test_a_real_scan_of_127_0_0_1_is_imported_with_its_open_port(listener):
    run = runs.scan_ranges(
        ["127.0.0.1"], source_name="loopback", dns=False, os_detection=False, ports=str(listener)
    )
    assert (run.source_name, run.format, run.scan_range, run.errors) == (
        "loopback",
        "nmap-xml",
        "127.0.0.1",
        0,
    )
    assert (run.observed, run.created_unregistered) == (1, 1)
    ci = CI.objects.get(ip_address="127.0.0.1")  # identified by the IP rule: the range is trusted here
    assert ci.status == CI.Status.DISCOVERED
    ports = DiscoveredDevice.objects.get(ci=ci, source="nmap").details["ports"]
    assert [
        "tcp",
        listener,
        "open",
        "http",
        "SimpleHTTPServer",
        f"0.6 Python {sys.version.split()[0]}",
    ] in ports


def test_the_command_line_of_the_default_profile():
    command = scan.nmap_command(["192.0.2.0/30"], os_detection=False)
    assert command[1:] == [
        "-oX",
        "-",
        "--stats-every",
        "2s",
        "-T3",
        "-sV",
        "--version-light",
        "--top-ports",
        "100",
        "--max-retries",
        "2",
        "--host-timeout",
        "300s",
        "--noninteractive",
        "192.0.2.0/30",
    ]
    assert scan.nmap_command(["::1"], os_detection=True, dns=False)[-7:] == [
        "-O", "--osscan-limit", "--max-os-tries", "1", "-n", "-6", "::1",
    ]  # fmt: skip


# --- a host of our own in a network namespace ----------------------------------------------------------


def _ip(*args: str, namespace: str | None = None) -> subprocess.CompletedProcess[str]:
    prefix = ["ip", "netns", "exec", namespace] if namespace else []
    return subprocess.run([*prefix, "ip", *args], capture_output=True, text=True, timeout=30, check=False)


@pytest.fixture
def namespaces(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Two network namespaces joined by a veth pair, 10.213.77.0/30 on it and nowhere else: a
    scanner (.1) and a host (.2) running an HTTP server on port 8000. nmap runs inside the
    scanner's namespace (TIKTING_DISCOVERY_NMAP points at a wrapper), so the machine's own network
    is never touched."""
    if shutil.which("ip") is None:
        pytest.skip("iproute2 ('ip') is not installed")
    tag = uuid.uuid4().hex[:6]
    scanner, host = f"tkt-scan-{tag}", f"tkt-host-{tag}"
    made = _ip("netns", "add", scanner)
    if made.returncode != 0:
        pytest.skip(f"cannot create network namespaces here ({made.stderr.strip() or 'not permitted'})")
    server = None
    try:
        assert _ip("netns", "add", host).returncode == 0
        steps = [
            (
                None,
                [
                    "link",
                    "add",
                    f"vs{tag}",
                    "netns",
                    scanner,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    f"vh{tag}",
                    "netns",
                    host,
                ],
            ),
            (scanner, ["addr", "add", "10.213.77.1/30", "dev", f"vs{tag}"]),
            (scanner, ["link", "set", f"vs{tag}", "up"]),
            (scanner, ["link", "set", "lo", "up"]),
            (host, ["addr", "add", "10.213.77.2/30", "dev", f"vh{tag}"]),
            (host, ["link", "set", f"vh{tag}", "up"]),
            (host, ["link", "set", "lo", "up"]),
        ]
        for namespace, args in steps:
            done = _ip(*args, namespace=namespace)
            assert done.returncode == 0, done.stderr
        server = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                host,
                sys.executable,
                "-m",
                "http.server",
                "8000",
                "--bind",
                "10.213.77.2",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(50):  # wait until the server answers, from inside the scanner's namespace
            probe = subprocess.run(
                ["ip", "netns", "exec", scanner, sys.executable, "-c",
                 "import socket; socket.create_connection(('10.213.77.2', 8000), 1).close()"],
                capture_output=True, timeout=10, check=False,
            )  # fmt: skip
            if probe.returncode == 0:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the HTTP server in the namespace did not answer")
        wrapper = tmp_path / "nmap-in-namespace"
        wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {scanner} {shutil.which("nmap")} "$@"\n')
        wrapper.chmod(0o755)
        yield {"nmap": str(wrapper), "host": "10.213.77.2", "range": "10.213.77.0/30"}
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        _ip("netns", "del", host)  # deleting a namespace deletes its end of the veth pair, and so both
        _ip("netns", "del", scanner)


def test_a_host_in_our_own_namespace_is_found_with_its_open_port(namespaces):
    with override_settings(
        TIKTING_DISCOVERY_NMAP=namespaces["nmap"],
        TIKTING_DISCOVERY_ALLOWED_RANGES=[namespaces["range"]],  # only the namespaces' /30
        TIKTING_DISCOVERY_TRUSTED_RANGES=[namespaces["range"]],
    ):
        with pytest.raises(scan.ScanRefused):
            runs.scan_ranges(["127.0.0.1"])  # loopback is not in this test's allow-list
        run = runs.scan_ranges(
            [namespaces["range"]], source_name="namespace", dns=False
        )  # the default profile
    assert run.errors == 0 and run.created_unregistered == 2  # the host, and the scanner's own address
    ci = CI.objects.get(ip_address=namespaces["host"])
    device = DiscoveredDevice.objects.get(ci=ci, source="nmap")
    assert [p[:4] for p in device.details["ports"]] == [["tcp", 8000, "open", "http"]]
    # Seen over the veth: nmap reports the host's MAC, random (locally administered) so no identity.
    assert len(device.addresses["macs"]) == 1 and device.mac == ""


@override_settings(TIKTING_DISCOVERY_TRUSTED_RANGES=["127.0.0.0/8"])
def test_a_scheduled_scan_runs_on_the_worker_and_skips_a_busy_source(listener):
    outcome = runs.scheduled_scan.call(["127.0.0.1"], source_name="nightly", ports=str(listener), dns=False)
    run = DiscoveryRun.objects.get()
    assert outcome == {
        "run": run.pk,
        "observed": 1,
        "confirmed": 0,
        "updated": 0,
        "created_unregistered": 1,
        "errors": 0,
    }
    with held_elsewhere("nightly"):
        skipped = runs.scheduled_scan.call(["127.0.0.1"], source_name="nightly", ports=str(listener))
    assert skipped == {
        "skipped": "Another discovery run of source 'nightly' is in progress: try again when it has finished."
    }
    assert DiscoveryRun.objects.count() == 1
