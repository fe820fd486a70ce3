"""Starting discovery runs: a file, a scan or an agent's upload, parsed, then reconciled under the
source's lock (locks.py). The CLI (`tikting discover`), the agent endpoint and scheduled scans all
come through here, so they parse, lock and reconcile the same way.

A run's source name is its label (the CLI's --source: "dc1-scan", "agents"); the observations'
own source ("nmap", "fusioninventory", …) is what precedence ranks, set by each parser.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from django.db import transaction
from django_tasks import task

from tikting.accounts.models import Actor
from tikting.cmdb.models import ConfigurationItem

from . import services
from .locks import SourceBusy, source_lock
from .models import DiscoveryRun
from .observations import ParseResult
from .reconcile import reconcile
from .sources import detect, scan
from .sources.nmap import parse_nmap

__all__ = ["import_file", "import_result", "scan_ranges", "scheduled_scan"]


def import_result(
    result: ParseResult,
    *,
    source_name: str,
    actor: Actor = None,
    file_name: str = "",
    scan_range: str = "",
    lock_name: str | None = None,
) -> DiscoveryRun:
    """Reconcile a parsed input as one run of `source_name`, holding the source's lock (SourceBusy
    when another run of it is in progress: nothing is written then). Agents lock per agent
    (`lock_name`), since thousands of them share one source name and send at the same time."""
    with source_lock(lock_name or source_name):
        return reconcile(
            result, source_name=source_name, actor=actor, file_name=file_name, scan_range=scan_range
        )


def default_source(result: ParseResult) -> str:
    """A run's source name when none is given: its observations' source, else the format."""
    sources = {obs.source for obs in result.observations}
    return sources.pop() if len(sources) == 1 else result.format


def import_file(
    path: str | Path, *, source_name: str | None = None, actor: Actor = None, register: bool = False
) -> DiscoveryRun:
    """Parse a file by its content's format (sources/detect.py) and reconcile it as one run.

    `register`: the file is the CMDB to start from (another CMDB's export): the devices it brings
    that are still unregistered are registered as they are, in the same transaction, through
    services.register_cis (managers and administrators; None, the system, too) — never a scan's."""
    result = detect.parse_file(path)
    name = source_name or default_source(result)
    if not register:
        return import_result(result, source_name=name, actor=actor, file_name=Path(path).name)
    with transaction.atomic():
        run = import_result(result, source_name=name, actor=actor, file_name=Path(path).name)
        brought = ConfigurationItem.objects.filter(
            status=ConfigurationItem.Status.DISCOVERED, discovered_devices__last_run=run
        ).order_by("pk")
        services.register_cis(list(brought.distinct()), actor=actor)
    return run


def scan_ranges(
    ranges: Sequence[str],
    *,
    source_name: str = "nmap",
    actor: Actor = None,
    dns: bool = True,
    os_detection: bool | None = None,
    ports: str = "",
    progress: Callable[[str, float], None] | None = None,
) -> DiscoveryRun:
    """Scan the ranges with nmap (sources/scan.py) and reconcile what it found as one run.

    The ranges are checked against TIKTING_DISCOVERY_ALLOWED_RANGES before anything starts
    (ScanRefused); nmap runs under the source's lock (SourceBusy), and a failed scan (ScanFailed)
    records nothing."""
    targets = scan.check_ranges(ranges)
    command = scan.nmap_command(targets, os_detection=os_detection, dns=dns, ports=ports)
    with source_lock(source_name):
        output = scan.run_nmap(command, progress=progress)
        result = parse_nmap(output.xml)
        return reconcile(result, source_name=source_name, actor=actor, scan_range=" ".join(targets))


@task()
def scheduled_scan(
    ranges: list[str], source_name: str = "nmap", ports: str = "", dns: bool = True
) -> dict[str, Any]:
    """A scan on the worker's schedule: a TIKTING_SCHEDULE entry naming this task with the ranges in
    its kwargs (docs/discovery.md, "Scheduled scans"). A scan of the source still running is
    skipped (its lock is held), not queued behind it; a refused range or a failed nmap fails the
    job with its message on the jobs page."""
    try:
        run = scan_ranges(ranges, source_name=source_name, ports=ports, dns=dns)
    except SourceBusy as exc:
        return {"skipped": str(exc)}
    return {
        "run": run.pk,
        "observed": run.observed,
        "confirmed": run.confirmed,
        "updated": run.updated,
        "created_unregistered": run.created_unregistered,
        "errors": run.errors,
    }
