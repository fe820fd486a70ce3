"""The yardstick of the change detector on real data (bench/signals_changes_quality.py and its test).

BPI Challenge 2014 links incidents to changes (``Related Change``, imported as ``related_change``),
but most links point at the change raised to fix the incident. Only the links where the incident
opened after the change ended say "this change was followed by its incidents": those are the
*causal links* the detector is judged on. They are sparse (most incidents that followed a change
were never linked to it), so precision against them is a floor, not a verdict.

The naive baseline: every change followed, within 48 hours of its end, by an incident whose
affected CI is the change's CI or one of its affected CIs.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from django.db.models import F, Max, Min
from django.db.models.functions import Coalesce

from tikting.changes.models import Change
from tikting.incidents.models import Incident
from tikting.signals.proposals import Proposal, Window

from . import changes as detector
from ._common import record_key
from .changes import change_rows, ended_changes, follow

Link = tuple[str, str]  # (change key, incident key)


def causal_links(window: Window) -> set[Link]:
    """(change, incident) pairs recorded in `related_change` where the incident opened after the
    change ended (actual end, else its close time), for the changes that ended in the window."""
    rows = (
        Incident.objects.filter(related_change__in=ended_changes(window).values("pk"))
        .annotate(change_end=Coalesce(F("related_change__actual_end"), F("related_change__closed_at")))
        .filter(opened_at__gt=F("change_end"))
        .values_list("related_change__external_key", "related_change__number", "external_key", "number")
    )
    return {
        (record_key(c_ext, c_num), record_key(i_ext, i_num)) for c_ext, c_num, i_ext, i_num in rows.iterator()
    }


def baseline_links(window: Window, hours: float = 48.0) -> set[Link]:
    """The naive baseline: incidents on a CI the change touched (its CI or an affected CI, as the
    incident's affected CI) opened within `hours` after the change ended."""
    span = dt.timedelta(hours=hours)
    changes = ended_changes(window)
    fields = ("pk", "external_key", "number", "ended")  # "ended": annotated by ended_changes()
    ends: dict[int, tuple[str, dt.datetime]] = {
        pk: (record_key(ext, number), ended)
        for pk, ext, number, ended in changes.values_list(*fields).iterator()
    }
    cis: dict[int, set[int]] = defaultdict(set)
    for pk, ci in changes.filter(ci__isnull=False).values_list("pk", "ci_id").iterator():
        cis[ci].add(pk)
    through = Change.affected_cis.through
    for change, ci in (
        through.objects.filter(change__in=changes.values("pk")).values_list(
            "change_id", "configurationitem_id"
        )
    ).iterator():
        cis[ci].add(change)
    links: set[Link] = set()
    incidents = Incident.objects.filter(
        ci__isnull=False, opened_at__gte=window.start, opened_at__lt=window.end + span
    )
    for ext, number, opened, ci in incidents.values_list(
        "external_key", "number", "opened_at", "ci_id"
    ).iterator():
        for change in cis.get(ci, ()):
            key, ended = ends[change]
            if ended < opened <= ended + span:
                links.add((key, record_key(ext, number)))
    return links


def inferred_links(window: Window, thresholds: dict[str, float]) -> set[Link]:
    """Every (change, incident) pair the detector's follow rule links, before any grouping."""
    changes = ended_changes(window)
    rows = change_rows(changes)
    keys = follow(rows, changes, thresholds, window)
    return {(row.key, keys[pk]) for row in rows for pk in row.followed}


def proposed_links(proposals: Iterable[Proposal]) -> set[Link]:
    """The (change, incident) pairs the proposals name: figures["followed_by"] of each."""
    links: set[Link] = set()
    for proposal in proposals:
        for change, incidents in proposal.figures.get("followed_by", {}).items():
            links.update((change, incident) for incident in incidents)
    return links


@dataclass(frozen=True)
class Score:
    label: str
    links: int  # pairs proposed
    links_found: int  # causal pairs among them
    changes: int  # changes proposed as followed by incidents
    changes_found: int  # of the changes with a causal link
    candidates: int  # what the improvement manager reads
    truth_links: int
    truth_changes: int

    @property
    def link_recall(self) -> float:
        return self.links_found / self.truth_links if self.truth_links else 0.0

    @property
    def link_precision(self) -> float:
        return self.links_found / self.links if self.links else 0.0

    @property
    def change_recall(self) -> float:
        return self.changes_found / self.truth_changes if self.truth_changes else 0.0

    @property
    def change_precision(self) -> float:
        return self.changes_found / self.changes if self.changes else 0.0


def score(label: str, links: set[Link], truth: set[Link], candidates: int) -> Score:
    changes = {change for change, _ in links}
    truth_changes = {change for change, _ in truth}
    return Score(
        label=label,
        links=len(links),
        links_found=len(links & truth),
        changes=len(changes),
        changes_found=len(changes & truth_changes),
        candidates=candidates,
        truth_links=len(truth),
        truth_changes=len(truth_changes),
    )


@dataclass(frozen=True)
class Comparison:
    window: Window
    truth: set[Link]
    baseline: Score
    proposals: Score  # the detector's proposals (incidents and single-change kinds)
    inferred: Score  # every change its follow rule links, before grouping
    seconds: float  # detect()
    proposal_count: int  # of every kind


def compare(thresholds: dict[str, float] | None = None) -> Comparison:
    """The baseline and the detector (recorded links off: they are the answer key) over every change."""
    span = Change.objects.aggregate(lo=Min("opened_at"), hi=Max("closed_at"))
    last = Incident.objects.aggregate(hi=Max("opened_at"))["hi"]
    window = Window(span["lo"], max(span["hi"], last) + dt.timedelta(days=1))
    truth = causal_links(window)
    base = baseline_links(window)
    t = {**detector.THRESHOLDS, "use_recorded_links": 0.0, "max_evidence": 1e9, **(thresholds or {})}
    started = time.perf_counter()
    proposals = detector.detect(window, thresholds=t)
    seconds = time.perf_counter() - started
    followed = [p for p in proposals if p.figures.get("kind") in ("incidents", "single_change")]
    inferred = inferred_links(window, t)
    return Comparison(
        window=window,
        truth=truth,
        baseline=score("baseline: incident on its CI within 48 h", base, truth, len({c for c, _ in base})),
        proposals=score("detector: proposals", proposed_links(followed), truth, len(followed)),
        inferred=score("detector: every change it links", inferred, truth, len({c for c, _ in inferred})),
        seconds=seconds,
        proposal_count=len(proposals),
    )


def import_changes_and_incidents(data: Path) -> float:
    """`import_bpic2014` of the changes and incidents alone (a folder of links to their two zips:
    the interactions and the activity log are not needed here). Returns the seconds it took."""
    from tikting.imports.bpic2014 import import_bpic2014

    with tempfile.TemporaryDirectory(prefix="tk_bpic_") as folder:
        for name in ("detail_change.zip", "detail_incident.zip"):
            os.symlink(Path(data).resolve() / name, Path(folder) / name)
        started = time.perf_counter()
        report = import_bpic2014(folder)
    if report.error_count:
        raise RuntimeError(f"BPIC 2014 import: {report.error_count} errors")
    return time.perf_counter() - started
