"""The intake queue over HTTP, mounted at /api/signals/ by tikting/api.py: candidates (the queue's
filters, with the source keys of their evidence), triage one by one or in bulk, post-incident review
and audit findings, detector runs and "run now". Staff feedback, open to every signed-in user, is
`feedback_router` at /api/feedback.

Handlers parse input and call the services with `actor=` the authenticated user; permission and
rule errors come back as 403 and 422 `{"detail": [{"field", "message"}]}`, a stale
`expected_version` as 409.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Field, Query, Router, Schema, Status

from tikting.accounts.requests import api_actor
from tikting.cmdb.models import Service
from tikting.core.api import Date, ServiceBrief, StrictBody, UserBrief, errors
from tikting.core.exceptions import PermissionDeniedError
from tikting.core.itsm import Practice
from tikting.improvement.api.schemas import ItemBrief
from tikting.improvement.choices import SourceChannel
from tikting.improvement.models import Item
from tikting.jobs import services as jobs
from tikting.records.registry import get_kind

from . import permissions as P
from . import registry
from . import services as S
from .filtersets import filter_candidates
from .models import Candidate, CandidateStatus, DetectorRun

router = Router(tags=["signals"])
feedback_router = Router(tags=["signals"])

MAX_ID = 2**63 - 1
MAX_PAGE = 500
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
StatusValue = Literal[tuple(CandidateStatus.values)]  # type: ignore[valid-type]
StatusFilter = Literal[(*CandidateStatus.values, "open", "all")]  # type: ignore[valid-type]
ChannelValue = Literal[tuple(SourceChannel.values)]  # type: ignore[valid-type]
ManualChannelValue = Literal[tuple(c for c in S.MANUAL_CHANNELS if c != SourceChannel.STAFF_FEEDBACK)]  # type: ignore[valid-type]
PracticeValue = Literal[tuple(Practice.values)]  # type: ignore[valid-type]
ActionValue = Literal[S.TRIAGE_ACTIONS]  # type: ignore[valid-type]


def _require(allowed: bool, what: str) -> None:
    if not allowed:
        raise PermissionDeniedError(f"You may not {what}.")


# --- Schemas -------------------------------------------------------------------------------------


class EvidenceOut(Schema):
    kind: str = Field(description="The record kind (the records API: /api/records/{kind}/{id})")
    id: int
    key: str = Field(description="The record's key as it was imported (incident number, …)")
    role: str


class CandidateOut(Schema):
    id: int
    ref: str
    channel: ChannelValue  # type: ignore[valid-type]
    detector: str = Field(description="Empty: submitted through a manual channel")
    fingerprint: str
    title: str
    explanation: str
    score: float
    magnitude: float
    period_start: dt.date | None
    period_end: dt.date | None
    figures: dict[str, Any]
    practice: str
    service: ServiceBrief | None
    impact: int
    effort: int
    rating_reason: str
    proposes: str
    status: StatusValue  # type: ignore[valid-type]
    status_reason: str
    deferred_until: dt.date | None
    triaged_by: UserBrief | None
    triaged_at: dt.datetime | None
    item: ItemBrief | None
    magnitude_at_triage: float | None
    comes_back_above: float | None = Field(
        description="Dismissed, merged or accepted: the magnitude past which the pattern is raised again"
    )
    reporter: UserBrief | None = Field(
        description="Null when anonymous to the caller, or raised by a detector"
    )
    anonymous: bool
    source_keys: list[str] = Field(description="The keys of its evidence records")
    evidence_count: int
    created_at: dt.datetime
    updated_at: dt.datetime
    version: int


class CandidateDetail(CandidateOut):
    evidence: list[EvidenceOut]


class CandidatePage(Schema):
    count: int = Field(description="Candidates matching the filters")
    items: list[CandidateOut]


class CandidateQuery(Schema):
    status: StatusFilter = Field("new", description="open = new or deferred; all = any")  # type: ignore[valid-type]
    channel: ChannelValue | None = None  # type: ignore[valid-type]
    detector: str | None = Field(None, description="A detector's name; 'manual' = submitted by people")
    service: Id | None = None
    q: str = Field("", max_length=200, description="Text in the title or explanation")
    sort: Literal["score", "newest", "magnitude"] = "score"
    limit: int = Field(50, ge=1, le=MAX_PAGE)
    offset: int = Field(0, ge=0, le=2**31 - 1)


class TriageIn(StrictBody):
    action: ActionValue  # type: ignore[valid-type]
    reason: str = Field("", description="dismiss: required; defer, merge: optional")
    until: Date | None = Field(None, description="defer: the day it comes back (future)")
    item_id: Id | None = Field(None, description="merge: the register item to merge into")
    expected_version: int | None = Field(None, description="The version read; 409 when it changed since")
    title: str | None = Field(None, max_length=200, description="accept: instead of the suggested title")
    description: str | None = Field(None, description="accept: instead of the written description")
    practice: PracticeValue | None = None  # type: ignore[valid-type]
    service_id: Id | None = Field(None, description="accept: instead of the suggested service")
    impact: int | None = Field(None, ge=1, le=5)
    effort: int | None = Field(None, ge=1, le=5)


class TriageOut(Schema):
    candidate: CandidateOut
    item: ItemBrief | None = Field(description="accept: the item created; merge: the item merged into")


class BulkIn(StrictBody):
    ids: list[Id] = Field(min_length=1, max_length=500)
    action: ActionValue  # type: ignore[valid-type]
    reason: str = ""
    until: Date | None = None
    item_id: Id | None = None


class BulkError(Schema):
    id: int
    ref: str
    field: str | None
    message: str


class BulkOut(Schema):
    done: list[CandidateOut] = Field(description="Every candidate, or none when any failed")
    errors: list[BulkError] = Field(description="One entry per failing candidate; nothing was changed then")


class FindingIn(StrictBody):
    channel: ManualChannelValue  # type: ignore[valid-type]
    title: str = Field(max_length=200)
    description: str = ""
    record_kind: str = Field(description="incident or problem (post_incident_review); audit-finding")
    record_id: Id
    service_id: Id | None = None


class FeedbackIn(StrictBody):
    title: str = Field(max_length=200)
    description: str = ""
    record_kind: str | None = Field(None, description="The record it is about (any kind), optional")
    record_id: Id | None = None
    service_id: Id | None = None
    anonymous: bool = Field(
        False, description="Hide your name from peers (managers and administrators see it)"
    )


class RunOut(Schema):
    id: int
    detector: str
    status: str
    trigger: str
    window_start: dt.datetime
    window_end: dt.datetime
    started_at: dt.datetime
    finished_at: dt.datetime | None
    duration_seconds: float | None
    proposals: int
    raised: int
    merged: int
    suppressed: int
    error: str
    thresholds: dict[str, Any]


class RunPage(Schema):
    count: int
    items: list[RunOut]


class DetectorOut(Schema):
    name: str
    title: str
    channel: str
    thresholds: dict[str, float]
    defaults: dict[str, float]


class DetectorRunIn(StrictBody):
    detectors: list[str] = Field(default_factory=list, description="Names; empty: every detector")
    start: Date | None = Field(None, description="First day of the window (default: the configured window)")
    end: Date | None = Field(None, description="Last day, inclusive (default: today)")


class QueuedJobOut(Schema):
    job_id: str = Field(description="The queued job (the jobs page, /jobs/<id>/): a worker runs it")
    status: str


# --- Output ---------------------------------------------------------------------------------------


def _candidates() -> QuerySet[Candidate]:
    return (
        Candidate.objects.select_related("service", "item", "reporter", "triaged_by")
        .prefetch_related("evidence")
        .annotate(evidence_count=Count("evidence"))
    )


def _out(candidate: Candidate, viewer: Any, *, with_evidence: bool = False) -> dict[str, Any]:
    evidence = list(candidate.evidence.all())
    item = candidate.item
    data: dict[str, Any] = {
        **{name: getattr(candidate, name) for name in CandidateOut.model_fields if hasattr(candidate, name)},
        "service": candidate.service,
        "item": {"id": item.pk, "ref": item.ref, "title": item.title, "status": item.status}
        if item
        else None,
        "comes_back_above": candidate.comes_back_above(),
        "reporter": candidate.reporter if P.can_see_reporter(viewer, candidate) else None,
        "source_keys": [e.key for e in evidence],
        "evidence_count": len(evidence),
        "ref": candidate.ref,
    }
    if with_evidence:
        data["evidence"] = [
            {"kind": e.kind, "id": int(e.object_id), "key": e.key, "role": e.role} for e in evidence
        ]
    return data


def _get(candidate_id: int) -> Candidate:
    return get_object_or_404(_candidates(), pk=candidate_id)


def _service(pk: int | None, field: str) -> Service | None:
    if pk is None:
        return None
    service = Service.objects.filter(pk=pk).first()
    if service is None:
        raise ValidationError({field: f"No service with id {pk}."})
    return service


def _item(pk: int | None, field: str = "item_id") -> Item | None:
    if pk is None:
        return None
    item = Item.objects.filter(pk=pk).first()
    if item is None:
        raise ValidationError({field: f"No register item with id {pk}."})
    return item


def _record(kind: str | None, pk: int | None) -> Any:
    if kind is None and pk is None:
        return None
    if not kind or pk is None:
        raise ValidationError({"record_id": "Give both record_kind and record_id, or neither."})
    try:
        record_kind = get_kind(kind)
    except ValidationError as exc:
        raise ValidationError({"record_kind": exc.messages[0]}) from exc
    record = record_kind.model._default_manager.filter(pk=pk).first()
    if record is None:
        raise ValidationError({"record_id": f"No {record_kind.label.lower()} with id {pk}."})
    return record


# --- Candidates ----------------------------------------------------------------------------------


@router.get("/candidates", response={200: CandidatePage, **errors(403, 422)}, summary="The intake queue")
def list_candidates(request: HttpRequest, params: Query[CandidateQuery]):  # type: ignore[valid-type]
    """Filtered like the queue page; sorted by score (highest first) unless `sort` says otherwise."""
    actor = api_actor(request)
    _require(P.can_view(actor), "read the intake queue")
    data = params.dict()
    qs = filter_candidates(_candidates(), data)
    rows = list(qs[params.offset : params.offset + params.limit])
    return {"count": qs.count(), "items": [_out(c, actor) for c in rows]}


# Before the routes with {candidate_id}: Django matches URL patterns in order.
@router.post(
    "/candidates/triage",
    response={200: BulkOut, **errors(403, 422)},
    summary="Triage many candidates at once (all or nothing)",
)
def triage_many(request: HttpRequest, payload: BulkIn):
    """The same decision for every id, in one transaction: when any one fails (already triaged,
    unknown, a reason missing) nothing is changed and `errors` names each failing candidate."""
    actor = api_actor(request)
    _require(P.can_triage(actor), "triage candidates")
    result = S.triage_bulk(
        payload.ids,
        actor=actor,
        action=payload.action,
        reason=payload.reason,
        until=payload.until,
        item=_item(payload.item_id),
    )
    done = list(_candidates().filter(pk__in=[c.pk for c in result.done]))
    return {"done": [_out(c, actor) for c in done], "errors": result.errors}


@router.get(
    "/candidates/{candidate_id}", response={200: CandidateDetail, **errors(403, 404)}, summary="A candidate"
)
def get_candidate(request: HttpRequest, candidate_id: Id):
    """With every evidence record (kind, id, key as imported, role)."""
    actor = api_actor(request)
    _require(P.can_view(actor), "read the intake queue")
    return _out(_get(candidate_id), actor, with_evidence=True)


@router.post(
    "/candidates/{candidate_id}/triage",
    response={200: TriageOut, **errors(403, 404, 409, 422)},
    summary="Accept, merge, defer or dismiss a candidate",
)
def triage_candidate(request: HttpRequest, candidate_id: Id, payload: TriageIn):
    """accept: a new register item pre-filled from the candidate (override title, description,
    practice, service_id, impact, effort), its evidence as links, its baseline as an indicator;
    merge: into `item_id`; defer: until `until`; dismiss: `reason` required."""
    actor = api_actor(request)
    _require(P.can_triage(actor), "triage candidates")
    candidate = get_object_or_404(Candidate, pk=candidate_id)
    item: Item | None = None
    if payload.action == "accept":
        overrides = {
            "title": payload.title,
            "description": payload.description,
            "practice": payload.practice,
            "service": _service(payload.service_id, "service_id"),
            "impact": payload.impact,
            "effort": payload.effort,
        }
        item = S.accept_candidate(
            candidate,
            actor=actor,
            expected_version=payload.expected_version,
            **{k: v for k, v in overrides.items() if v is not None},
        )
    else:
        target = _item(payload.item_id)
        if payload.action == "merge" and target is None:
            raise ValidationError({"item_id": "Give the register item to merge into."})
        S.triage(
            candidate,
            actor=actor,
            action=payload.action,
            reason=payload.reason,
            until=payload.until,
            item=target,
            expected_version=payload.expected_version,
        )
    fresh = _get(candidate_id)
    item = item or fresh.item
    return {
        "candidate": _out(fresh, actor),
        "item": {"id": item.pk, "ref": item.ref, "title": item.title, "status": item.status}
        if item
        else None,
    }


# --- Manual channels -------------------------------------------------------------------------------


@router.post(
    "/findings",
    response={201: CandidateOut, **errors(403, 404, 422)},
    summary="Submit a PIR or audit finding",
)
def submit_finding(request: HttpRequest, payload: FindingIn):
    """A post-incident review finding (from an incident or a problem) or an audit finding (from an
    audit finding record): a candidate in the queue with the record as its evidence."""
    actor = api_actor(request)
    spec = S.manual_channel(payload.channel)
    _require(P.can_report(actor, spec.role), f"submit {spec.label.lower()}")
    candidate = S.submit_candidate(
        actor=actor,
        channel=payload.channel,
        title=payload.title,
        description=payload.description,
        record=_record(payload.record_kind, payload.record_id),
        service=_service(payload.service_id, "service_id"),
    )
    return Status(201, _out(_get(candidate.pk), actor))


@feedback_router.post("", response={201: CandidateOut, **errors(403, 422)}, summary="Give staff feedback")
def give_feedback(request: HttpRequest, payload: FeedbackIn):
    """Any signed-in user, viewers included; `anonymous` hides the reporter from peers."""
    actor = api_actor(request)
    candidate = S.submit_candidate(
        actor=actor,
        channel=SourceChannel.STAFF_FEEDBACK,
        title=payload.title,
        description=payload.description,
        record=_record(payload.record_kind, payload.record_id),
        service=_service(payload.service_id, "service_id"),
        anonymous=payload.anonymous,
    )
    return Status(201, _out(_get(candidate.pk), actor))


# --- Detectors and their runs ----------------------------------------------------------------------


@router.get(
    "/detectors", response={200: list[DetectorOut], **errors(403)}, summary="The configured detectors"
)
def list_detectors(request: HttpRequest):
    _require(P.can_view(api_actor(request)), "read the detectors")
    return list(registry.detectors().values())


@router.get("/runs", response={200: RunPage, **errors(403)}, summary="Detector runs, newest first")
def list_runs(
    request: HttpRequest,
    detector: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
):
    _require(P.can_view(api_actor(request)), "read the detector runs")
    qs = DetectorRun.objects.order_by("-started_at", "-id")
    if detector:
        qs = qs.filter(detector=detector)
    return {"count": qs.count(), "items": list(qs[offset : offset + limit])}


@router.post("/runs", response={202: QueuedJobOut, **errors(403, 422)}, summary="Run detectors now (queued)")
def run_now(request: HttpRequest, payload: DetectorRunIn):
    """Queue a job that runs the detectors (a worker, `tikting worker`, runs it); each detector's
    run then shows in GET /runs."""
    actor = api_actor(request)
    _require(P.can_triage(actor), "run detectors")
    for name in payload.detectors:
        registry.get(name)
    if payload.start and payload.end and payload.start > payload.end:
        raise ValidationError({"end": "The window's end comes before its start."})
    kwargs: dict[str, Any] = {"detectors": payload.detectors or None}
    if payload.start:
        kwargs["start"] = payload.start.isoformat()
    if payload.end:
        kwargs["end"] = payload.end.isoformat()
    try:
        job = jobs.enqueue_task(
            "tikting.signals.tasks.run_detectors",
            kwargs=kwargs,
            label="detectors: " + (", ".join(payload.detectors) or "all"),
            actor=actor,
        )
    except ImproperlyConfigured as exc:
        raise ValidationError({"detectors": str(exc)}) from exc
    return Status(202, {"job_id": str(job.pk), "status": job.status})
