"""Triage: accept into the register, merge into an item, defer, dismiss; one by one or in bulk."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from tikting.accounts.models import Actor
from tikting.core import audit
from tikting.core.exceptions import ConflictError
from tikting.improvement import services as S
from tikting.improvement.choices import SourceChannel
from tikting.improvement.models import Indicator, Item

from .. import permissions as P
from ..models import (
    OPEN_STATUSES,
    Candidate,
    CandidateEvidence,
    CandidateStatus,
)
from .common import _user

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
    indicator = S.add_indicator(
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
    _bind_to_metric(indicator, candidate, actor=actor)


def _bind_to_metric(indicator: Indicator, candidate: Candidate, *, actor: Actor) -> None:
    """Where the proposal says which tikting metric its baseline is (figures["metric_binding"]:
    {"metric": key, "scope": {...}}, e.g. the CMDB hygiene detector's accuracy), the indicator is
    bound to it over the period the candidate covers, so its baseline and later measurements come
    from the metric. A metric that cannot answer for that period leaves the indicator unbound."""
    binding = (candidate.figures or {}).get("metric_binding")
    if not isinstance(binding, dict) or not binding.get("metric") or candidate.period_end is None:
        return
    try:
        with transaction.atomic():
            S.bind_indicator(
                indicator,
                actor=actor,
                metric_key=str(binding["metric"]),
                scope=dict(binding.get("scope") or {}),
                window_start=candidate.period_start or candidate.period_end,
                window_end=candidate.period_end,
            )
    except ValidationError:
        return


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
