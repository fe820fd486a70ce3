"""Ingest detector proposals into the queue (fingerprints, suppression, regrowth) and run the detectors."""

from __future__ import annotations

import datetime as dt
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from tikting.accounts.models import Actor
from tikting.core import audit
from tikting.core.itsm import Practice
from tikting.records.registry import KINDS

from .. import permissions as P
from .. import registry
from ..models import (
    OPEN_STATUSES,
    Candidate,
    CandidateEvidence,
    DetectorRun,
    Proposes,
    RunStatus,
)
from ..proposals import Progress, Proposal, Window, no_progress
from .common import CHUNK, _user, regrowth

# --- Ingest ---------------------------------------------------------------------------------------


@dataclass
class IngestCounts:
    raised: int = 0
    merged: int = 0
    suppressed: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"raised": self.raised, "merged": self.merged, "suppressed": self.suppressed}


_PROPOSAL_FIELDS = (
    "title",
    "explanation",
    "score",
    "magnitude",
    "period_start",
    "period_end",
    "figures",
    "practice",
    "service_id",
    "impact",
    "effort",
    "rating_reason",
    "proposes",
)


def _check_proposal(proposal: Proposal, detector: str) -> None:
    """A detector bug is an error of the run, named: not a silently odd candidate."""
    problems = []
    if proposal.detector != detector:
        problems.append(f"detector is '{proposal.detector}', not '{detector}'")
    if not proposal.fingerprint or len(proposal.fingerprint) > 300:
        problems.append("a fingerprint of 1 to 300 characters is required")
    if not proposal.title.strip():
        problems.append("the title is empty")
    if proposal.practice not in Practice.values:
        problems.append(f"practice '{proposal.practice}' is not a practice")
    if proposal.proposes not in Proposes.values:
        problems.append(f"proposes '{proposal.proposes}' is neither improvement nor problem")
    if not (1 <= proposal.impact <= 5 and 1 <= proposal.effort <= 5):
        problems.append("impact and effort are rated 1 to 5")
    unknown = sorted({e.kind for e in proposal.evidence} - set(KINDS))
    if unknown:
        problems.append(f"evidence of unknown record kind(s) {', '.join(unknown)}")
    if problems:
        raise ValueError(f"Proposal {proposal.fingerprint!r} of {detector}: " + "; ".join(problems) + ".")


def _values(proposal: Proposal) -> dict[str, Any]:
    return {
        "title": proposal.title.strip()[:200],
        "explanation": proposal.explanation,
        "score": float(proposal.score),
        "magnitude": float(proposal.magnitude),
        "period_start": proposal.period_start,
        "period_end": proposal.period_end,
        "figures": proposal.figures,
        "practice": proposal.practice,
        "service_id": proposal.service_id,
        "impact": proposal.impact,
        "effort": proposal.effort,
        "rating_reason": proposal.rating_reason,
        "proposes": proposal.proposes,
    }


def _content_type(kind: str) -> ContentType:
    return ContentType.objects.get_for_model(KINDS[kind].model)


def _add_evidence(pairs: Iterable[tuple[Candidate, Proposal]]) -> None:
    """Each proposal's evidence on its candidate; rows it already has are kept as they are."""
    rows = [
        CandidateEvidence(
            candidate=candidate,
            content_type=_content_type(e.kind),
            object_id=str(e.pk),
            kind=e.kind,
            key=str(e.key)[:120],
            role=e.role[:40],
        )
        for candidate, proposal in pairs
        for e in proposal.evidence
    ]
    CandidateEvidence.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)


def _latest_by_fingerprint(fingerprints: Sequence[str]) -> dict[str, Candidate]:
    latest: dict[str, Candidate] = {}
    for start in range(0, len(fingerprints), CHUNK):
        chunk = fingerprints[start : start + CHUNK]
        for candidate in Candidate.objects.filter(fingerprint__in=chunk).order_by("fingerprint", "-id"):
            latest.setdefault(candidate.fingerprint, candidate)
    return latest


def grew(candidate: Candidate, magnitude: float, share: float | None = None) -> bool:
    """Has the pattern of a dismissed, merged or accepted candidate grown materially since?"""
    share = regrowth() if share is None else share
    base = candidate.magnitude_at_triage if candidate.magnitude_at_triage is not None else candidate.magnitude
    return magnitude > base and magnitude >= base * (1 + share)


@transaction.atomic
def ingest(
    proposals: Sequence[Proposal],
    *,
    detector: str,
    channel: str,
    run: DetectorRun | None = None,
    now: dt.datetime | None = None,
) -> IngestCounts:
    """Turn a detector's proposals into candidates by the intake rules (module docstring). Two
    proposals of one run with the same fingerprint count as one pattern (the later merged in)."""
    now = now or timezone.now()
    share = regrowth()
    for proposal in proposals:
        _check_proposal(proposal, detector)
    counts = IngestCounts()
    by_fingerprint: dict[str, Proposal] = {}
    for proposal in proposals:
        if proposal.fingerprint in by_fingerprint:
            counts.merged += 1
        by_fingerprint[proposal.fingerprint] = proposal
    latest = _latest_by_fingerprint(list(by_fingerprint))

    new: list[tuple[Candidate, Proposal]] = []
    updated: list[tuple[Candidate, Proposal]] = []
    seen: list[Candidate] = []
    for fingerprint, proposal in by_fingerprint.items():
        previous = latest.get(fingerprint)
        if previous is not None and previous.status in OPEN_STATUSES:
            updated.append((previous, proposal))
            continue
        if previous is not None and not grew(previous, proposal.magnitude, share):
            previous.last_seen_at, previous.last_seen_magnitude = now, float(proposal.magnitude)
            seen.append(previous)
            continue
        candidate = Candidate(
            channel=channel,
            detector=detector,
            fingerprint=fingerprint,
            run=run,
            previous=previous,
            last_seen_at=now,
            last_seen_magnitude=float(proposal.magnitude),
            **_values(proposal),
        )
        if previous is not None:
            base = (
                previous.magnitude_at_triage
                if previous.magnitude_at_triage is not None
                else previous.magnitude
            )
            candidate.explanation = (
                f"Raised again: {previous.ref} was {previous.get_status_display().lower()} at magnitude "
                f"{base:g}; the evidence has grown to {proposal.magnitude:g} "
                f"(the threshold is +{share:.0%}).\n\n{proposal.explanation}"
            )
        new.append((candidate, proposal))

    Candidate.objects.bulk_create([c for c, _ in new], batch_size=500)
    for candidate, _ in new:
        audit.record(candidate, action="create", actor=None, message=f"Raised by {detector}")
        audit.record_status(
            candidate, old="", new=candidate.status, actor=None, reason=f"raised by {detector}", at=now
        )
    _add_evidence(new)
    counts.raised += len(new)

    for candidate, proposal in updated:
        before = audit.snapshot(candidate, _PROPOSAL_FIELDS)
        for name, value in _values(proposal).items():
            setattr(candidate, name, value)
        candidate.last_seen_at, candidate.last_seen_magnitude = now, float(proposal.magnitude)
        changes = audit.diff(before, audit.snapshot(candidate, _PROPOSAL_FIELDS))
        if changes:
            candidate.version += 1
            audit.record(
                candidate, action="update", actor=None, changes=changes, message=f"Found again by {detector}"
            )
        candidate.updated_at = now
    if updated:
        Candidate.objects.bulk_update(
            [c for c, _ in updated],
            [*_PROPOSAL_FIELDS, "last_seen_at", "last_seen_magnitude", "version", "updated_at"],
            batch_size=500,
        )
    _add_evidence(updated)
    counts.merged += len(updated)

    if seen:
        Candidate.objects.bulk_update(seen, ["last_seen_at", "last_seen_magnitude"], batch_size=500)
    counts.suppressed += len(seen)
    return counts


# --- Running detectors ----------------------------------------------------------------------------


def default_window(now: dt.datetime | None = None) -> Window:
    """The last TIKTING_SIGNALS_WINDOW_DAYS days up to now."""
    now = now or timezone.now()
    return Window(start=now - dt.timedelta(days=settings.TIKTING_SIGNALS_WINDOW_DAYS), end=now)


def window_for(start: dt.date | None, end: dt.date | None, now: dt.datetime | None = None) -> Window:
    """The window from the first day `start` to the last day `end`, both inclusive, in the site's
    time zone; a missing end is now, a missing start TIKTING_SIGNALS_WINDOW_DAYS before the end."""
    now = now or timezone.now()
    stop = timezone.make_aware(dt.datetime.combine(end + dt.timedelta(days=1), dt.time())) if end else now
    begin = (
        timezone.make_aware(dt.datetime.combine(start, dt.time()))
        if start
        else stop - dt.timedelta(days=settings.TIKTING_SIGNALS_WINDOW_DAYS)
    )
    if begin >= stop:
        raise ValidationError({"from": "The window's start must come before its end."})
    return Window(start=begin, end=stop)


def run_detector(
    detector: registry.Detector,
    window: Window,
    *,
    trigger: str = "",
    actor: Actor = None,
    progress: Progress = no_progress,
) -> DetectorRun:
    """Run one detector and ingest its proposals, recorded as a DetectorRun. A detector that raises
    leaves a failed run with the error (its traceback) and nothing ingested; it is not re-raised, so
    the other detectors of a run still run."""
    P.check(actor, P.can_triage(actor), "run detectors")
    run = DetectorRun.objects.create(
        detector=detector.name,
        window_start=window.start,
        window_end=window.end,
        started_at=timezone.now(),
        thresholds=detector.thresholds,
        trigger=trigger[:60],
        actor=_user(actor),
    )
    started = time.monotonic()
    try:
        proposals = detector.detect(window, progress=progress)
        counts = ingest(proposals, detector=detector.name, channel=detector.channel, run=run)
    except Exception:  # noqa: BLE001 - any error of a detector is its run's result, not the caller's
        run.status = RunStatus.FAILED
        run.error = traceback.format_exc()[-20000:]
    else:
        run.status = RunStatus.SUCCEEDED
        run.proposals = len(proposals)
        run.raised, run.merged, run.suppressed = counts.raised, counts.merged, counts.suppressed
    run.finished_at = timezone.now()
    run.duration_seconds = time.monotonic() - started
    run.save()
    return run


def run_detectors(
    names: Sequence[str] | None = None,
    window: Window | None = None,
    *,
    trigger: str = "",
    actor: Actor = None,
    progress_for: Callable[[registry.Detector], Progress] | None = None,
) -> list[DetectorRun]:
    """Run the named detectors (default: every configured one) over `window` (default: the last
    TIKTING_SIGNALS_WINDOW_DAYS days), one after the other; one run each."""
    P.check(actor, P.can_triage(actor), "run detectors")
    configured = registry.detectors()
    chosen = [registry.get(name) for name in names] if names else list(configured.values())
    window = window or default_window()
    return [
        run_detector(
            detector,
            window,
            trigger=trigger,
            actor=actor,
            progress=progress_for(detector) if progress_for else no_progress,
        )
        for detector in chosen
    ]
