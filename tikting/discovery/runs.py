"""Starting discovery runs: a file, a scan or an agent's upload, parsed, then reconciled under the
source's lock (locks.py). The CLI (`tikting discover`), the agent endpoint and scheduled scans all
come through here, so they parse, lock and reconcile the same way.

A run's source name is its label (the CLI's --source: "dc1-scan", "agents"); the observations'
own source ("nmap", "fusioninventory", …) is what precedence ranks, set by each parser.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
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

__all__ = ["import_files", "import_result", "parse_files", "scan_ranges", "scheduled_scan"]


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


# The input one run of a folder import takes at most (bytes of files): past it the files go on in
# another run, so the memory an import needs stays bounded (about 2.5 times this, parsed).
RUN_INPUT_BYTES = 64 * 1024 * 1024


def parse_files(
    paths: Sequence[str | Path], *, progress: Callable[[Path], None] | None = None
) -> Iterator[tuple[ParseResult, list[str]]]:
    """The files parsed by their content's format (sources/detect.py), grouped into one result per
    source and format, each with the names of its files; a group is handed over as soon as its
    files pass RUN_INPUT_BYTES, the others at the end, in the order first met. Every place (an
    observation's, a problem's) is prefixed with its file's name ("b.json: line 3")."""
    groups: dict[tuple[str, str], tuple[ParseResult, list[str], list[int]]] = {}
    for path in map(Path, paths):
        result = detect.parse_file(path)
        for observation in result.observations:
            observation.where = f"{path.name}: {observation.where}"
        for error in result.errors:
            error.where = f"{path.name}: {error.where}"
        key = (default_source(result), result.format)
        if key not in groups:
            groups[key] = (ParseResult(format=result.format), [], [0])
        merged, names, size = groups[key]
        merged.observations += result.observations
        merged.errors += result.errors
        names.append(path.name)
        size[0] += path.stat().st_size
        if progress is not None:
            progress(path)
        if size[0] >= RUN_INPUT_BYTES:
            del groups[key]
            yield merged, names
    for merged, names, _size in groups.values():
        yield merged, names


def files_label(names: Sequence[str]) -> str:
    """A run's file name: the file's, or the first and last of several with their count."""
    if len(names) == 1:
        return names[0][:255]
    return f"{names[0]} … {names[-1]} ({len(names):,} files)"[-255:]


def import_files(
    paths: Sequence[str | Path],
    *,
    source_name: str | None = None,
    actor: Actor = None,
    register: bool = False,
    progress: Callable[[Path], None] | None = None,
) -> list[DiscoveryRun]:
    """Parse the files by their content's format and reconcile them: one run per source and
    format (the inventories of a folder are one run, so reconciliation works on them as a set;
    past RUN_INPUT_BYTES of files, another: docs/discovery.md, "Runs").

    `register`: the files are the CMDB to start from (another CMDB's export): the devices they bring
    that are still unregistered are registered as they are, in the same transaction as the run,
    through services.register_cis (managers and administrators; None, the system, too)."""
    done = []
    for result, names in parse_files(paths, progress=progress):
        name = source_name or default_source(result)
        with transaction.atomic():
            run = import_result(result, source_name=name, actor=actor, file_name=files_label(names))
            if register:
                brought = ConfigurationItem.objects.filter(
                    status=ConfigurationItem.Status.DISCOVERED, discovered_devices__last_run=run
                ).order_by("pk")
                services.register_cis(list(brought.distinct()), actor=actor)
        done.append(run)
    return done


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
