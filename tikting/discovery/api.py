"""Odysseus over HTTP, mounted at /api/discovery/ by tikting/api.py: what the CMDB health page shows
(the figures, the CIs behind each, drifts, duplicate candidates, runs) and does (register, retire,
accept or reject a drift, merge or dismiss duplicates). Everyone signed in reads; managers and
administrators act (the services check it: 403). A stale `expected_version` answers 409."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Field, Query, Router, Schema

from tikting.accounts.requests import api_actor
from tikting.cmdb.models import ConfigurationItem
from tikting.core.api import StrictBody, errors
from tikting.core.exceptions import PermissionDeniedError
from tikting.records.registry import can_view_records

from . import services as S
from . import snapshot
from .models import DiscoveryRun, DriftItem, DuplicateCandidate

router = Router(tags=["discovery"])
MAX_PAGE = 500
CI = ConfigurationItem
Figure = Literal[
    "in_scope", "seen", "never_seen", "stale", "drifted", "unregistered", "duplicates", "incomplete"
]


def _reader(request: HttpRequest) -> Any:
    actor = api_actor(request)
    if not can_view_records(actor):
        raise PermissionDeniedError("You may not read the CMDB's health.")
    return actor


# --- Shapes -----------------------------------------------------------------------------------------


class Counts(Schema):
    in_scope: int
    seen: int = Field(description="In scope, seen within TIKTING_DISCOVERY_STALE_DAYS")
    never_seen: int
    stale: int
    accurate: int = Field(description="Seen, no open drift on a key attribute")
    drifted: int
    unregistered: int
    duplicates: int = Field(description="Open duplicate candidates (in the older CI's class)")
    required: int
    filled: int


class HealthOut(Schema):
    as_of: dt.datetime
    stale_days: int
    total: Counts
    by_class: dict[str, Counts]
    coverage_pct: float | None = Field(description="seen / in_scope × 100, unrounded")
    accuracy_pct: float | None = Field(description="accurate / seen × 100")
    completeness_pct: float | None = Field(description="filled / required × 100")


class CIOut(Schema):
    id: int
    name: str
    ci_class: str
    status: str
    version: int
    fqdn: str
    hostname: str
    serial_number: str
    manufacturer: str
    model_name: str
    system_uuid: str
    mac_address: str
    ip_address: str
    os_name: str
    location: str
    first_seen_at: dt.datetime | None
    last_seen_at: dt.datetime | None
    discovery_source: str


class CIPage(Schema):
    count: int
    items: list[CIOut]


class DriftOut(Schema):
    id: int
    ci_id: int
    ci_name: str
    attribute: str
    ci_value: str
    ci_source: str = Field(description="Whose value the CI holds: manual (a person) or a source")
    discovered_value: str
    source: str
    status: str
    found_at: dt.datetime
    version: int


class DriftPage(Schema):
    count: int
    items: list[DriftOut]


class DuplicateOut(Schema):
    id: int
    ci_id: int = Field(description="The older CI, kept by default on a merge")
    ci_name: str
    other_id: int
    other_name: str
    reason: str = Field(description="The attribute they share, or rule:<rule> (one device matched both)")
    value: str
    status: str
    found_at: dt.datetime
    version: int


class DuplicatePage(Schema):
    count: int
    items: list[DuplicateOut]


class RunOut(Schema):
    id: int
    source_name: str
    format: str
    file_name: str
    scan_range: str
    status: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    duration_seconds: float | None
    observed: int
    down: int
    unidentified: int
    confirmed: int
    updated: int
    created_unregistered: int
    duplicate_candidates: int
    drifts: int
    stale: int
    errors: int
    error_details: list[dict[str, str]]


class RunPage(Schema):
    count: int
    items: list[RunOut]


class RegisterIn(StrictBody):
    expected_version: int | None = None
    name: str | None = None
    ci_class: str | None = None
    service: int | None = Field(None, description="A service id")
    owner: int | None = Field(None, description="A user id")


class RetireIn(StrictBody):
    expected_version: int | None = None
    reason: str = ""


class DecideIn(StrictBody):
    expected_version: int | None = None


class MergeIn(StrictBody):
    expected_version: int | None = None
    keep: int | None = Field(None, description="The id of the CI to keep (default: the older)")


# --- Reading ----------------------------------------------------------------------------------------


def _percent(part: int, whole: int) -> float | None:
    return 100.0 * part / whole if whole else None


@router.get("/health", response={200: HealthOut, **errors(403)}, summary="The CMDB's figures as of now")
def health(request: HttpRequest):
    _reader(request)
    now = timezone.now()
    rows = snapshot.figures(now)
    total = {name: sum(c.get(name, 0) for c in rows.values()) for name in snapshot.COUNTS}
    return {
        "as_of": now,
        "stale_days": settings.TIKTING_DISCOVERY_STALE_DAYS,
        "total": total,
        "by_class": rows,
        "coverage_pct": _percent(total["seen"], total["in_scope"]),
        "accuracy_pct": _percent(total["accurate"], total["seen"]),
        "completeness_pct": _percent(total["filled"], total["required"]),
    }


@router.get("/cis", response={200: CIPage, **errors(403, 422)}, summary="The CIs behind a figure")
def list_cis(
    request: HttpRequest,
    figure: Figure = "unregistered",
    ci_class: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
):
    _reader(request)
    if ci_class and ci_class not in CI.CIClass.values:
        raise ValidationError({"ci_class": f"Choose a class: {', '.join(CI.CIClass.values)}."})
    qs = snapshot.cis_behind(figure, ci_class=ci_class or "").order_by("name", "pk")
    return {"count": qs.count(), "items": list(qs[offset : offset + limit])}


def _drift(d: DriftItem) -> dict[str, Any]:
    return {**{f: getattr(d, f) for f in DriftOut.model_fields if f != "ci_name"}, "ci_name": d.ci.name}


def _pair(p: DuplicateCandidate) -> dict[str, Any]:
    shown = {f: getattr(p, f) for f in DuplicateOut.model_fields if f not in ("ci_name", "other_name")}
    return {**shown, "ci_name": p.ci.name, "other_name": p.other.name}


@router.get("/drifts", response={200: DriftPage, **errors(403, 422)}, summary="Attribute drifts")
def list_drifts(
    request: HttpRequest,
    status: Literal["open", "accepted", "rejected", "resolved", "all"] = "open",
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
):
    _reader(request)
    qs = DriftItem.objects.select_related("ci").order_by("-found_at", "-pk")
    if status != "all":
        qs = qs.filter(status=status)
    return {"count": qs.count(), "items": [_drift(d) for d in qs[offset : offset + limit]]}


@router.get("/duplicates", response={200: DuplicatePage, **errors(403, 422)}, summary="Duplicate candidates")
def list_duplicates(
    request: HttpRequest,
    status: Literal["open", "merged", "dismissed", "all"] = "open",
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
):
    _reader(request)
    qs = DuplicateCandidate.objects.select_related("ci", "other").order_by("-found_at", "-pk")
    if status != "all":
        qs = qs.filter(status=status)
    return {"count": qs.count(), "items": [_pair(p) for p in qs[offset : offset + limit]]}


def _run(run: DiscoveryRun) -> dict[str, Any]:
    duration = run.duration
    shown = {f: getattr(run, f) for f in RunOut.model_fields if f != "duration_seconds"}
    return {**shown, "duration_seconds": None if duration is None else duration.total_seconds()}


@router.get("/runs", response={200: RunPage, **errors(403, 422)}, summary="Discovery runs, newest first")
def list_runs(
    request: HttpRequest,
    source: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
):
    _reader(request)
    qs = DiscoveryRun.objects.all()
    if source:
        qs = qs.filter(source_name=source)
    return {"count": qs.count(), "items": [_run(r) for r in qs[offset : offset + limit]]}


@router.get("/runs/{run_id}", response={200: RunOut, **errors(403, 404)}, summary="A discovery run")
def get_run(request: HttpRequest, run_id: int):
    _reader(request)
    return _run(get_object_or_404(DiscoveryRun, pk=run_id))


# --- Acting -----------------------------------------------------------------------------------------


@router.post(
    "/cis/{ci_id}/register", response={200: CIOut, **errors(403, 404, 409, 422)}, summary="Register a device"
)
def register(request: HttpRequest, ci_id: int, payload: RegisterIn):
    data = payload.model_dump(exclude_none=True)
    expected = data.pop("expected_version", None)
    return S.register_ci(
        get_object_or_404(CI, pk=ci_id), actor=api_actor(request), expected_version=expected, **data
    )


@router.post(
    "/cis/{ci_id}/retire", response={200: CIOut, **errors(403, 404, 409, 422)}, summary="Retire a CI"
)
def retire(request: HttpRequest, ci_id: int, payload: RetireIn):
    ci = get_object_or_404(CI, pk=ci_id)
    return S.retire_ci(
        ci, actor=api_actor(request), reason=payload.reason, expected_version=payload.expected_version
    )


@router.post(
    "/drifts/{drift_id}/accept",
    response={200: CIOut, **errors(403, 404, 409, 422)},
    summary="Accept a drift: the CI takes the discovered value",
)
def accept_drift(request: HttpRequest, drift_id: int, payload: DecideIn):
    drift = get_object_or_404(DriftItem, pk=drift_id)
    return S.accept_drift(drift, actor=api_actor(request), expected_version=payload.expected_version)


@router.post(
    "/drifts/{drift_id}/reject",
    response={200: DriftOut, **errors(403, 404, 409, 422)},
    summary="Reject a drift: the CI keeps its value",
)
def reject_drift(request: HttpRequest, drift_id: int, payload: DecideIn):
    drift = get_object_or_404(DriftItem, pk=drift_id)
    return _drift(S.reject_drift(drift, actor=api_actor(request), expected_version=payload.expected_version))


@router.post(
    "/duplicates/{duplicate_id}/merge",
    response={200: CIOut, **errors(403, 404, 409, 422)},
    summary="Merge two CIs into one (returns the CI kept)",
)
def merge_duplicate(request: HttpRequest, duplicate_id: int, payload: MergeIn):
    pair = get_object_or_404(DuplicateCandidate, pk=duplicate_id)
    keep = None if payload.keep is None else get_object_or_404(CI, pk=payload.keep)
    return S.merge_duplicate(
        pair, actor=api_actor(request), keep=keep, expected_version=payload.expected_version
    )


@router.post(
    "/duplicates/{duplicate_id}/dismiss",
    response={200: DuplicateOut, **errors(403, 404, 409, 422)},
    summary="Not a duplicate: the pair is never raised again",
)
def dismiss_duplicate(request: HttpRequest, duplicate_id: int, payload: DecideIn):
    pair = get_object_or_404(DuplicateCandidate, pk=duplicate_id)
    return _pair(
        S.dismiss_duplicate(pair, actor=api_actor(request), expected_version=payload.expected_version)
    )
