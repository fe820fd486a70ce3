"""Active scans: nmap on ranges inside TIKTING_DISCOVERY_ALLOWED_RANGES only, with a safe profile.

A range is an IPv4 or IPv6 address or network in CIDR form ("192.0.2.0/28", "10.1.2.3", "::1").
Every range is checked against the allow-list before nmap starts; host names and nmap's own range
syntax ("10.0.0.1-20") are refused, since they could name addresses outside it.

The profile (docs/discovery.md, "Scans"): host discovery as nmap does it by default, then the 100
most common TCP ports with light service-version probes, normal timing (-T3), two retries, five
minutes per host at most, no NSE scripts. As root (raw sockets), nmap's OS detection is added,
limited to hosts with an open and a closed port (-O --osscan-limit --max-os-tries 1); otherwise
nmap makes TCP connect scans without any root-only option.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .common import max_bytes

__all__ = [
    "PROFILE",
    "ROOT_PROFILE",
    "ScanFailed",
    "ScanRefused",
    "allowed_networks",
    "check_ports",
    "check_ranges",
    "nmap_command",
    "run_nmap",
]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
PROFILE = (
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
)
ROOT_PROFILE = ("-O", "--osscan-limit", "--max-os-tries", "1")
# nmap reports its progress in the XML stream (<taskprogress percent="…"/>) every few seconds.
PROGRESS_EVERY = "2s"
_PORTS = re.compile(r"^\d{1,5}(-\d{1,5})?(,\d{1,5}(-\d{1,5})?)*$")
_PROGRESS = re.compile(rb'<taskprogress task="([^"]*)"[^>]*percent="([\d.]+)"')


class ScanRefused(ValueError):
    """A range is not allowed (or not a range): nothing was scanned."""


class ScanFailed(RuntimeError):
    """nmap could not run, or ended with an error; the message is its last line."""


def allowed_networks() -> list[Network]:
    """TIKTING_DISCOVERY_ALLOWED_RANGES as networks (ImproperlyConfigured naming a bad entry)."""
    networks = []
    for text in settings.TIKTING_DISCOVERY_ALLOWED_RANGES:
        try:
            networks.append(ipaddress.ip_network(text.strip(), strict=False))
        except ValueError as exc:
            raise ImproperlyConfigured(
                f"TIKTING_DISCOVERY_ALLOWED_RANGES: '{text}' is not a network ({exc})."
            ) from exc
    return networks


def check_ranges(ranges: Sequence[str]) -> list[str]:
    """The ranges as nmap targets, once each is found inside an allowed network; ScanRefused
    naming the first one that is not (and the setting that would allow it)."""
    if not ranges:
        raise ScanRefused("Give a range to scan (an address or a network in CIDR form).")
    allowed = allowed_networks()
    targets: list[str] = []
    for text in ranges:
        try:
            network = ipaddress.ip_network(text.strip(), strict=False)
        except ValueError:
            raise ScanRefused(
                f"'{text}' is not an address or a network in CIDR form (e.g. 192.0.2.0/28): host names "
                "and nmap range syntax are refused, since they could reach outside "
                "TIKTING_DISCOVERY_ALLOWED_RANGES."
            ) from None
        if not any(network.version == net.version and network.subnet_of(net) for net in allowed):  # type: ignore[arg-type]
            shown = ", ".join(str(n) for n in allowed) or "none"
            raise ScanRefused(
                f"{text.strip()} is outside the ranges discovery may scan (TIKTING_DISCOVERY_ALLOWED_RANGES: "
                f"{shown}). Add it to that setting if this network is yours to scan."
            )
        targets.append(str(network) if network.num_addresses > 1 else str(network.network_address))
    return targets


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def check_ports(ports: str) -> str:
    """A port list as nmap's -p takes it ("22,80,8000-8100"), TCP only; ScanRefused otherwise."""
    text = ports.replace(" ", "")
    if not _PORTS.match(text) or any(int(p) > 65535 for p in re.findall(r"\d+", text)):
        raise ScanRefused(f"'{ports}' is not a list of TCP ports (e.g. 22,80,8000-8100).")
    return text


def nmap_command(
    targets: Sequence[str], *, os_detection: bool | None = None, dns: bool = True, ports: str = ""
) -> list[str]:
    """The nmap command line for already-checked targets (XML on standard output); `ports`
    replaces the profile's 100 most common ports."""
    binary = shutil.which(settings.TIKTING_DISCOVERY_NMAP)
    if binary is None:
        raise ScanFailed(
            f"nmap is not installed ('{settings.TIKTING_DISCOVERY_NMAP}' not found; TIKTING_DISCOVERY_NMAP): "
            "install Debian's nmap package (scripts/system-deps test does)."
        )
    profile = list(PROFILE)
    if ports:
        at = profile.index("--top-ports")
        profile[at : at + 2] = ["-p", check_ports(ports)]
    command = [binary, "-oX", "-", "--stats-every", PROGRESS_EVERY, *profile]
    if os_detection if os_detection is not None else is_root():
        command += ROOT_PROFILE
    if not dns:
        command.append("-n")
    if any(":" in target for target in targets):
        command.append("-6")
        if any(":" not in target for target in targets):
            raise ScanRefused("Scan IPv4 and IPv6 ranges separately: nmap takes one address family per scan.")
    return [*command, *targets]


@dataclass
class ScanOutput:
    xml: bytes
    command: list[str]


def run_nmap(
    command: list[str], *, progress: Callable[[str, float], None] | None = None, timeout: float | None = None
) -> ScanOutput:
    """Run nmap, reading its XML as it comes (progress(task, percent) at each <taskprogress>);
    ScanFailed when it cannot start, exits with an error, or writes more than the size limit."""
    limit = max_bytes()
    try:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # noqa: S603
    except OSError as exc:
        raise ScanFailed(f"nmap could not start: {exc.strerror or exc}.") from exc
    assert process.stdout is not None and process.stderr is not None
    chunks: list[bytes] = []
    size = 0
    try:
        for line in process.stdout:
            size += len(line)
            if size > limit:
                process.kill()
                raise ScanFailed(
                    f"nmap wrote more than {limit:,} bytes (TIKTING_DISCOVERY_MAX_BYTES): scan a smaller "
                    "range."
                )
            if progress is not None and line.startswith(b"<taskprogress"):
                found = _PROGRESS.search(line)
                if found:
                    progress(found.group(1).decode("utf-8", "replace"), float(found.group(2)))
            chunks.append(line)
        errors = process.stderr.read()
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        process.kill()
        raise ScanFailed("nmap did not finish in time.") from exc
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if code != 0:
        lines = [line for line in errors.decode("utf-8", "replace").splitlines() if line.strip()]
        raise ScanFailed(f"nmap failed (exit status {code}): {lines[-1] if lines else 'no message'}")
    return ScanOutput(xml=b"".join(chunks), command=command)
