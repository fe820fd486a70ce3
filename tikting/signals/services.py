"""The intake queue's services: ingest detector proposals, run detectors, triage candidates (accept
into the register, merge into an item, defer, dismiss; one by one or in bulk), and take findings and
feedback from the manual channels.

Every service that changes state takes `actor=` (None: the system), checks permission
(permissions.py), validates (ValidationError naming the field), writes history (core.audit: an
audit row per change, a status row per triage) and runs in a transaction. Triage takes
`expected_version`: a candidate triaged by someone else since it was read raises ConflictError.

Intake rules (docs/signals.md, "Intake rules"): a proposal's fingerprint names its pattern. A new
fingerprint raises a candidate; one whose latest candidate is open (new or deferred) updates it
(its evidence merged in, counted "merged"); one whose latest candidate was dismissed, merged or
accepted is suppressed unless its magnitude grew by TIKTING_SIGNALS_REGROWTH or more since that
decision, and then raises a new candidate that names the previous one.
"""

from __future__ import annotations

import datetime as dt
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from tikting.accounts.models import Actor, Role, User
from tikting.core import audit
from tikting.core.exceptions import ConflictError, PermissionDeniedError
from tikting.core.itsm import Practice
from tikting.improvement import services as S
from tikting.improvement.choices import SourceChannel
from tikting.improvement.models import Item
from tikting.records.registry import KINDS, kind_for

from . import permissions as P
from . import registry
from .models import (
    OPEN_STATUSES,
    Candidate,
    CandidateEvidence,
    CandidateStatus,
    DetectorRun,
    Proposes,
    RunStatus,
)
from .proposals import Progress, Proposal, Window, no_progress

CHUNK = 500  # fingerprints looked up per query


def _user(actor: Actor) -> User | None:
    return actor if isinstance(actor, User) and actor.pk else None


def regrowth() -> float:
    return float(settings.TIKTING_SIGNALS_REGROWTH)


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


# --- Triage ---------------------------------------------------------------------------------------


def _lock(candidate: Candidate, expected_version: int | None) -> Candidate:
    locked = Candidate.objects.select_for_update().get(pk=candidate.pk)
    if expected_version is not None and locked.version != int(expected_version):
        raise ConflictError(locked, expected_version)
    return locked


def _open_for_triage(
    candidate: Candidate, actor: Actor, expected_version: int | None, verb: str
) -> Candidate:
    """The candidate locked for a triage decision: the actor may triage, nobody changed it since
    `expected_version` (ConflictError), and it is still open (ValidationError naming its status)."""
    P.check(actor, P.can_triage(actor), "triage candidates")
    locked = _lock(candidate, expected_version)
    _require_open(locked, verb)
    return locked


def _require_open(candidate: Candidate, verb: str) -> None:
    if candidate.status not in OPEN_STATUSES:
        raise ValidationError(
            {
                "status": f"{candidate.ref} is already {candidate.get_status_display().lower()}: only a new "
                f"or deferred candidate can be {verb}."
            }
        )


def _decide(
    candidate: Candidate,
    *,
    actor: Actor,
    status: str,
    reason: str = "",
    message: str = "",
    **fields: Any,
) -> Candidate:
    """Record a triage decision on a locked candidate: status, who, when, history."""
    before = audit.snapshot(candidate)
    old = candidate.status
    candidate.status = status
    candidate.status_reason = reason
    candidate.triaged_by = _user(actor)
    candidate.triaged_at = timezone.now()
    for name, value in fields.items():
        setattr(candidate, name, value)
    candidate.version += 1
    candidate.full_clean()
    candidate.save()
    changes = audit.diff(before, audit.snapshot(candidate))
    changes.pop("updated_at", None)
    audit.record(candidate, action="update", actor=actor, changes=changes, message=message)
    audit.record_status(candidate, old=old, new=status, actor=actor, reason=reason, at=candidate.triaged_at)
    return candidate


def evidence_records(candidate: Candidate) -> list[tuple[CandidateEvidence, models.Model]]:
    """The candidate's evidence with the records they point to, in order (records since deleted are
    left out); one query per record kind."""
    rows = list(candidate.evidence.select_related("content_type").order_by("id"))
    wanted: dict[int, set[str]] = {}
    for row in rows:
        wanted.setdefault(row.content_type_id, set()).add(row.object_id)
    found: dict[tuple[int, str], models.Model] = {}
    for ct_id, ids in wanted.items():
        model = ContentType.objects.get_for_id(ct_id).model_class()
        if model is None:
            continue
        for obj in model._default_manager.filter(pk__in=list(ids)):
            found[(ct_id, str(obj.pk))] = obj
    return [
        (row, found[(row.content_type_id, row.object_id)])
        for row in rows
        if (row.content_type_id, row.object_id) in found
    ]


def _link_evidence(item: Item, candidate: Candidate, *, actor: Actor, origin_first: bool) -> int:
    """The candidate's evidence records as the item's source links (the first as origin)."""
    linked: set[tuple[int, str]] = set()
    for row, record in evidence_records(candidate):
        if (row.content_type_id, row.object_id) in linked:
            continue
        S.link_source(item, actor=actor, record=record, is_origin=origin_first and not linked)
        linked.add((row.content_type_id, row.object_id))
    return len(linked)


def describe(candidate: Candidate) -> str:
    """The item description written from a candidate: the explanation, the period and the figures."""
    parts = [candidate.explanation.strip()]
    if candidate.period_start or candidate.period_end:
        parts.append(f"Period covered: {candidate.period_start or '…'} to {candidate.period_end or '…'}.")
    source = f"detector {candidate.detector}" if candidate.detector else candidate.get_channel_display()
    parts.append(f"From the intake queue: {candidate.ref}, raised by {source}.")
    if candidate.rating_reason:
        parts.append(
            f"Suggested impact {candidate.impact} and effort {candidate.effort}: {candidate.rating_reason}"
        )
    return "\n\n".join(p for p in parts if p)


def _baseline(candidate: Candidate) -> Decimal | None:
    value = (candidate.figures or {}).get("baseline")
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN)
    except (InvalidOperation, ValueError):
        return None


def _add_baseline_indicator(item: Item, candidate: Candidate, *, actor: Actor) -> None:
    """Where the proposal carries a baseline figure: a primary indicator with that baseline, dated
    the end of the period it was computed over, the method saying by what and over when."""
    baseline = _baseline(candidate)
    if baseline is None:
        return
    figures = candidate.figures or {}
    source = candidate.detector or candidate.channel
    S.add_indicator(
        item,
        actor=actor,
        name=str(figures.get("indicator") or candidate.title)[:200],
        unit=str(figures.get("unit") or "")[:30],
        direction="lower" if figures.get("lower_is_better", True) else "higher",
        baseline_value=baseline,
        baseline_date=candidate.period_end or timezone.localdate(),
        baseline_method=(
            f"computed by {source} over {candidate.period_start or '…'}..{candidate.period_end or '…'} "
            f"({candidate.ref})"
        )[:300],
    )


ACCEPT_FIELDS = frozenset({"title", "description", "practice", "service", "impact", "effort"})


@transaction.atomic
def accept_candidate(
    candidate: Candidate, *, actor: Actor, expected_version: int | None = None, **overrides: Any
) -> Item:
    """Put the candidate in the register: a new item (to be assessed there) pre-filled from it —
    title, description from the explanation, practice, service, impact, effort, source channel and
    reference — with the evidence records as its source links (the first as origin) and, where the
    proposal carries a baseline figure, an indicator with that baseline. `overrides` (ACCEPT_FIELDS)
    replace the suggestions."""
    locked = _open_for_triage(candidate, actor, expected_version, "accepted")
    unknown = sorted(set(overrides) - ACCEPT_FIELDS)
    if unknown:
        raise ValidationError(dict.fromkeys(unknown, "This field cannot be set here."))
    data = {
        "title": locked.title,
        "description": describe(locked),
        "practice": locked.practice,
        "service": locked.service,
        "impact": locked.impact,
        "effort": locked.effort,
    }
    data.update({k: v for k, v in overrides.items() if v is not None})
    item = S.create_item(
        actor=actor,
        source_channel=locked.channel if locked.channel in SourceChannel.values else SourceChannel.OTHER,
        source_reference=f"{locked.ref} ({locked.detector or locked.get_channel_display()})"[:300],
        **data,
    )
    _link_evidence(item, locked, actor=actor, origin_first=True)
    _add_baseline_indicator(item, locked, actor=actor)
    _decide(
        locked,
        actor=actor,
        status=CandidateStatus.ACCEPTED,
        message=f"Accepted into the register as {item.ref}",
        item=item,
        magnitude_at_triage=locked.magnitude,
    )
    return item


@transaction.atomic
def merge_candidate(
    candidate: Candidate, *, actor: Actor, item: Item, note: str = "", expected_version: int | None = None
) -> Candidate:
    """Fold the candidate into an existing item: its evidence records become the item's source links,
    a comment on the item says what was merged, and the candidate is marked merged."""
    locked = _open_for_triage(candidate, actor, expected_version, "merged")
    if item is None or item.pk is None or not Item.objects.filter(pk=item.pk).exists():
        raise ValidationError({"item": "Choose the register item to merge into."})
    _link_evidence(item, locked, actor=actor, origin_first=False)
    body = f"Merged from the intake queue: {locked.ref} {locked.title}.\n\n{locked.explanation.strip()}"
    if note.strip():
        body += f"\n\n{note.strip()}"
    S.add_comment(item, actor=actor, body=body)
    return _decide(
        locked,
        actor=actor,
        status=CandidateStatus.MERGED,
        reason=note.strip(),
        message=f"Merged into {item.ref}",
        item=item,
        magnitude_at_triage=locked.magnitude,
    )


@transaction.atomic
def defer_candidate(
    candidate: Candidate,
    *,
    actor: Actor,
    until: dt.date | None,
    reason: str = "",
    expected_version: int | None = None,
) -> Candidate:
    """Put the candidate aside until a future date; the daily housekeeping brings it back then."""
    locked = _open_for_triage(candidate, actor, expected_version, "deferred")
    if not until:
        raise ValidationError({"until": "Give the date the candidate comes back."})
    if until <= timezone.localdate():
        raise ValidationError({"until": "The date it comes back must be in the future."})
    return _decide(
        locked,
        actor=actor,
        status=CandidateStatus.DEFERRED,
        reason=(reason or "").strip(),
        message=f"Deferred until {until}",
        deferred_until=until,
    )


@transaction.atomic
def dismiss_candidate(
    candidate: Candidate, *, actor: Actor, reason: str, expected_version: int | None = None
) -> Candidate:
    """Dismiss the candidate with a reason. The pattern is not raised again unless its evidence grows
    by TIKTING_SIGNALS_REGROWTH or more."""
    locked = _open_for_triage(candidate, actor, expected_version, "dismissed")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "A reason is required to dismiss a candidate."})
    return _decide(
        locked,
        actor=actor,
        status=CandidateStatus.DISMISSED,
        reason=reason,
        message="Dismissed",
        magnitude_at_triage=locked.magnitude,
    )


TRIAGE_ACTIONS = ("accept", "merge", "defer", "dismiss")


def triage(
    candidate: Candidate,
    *,
    actor: Actor,
    action: str,
    reason: str = "",
    until: dt.date | None = None,
    item: Item | None = None,
    expected_version: int | None = None,
) -> Candidate:
    """One triage decision by name (the bulk form and the API): accept, merge, defer or dismiss."""
    if action == "accept":
        accept_candidate(candidate, actor=actor, expected_version=expected_version)
    elif action == "merge":
        merge_candidate(candidate, actor=actor, item=item, note=reason, expected_version=expected_version)  # type: ignore[arg-type]
    elif action == "defer":
        defer_candidate(candidate, actor=actor, until=until, reason=reason, expected_version=expected_version)
    elif action == "dismiss":
        dismiss_candidate(candidate, actor=actor, reason=reason, expected_version=expected_version)
    else:
        raise ValidationError({"action": f"Choose one of: {', '.join(TRIAGE_ACTIONS)}."})
    return Candidate.objects.get(pk=candidate.pk)


@dataclass
class BulkResult:
    """What a bulk triage did: every candidate (all of them or none), or the errors that stopped it."""

    done: list[Candidate] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def triage_bulk(
    ids: Sequence[int],
    *,
    actor: Actor,
    action: str,
    reason: str = "",
    until: dt.date | None = None,
    item: Item | None = None,
) -> BulkResult:
    """The same decision for many candidates, in one transaction: all of them, or — when any one
    fails (already triaged, a missing reason, …) — none, with an error per failing candidate
    ({"id", "ref", "field", "message"}) so the caller can correct the selection and send it again."""
    P.check(actor, P.can_triage(actor), "triage candidates")
    if action not in TRIAGE_ACTIONS:
        raise ValidationError({"action": f"Choose one of: {', '.join(TRIAGE_ACTIONS)}."})
    ids = list(dict.fromkeys(int(i) for i in ids))
    if not ids:
        raise ValidationError({"ids": "Select at least one candidate."})
    result = BulkResult()
    with transaction.atomic():
        found = Candidate.objects.in_bulk(ids)
        for pk in ids:
            candidate = found.get(pk)
            if candidate is None:
                result.errors.append(
                    {"id": pk, "ref": "", "field": "ids", "message": f"No candidate with id {pk}."}
                )
                continue
            try:
                with transaction.atomic():  # a savepoint: one failure leaves the transaction usable
                    result.done.append(
                        triage(candidate, actor=actor, action=action, reason=reason, until=until, item=item)
                    )
            except (ValidationError, ConflictError) as exc:
                for name, message in _messages(exc):
                    result.errors.append({"id": pk, "ref": candidate.ref, "field": name, "message": message})
        if result.errors:
            transaction.set_rollback(True)
            result.done = []
    return result


def _messages(exc: Exception) -> list[tuple[str | None, str]]:
    if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
        return [(None if f == "__all__" else f, m) for f, msgs in exc.message_dict.items() for m in msgs]
    if isinstance(exc, ValidationError):
        return [(None, m) for m in exc.messages]
    return [(None, str(exc))]


@transaction.atomic
def wake_deferred(*, as_of: dt.date | None = None, actor: Actor = None) -> int:
    """Deferred candidates whose date has come are back in the queue (daily housekeeping)."""
    as_of = as_of or timezone.localdate()
    count = 0
    due = Candidate.objects.select_for_update().filter(
        status=CandidateStatus.DEFERRED, deferred_until__lte=as_of
    )
    for candidate in due:
        before = audit.snapshot(candidate)
        old = candidate.status
        candidate.status = CandidateStatus.NEW
        candidate.version += 1
        candidate.save(update_fields=["status", "version", "updated_at"])
        audit.record(
            candidate,
            action="update",
            actor=actor,
            changes=audit.diff(before, audit.snapshot(candidate, ["status"])),
            message=f"Back in the queue: deferred until {candidate.deferred_until}",
        )
        audit.record_status(
            candidate,
            old=old,
            new=candidate.status,
            actor=actor,
            reason=f"deferred until {candidate.deferred_until}",
        )
        count += 1
    return count


# --- Manual channels ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ManualChannel:
    """A channel people submit through: who may, and from which records."""

    channel: str
    label: str
    role: str  # the lowest role that may submit
    kinds: tuple[str, ...] = ()  # record kinds it is raised from; () any or none
    record_required: bool = False
    practice: str = Practice.OTHER
    anonymous_allowed: bool = False


MANUAL_CHANNELS: dict[str, ManualChannel] = {
    c.channel: c
    for c in (
        ManualChannel(
            SourceChannel.POST_INCIDENT_REVIEW,
            "Post-incident review finding",
            Role.CONTRIBUTOR,
            kinds=("incident", "problem"),
            record_required=True,
            practice=Practice.INCIDENT,
        ),
        ManualChannel(
            SourceChannel.AUDIT_FINDING,
            "Audit finding",
            Role.CONTRIBUTOR,
            kinds=("audit-finding",),
            record_required=True,
            practice=Practice.OTHER,
        ),
        ManualChannel(
            SourceChannel.STAFF_FEEDBACK,
            "Staff feedback",
            Role.VIEWER,
            practice=Practice.OTHER,
            anonymous_allowed=True,
        ),
    )
}


def manual_channel(channel: str) -> ManualChannel:
    try:
        return MANUAL_CHANNELS[channel]
    except KeyError as exc:
        raise ValidationError(
            {"channel": f"'{channel}' is not a manual channel; choose from {', '.join(MANUAL_CHANNELS)}."}
        ) from exc


def record_key(record: models.Model) -> str:
    """The record's key as people know it (incident number, …), else #id."""
    kind = kind_for(record)
    if kind is None or kind.key_field == "id":
        return f"#{record.pk}"
    return str(getattr(record, kind.key_field, "") or f"#{record.pk}")


@transaction.atomic
def submit_candidate(
    *,
    actor: Actor,
    channel: str,
    title: str,
    description: str = "",
    record: models.Model | None = None,
    service: Any = None,
    practice: str = "",
    impact: int | None = None,
    effort: int | None = None,
    anonymous: bool = False,
) -> Candidate:
    """A finding or feedback submitted by a person: a candidate in the queue with the channel it came
    through, the record it was raised from (as its evidence) and the reporter. Staff feedback may be
    anonymous to peers (its reporter is shown to managers and administrators only)."""
    spec = manual_channel(channel)
    if actor is not None and not getattr(actor, "is_authenticated", False):
        raise PermissionDeniedError(f"Sign in to submit {spec.label.lower()}.")
    P.check(actor, P.can_report(actor, spec.role), f"submit {spec.label.lower()}")
    errors: dict[str, str] = {}
    title = (title or "").strip()
    if not title:
        errors["title"] = "A title is required."
    elif len(title) > 200:
        errors["title"] = f"At most 200 characters ({len(title)} given)."
    kind = kind_for(record) if record is not None else None
    if record is None and spec.record_required:
        errors["record"] = f"A {spec.label.lower()} is raised from a record: {' or '.join(spec.kinds)}."
    elif record is not None and (kind is None or (spec.kinds and kind.slug not in spec.kinds)):
        errors["record"] = (
            f"A {spec.label.lower()} is raised from a record: {' or '.join(spec.kinds) or 'any kind'}."
        )
    if practice and practice not in Practice.values:
        errors["practice"] = f"'{practice}' is not a practice."
    for name, value in (("impact", impact), ("effort", effort)):
        if value is not None and not 1 <= int(value) <= 5:
            errors[name] = "Rate it from 1 to 5."
    if anonymous and not spec.anonymous_allowed:
        errors["anonymous"] = (
            f"Only staff feedback can be anonymous; {spec.label.lower()} names its reporter."
        )
    if errors:
        raise ValidationError(errors)
    if service is None and record is not None:
        service = getattr(record, "service", None)
    today = timezone.localdate()
    candidate = Candidate(
        channel=spec.channel,
        title=title,
        explanation=(description or "").strip() or title,
        practice=practice or (kind.practice if kind and kind.practice in Practice.values else spec.practice),
        service=service,
        impact=impact or 3,
        effort=effort or 3,
        rating_reason="" if impact or effort else "Not rated by the reporter (3 is the middle of the scale).",
        magnitude=1,
        period_start=today,
        period_end=today,
        reporter=_user(actor),
        anonymous=bool(anonymous),
        last_seen_at=timezone.now(),
    )
    candidate.full_clean()
    candidate.save()
    if record is not None and kind is not None:
        CandidateEvidence.objects.create(
            candidate=candidate,
            content_type=ContentType.objects.get_for_model(record),
            object_id=str(record.pk),
            kind=kind.slug,
            key=record_key(record)[:120],
            role="reported_from",
        )
    changes = audit.diff({}, audit.snapshot(candidate))
    if candidate.anonymous:
        changes.pop("reporter", None)
    audit.record(candidate, action="create", actor=actor, changes=changes, message=f"Submitted: {spec.label}")
    audit.record_status(candidate, old="", new=candidate.status, actor=actor, reason="submitted")
    return candidate


# --- Export ---------------------------------------------------------------------------------------


def export_rows(candidates: models.QuerySet[Candidate], *, viewer: Actor = None) -> Iterator[dict[str, Any]]:
    """Each candidate as plain data for others to check: its detector, score, explanation, figures
    and the source keys of its evidence records (e.g. incident numbers as they were imported)."""
    qs = candidates.select_related("service", "item", "reporter").prefetch_related("evidence")
    for candidate in qs.iterator(chunk_size=500):
        evidence = list(candidate.evidence.all())
        see_reporter = viewer is None or P.can_see_reporter(viewer, candidate)
        yield {
            "id": candidate.pk,
            "ref": candidate.ref,
            "detector": candidate.detector,
            "channel": candidate.channel,
            "fingerprint": candidate.fingerprint,
            "status": candidate.status,
            "title": candidate.title,
            "score": candidate.score,
            "magnitude": candidate.magnitude,
            "explanation": candidate.explanation,
            "period_start": candidate.period_start.isoformat() if candidate.period_start else None,
            "period_end": candidate.period_end.isoformat() if candidate.period_end else None,
            "figures": candidate.figures,
            "practice": candidate.practice,
            "service": candidate.service.name if candidate.service else None,
            "impact": candidate.impact,
            "effort": candidate.effort,
            "rating_reason": candidate.rating_reason,
            "proposes": candidate.proposes,
            "item": candidate.item.ref if candidate.item else None,
            "reporter": (candidate.reporter.username if candidate.reporter and see_reporter else None),
            "anonymous": candidate.anonymous,
            "created_at": candidate.created_at.isoformat(),
            "source_keys": [e.key for e in evidence],
            "evidence": [
                {"kind": e.kind, "id": int(e.object_id), "key": e.key, "role": e.role} for e in evidence
            ],
        }
