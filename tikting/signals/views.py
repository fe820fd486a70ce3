"""Intake pages: the queue, a candidate with its evidence and triage forms, bulk triage, the detector
runs, and the manual channels (post-incident review findings, audit findings, staff feedback).

Every signed-in user reads the queue and gives staff feedback; improvement managers and
administrators triage and run detectors (permissions.py). Views parse input, call a service, render.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ImproperlyConfigured, PermissionDenied, ValidationError
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails

from tikting.core import audit
from tikting.core.exceptions import ConflictError, PermissionDeniedError
from tikting.core.paging import page_of
from tikting.improvement.choices import Quadrant, SourceChannel, quadrant_for
from tikting.improvement.models import Item
from tikting.records.registry import get_kind, kind_for

from . import permissions as P
from . import registry
from . import services as S
from .filtersets import filter_candidates
from .forms import (
    STATUS_FILTERS,
    AcceptForm,
    BulkForm,
    DeferForm,
    DismissForm,
    MergeForm,
    QueueFilterForm,
    SubmitForm,
)
from .models import OPEN_STATUSES, Candidate, CandidateStatus, DetectorRun


class HtmxHttpRequest(HttpRequest):
    """A request as django_htmx's middleware (settings.MIDDLEWARE) leaves it: with `htmx`."""

    htmx: HtmxDetails


EVIDENCE_SHOWN = 200  # evidence rows listed on a candidate page (the count says how many in all)


def _require(allowed: bool, what: str) -> None:
    if not allowed:
        raise PermissionDenied(f"You may not {what}.")


def _put_errors(form: Any, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for name, errors in exc.message_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


# --- The queue ------------------------------------------------------------------------------------


@login_required
@require_safe
def queue(request: HtmxHttpRequest) -> HttpResponse:
    _require(P.can_view(request.user), "read the intake queue")
    form = QueueFilterForm(request.GET or None)
    data = form.cleaned_data if form.is_bound and form.is_valid() else {}
    qs = filter_candidates(
        Candidate.objects.select_related("service").annotate(evidence_count=Count("evidence")), data
    )
    paging = page_of(request, qs)
    counts = dict(Candidate.objects.values_list("status").annotate(n=Count("id")).order_by())
    counts["open"] = sum(counts.get(s, 0) for s in OPEN_STATUSES)
    counts["all"] = sum(counts.get(s, 0) for s in CandidateStatus.values)
    context = {
        **paging,
        "form": form,
        "data": data,
        "status_options": [(v, label, counts.get(v, 0)) for v, label in STATUS_FILTERS],
        "detectors": sorted(set(Candidate.objects.exclude(detector="").values_list("detector", flat=True))),
        "can_triage": P.can_triage(request.user),
        "bulk_form": BulkForm(),
    }
    template = (
        "signals/partials/queue_table.html"
        if request.htmx and not request.htmx.boosted
        else "signals/queue.html"
    )
    return render(request, template, context)


@login_required
@require_POST
def bulk_triage(request: HttpRequest) -> HttpResponse:
    _require(P.can_triage(request.user), "triage candidates")
    form = BulkForm(request.POST)
    ids = [int(v) for v in request.POST.getlist("ids") if v.isdigit()]
    back = reverse("signals:queue") + (f"?{request.POST['query']}" if request.POST.get("query") else "")
    if not form.is_valid():
        for name, errors in form.errors.items():
            messages.error(request, f"{name}: {' '.join(str(e) for e in errors)}")
        return redirect(back)
    data = form.cleaned_data
    try:
        result = S.triage_bulk(
            ids,
            actor=request.user,
            action=data["action"],
            reason=data.get("reason", ""),
            until=data.get("until"),
            item=data.get("item"),
        )
    except PermissionDeniedError as exc:
        raise PermissionDenied(str(exc)) from exc
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(back)
    if result.ok:
        messages.success(request, f"{len(result.done)} candidate(s): {data['action']} done.")
    else:
        messages.error(
            request,
            "Nothing was changed (bulk triage is all or nothing): "
            + "; ".join(f"{e['ref'] or e['id']}: {e['message']}" for e in result.errors),
        )
    return redirect(back)


# --- A candidate ----------------------------------------------------------------------------------


def _forms(candidate: Candidate, bound: dict[str, Any] | None = None) -> dict[str, Any]:
    version = {"expected_version": candidate.version}
    forms = {
        "accept": AcceptForm(
            initial={
                **version,
                "title": candidate.title,
                "description": S.describe(candidate),
                "practice": candidate.practice,
                "service": candidate.service_id,
                "impact": candidate.impact,
                "effort": candidate.effort,
            }
        ),
        "merge": MergeForm(initial=version),
        "defer": DeferForm(initial=version),
        "dismiss": DismissForm(initial=version),
    }
    forms.update(bound or {})
    return forms


def _history(candidate: Candidate, viewer: Any) -> list[dict[str, Any]]:
    """The candidate's audit rows; an anonymous reporter's own rows show no name to peers."""
    hide = not P.can_see_reporter(viewer, candidate)
    rows = []
    for entry in audit.history_for(candidate)[:100]:
        actor = entry.actor
        if hide and actor is not None and actor.pk == candidate.reporter_id:
            actor = None
        changes = {k: v for k, v in (entry.changes or {}).items() if not (hide and k == "reporter")}
        rows.append(
            {
                "entry": entry,
                "actor": actor,
                "hidden": hide and entry.actor_id == candidate.reporter_id,
                "changes": changes,
            }
        )
    return rows


def _candidate_context(
    request: HttpRequest, candidate: Candidate, bound: dict[str, Any] | None = None
) -> dict[str, Any]:
    evidence = list(candidate.evidence.order_by("id")[:EVIDENCE_SHOWN])
    regrowth = S.regrowth()
    quadrant = quadrant_for(candidate.impact, candidate.effort)
    return {
        "c": candidate,
        "evidence": evidence,
        "evidence_count": candidate.evidence.count(),
        "figures": sorted((candidate.figures or {}).items()),
        "quadrant": quadrant,
        "quadrant_label": Quadrant(quadrant).label,
        "regrowth": regrowth,
        "comes_back_above": candidate.comes_back_above(regrowth),
        "would_come_back_above": candidate.magnitude * (1 + regrowth),
        "see_reporter": P.can_see_reporter(request.user, candidate),
        "can_triage": P.can_triage(request.user) and candidate.is_open,
        "forms": _forms(candidate, bound),
        "triage_actions": TRIAGE_LABELS,
        "open_action": next(iter(bound)) if bound else "accept",
        "history": _history(candidate, request.user),
        "recent_items": Item.objects.open().filter(service=candidate.service_id).order_by("-id")[:30]
        if candidate.service_id
        else Item.objects.open().order_by("-id")[:30],
    }


@login_required
@require_safe
def candidate_detail(request: HttpRequest, candidate_id: int) -> HttpResponse:
    _require(P.can_view(request.user), "read the intake queue")
    candidate = get_object_or_404(
        Candidate.objects.select_related("service", "item", "reporter", "triaged_by", "previous", "run"),
        pk=candidate_id,
    )
    return render(request, "signals/candidate.html", _candidate_context(request, candidate))


TRIAGE_LABELS = [
    ("accept", "Accept into the register"),
    ("merge", "Merge into an existing item"),
    ("defer", "Defer"),
    ("dismiss", "Dismiss"),
]
TRIAGE_FORMS = {"accept": AcceptForm, "merge": MergeForm, "defer": DeferForm, "dismiss": DismissForm}


def _triage(request: HtmxHttpRequest, candidate_id: int, action: str) -> HttpResponse:
    _require(P.can_triage(request.user), "triage candidates")
    candidate = get_object_or_404(Candidate, pk=candidate_id)
    form = TRIAGE_FORMS[action](request.POST)
    target: str = ""
    if form.is_valid():
        data = dict(form.cleaned_data)
        version = data.pop("expected_version", None)
        try:
            if action == "accept":
                item = S.accept_candidate(candidate, actor=request.user, expected_version=version, **data)
                messages.success(
                    request, f"{candidate.ref} is in the register as {item.ref}: assess it there."
                )
                target = item.get_absolute_url()
            elif action == "merge":
                S.merge_candidate(
                    candidate,
                    actor=request.user,
                    item=data["item"],
                    note=data["reason"],
                    expected_version=version,
                )
                messages.success(request, f"{candidate.ref} merged into {data['item'].ref}.")
            elif action == "defer":
                S.defer_candidate(
                    candidate,
                    actor=request.user,
                    until=data["until"],
                    reason=data["reason"],
                    expected_version=version,
                )
                messages.success(request, f"{candidate.ref} deferred until {data['until']}.")
            else:
                S.dismiss_candidate(
                    candidate, actor=request.user, reason=data["reason"], expected_version=version
                )
                messages.success(request, f"{candidate.ref} dismissed.")
        except PermissionDeniedError as exc:
            raise PermissionDenied(str(exc)) from exc
        except ConflictError as exc:
            form.add_error(None, str(exc))
        except ValidationError as exc:
            _put_errors(form, exc)
    if not form.errors:
        target = target or candidate.get_absolute_url()
        return HttpResponseClientRedirect(target) if request.htmx else redirect(target)
    if request.htmx:
        # htmx swaps 2xx answers only: the form with its errors comes back as 200.
        return render(
            request, "signals/partials/triage_form.html", {"c": candidate, "action": action, "form": form}
        )
    candidate.refresh_from_db()
    return render(
        request, "signals/candidate.html", _candidate_context(request, candidate, {action: form}), status=400
    )


@login_required
@require_POST
def candidate_triage(request: HtmxHttpRequest, candidate_id: int, action: str) -> HttpResponse:
    """POST of a triage form: `action` (accept, merge, defer, dismiss) comes from the URL."""
    return _triage(request, candidate_id, action)


# --- Detector runs --------------------------------------------------------------------------------


@login_required
@require_safe
def runs(request: HttpRequest) -> HttpResponse:
    _require(P.can_view(request.user), "read the detector runs")
    try:
        detectors, problem = list(registry.detectors().values()), ""
    except ImproperlyConfigured as exc:
        detectors, problem = [], str(exc)
    qs = DetectorRun.objects.select_related("actor").order_by("-started_at", "-id")
    if request.GET.get("detector"):
        qs = qs.filter(detector=request.GET["detector"])
    return render(
        request,
        "signals/runs.html",
        {
            **page_of(request, qs),
            "detectors": detectors,
            "problem": problem,
            "can_run": P.can_triage(request.user),
            "window_days": settings.TIKTING_SIGNALS_WINDOW_DAYS,
            "regrowth": S.regrowth(),
        },
    )


# --- Manual channels ------------------------------------------------------------------------------


def _record_from(value: str) -> Any:
    """The record a `kind:pk` reference names (404 when there is none)."""
    slug, _, pk = (value or "").partition(":")
    if not pk.isdigit():
        raise Http404("No such record.")
    try:
        kind = get_kind(slug)
    except ValidationError as exc:
        raise Http404("No such record kind.") from exc
    return get_object_or_404(kind.model._default_manager.all(), pk=int(pk))


def _submit(request: HttpRequest, channel: str) -> HttpResponse:
    spec = S.manual_channel(channel)
    _require(P.can_report(request.user, spec.role), f"submit {spec.label.lower()}")
    ref = request.POST.get("record") or request.GET.get("record") or ""
    record = _record_from(ref) if ref else None
    form = SubmitForm(
        request.POST if request.method == "POST" else None,
        anonymous_allowed=spec.anonymous_allowed,
        initial={"service": getattr(record, "service_id", None)},
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            candidate = S.submit_candidate(
                actor=request.user,
                channel=channel,
                title=data["title"],
                description=data["description"],
                record=record,
                service=data["service"],
                anonymous=data.get("anonymous", False),
            )
        except PermissionDeniedError as exc:
            raise PermissionDenied(str(exc)) from exc
        except ValidationError as exc:
            _put_errors(form, exc)
        else:
            messages.success(
                request,
                f"Thank you: {candidate.ref} is in the intake queue, where an improvement manager "
                "triages it.",
            )
            return redirect(candidate)
    kind = kind_for(record) if record is not None else None
    return render(
        request,
        "signals/submit.html",
        {
            "form": form,
            "spec": spec,
            "record": record,
            "record_ref": ref,
            "record_kind": kind,
            "record_key": S.record_key(record) if record is not None else "",
            "record_title": kind.title_of(record) if record is not None and kind is not None else "",
        },
        status=400 if form.errors else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def submit_feedback(request: HttpRequest) -> HttpResponse:
    return _submit(request, SourceChannel.STAFF_FEEDBACK)


@login_required
@require_http_methods(["GET", "POST"])
def submit_pir_finding(request: HttpRequest) -> HttpResponse:
    return _submit(request, SourceChannel.POST_INCIDENT_REVIEW)


@login_required
@require_http_methods(["GET", "POST"])
def submit_audit_finding(request: HttpRequest) -> HttpResponse:
    return _submit(request, SourceChannel.AUDIT_FINDING)


urlpatterns = [
    path("", queue, name="queue"),
    path("bulk/", bulk_triage, name="bulk"),
    path("runs/", runs, name="runs"),
    path("feedback/", submit_feedback, name="feedback"),
    path("findings/post-incident-review/", submit_pir_finding, name="pir_finding"),
    path("findings/audit/", submit_audit_finding, name="audit_finding"),
    path("<int:candidate_id>/", candidate_detail, name="candidate"),
    path("<int:candidate_id>/accept/", candidate_triage, {"action": "accept"}, name="accept"),
    path("<int:candidate_id>/merge/", candidate_triage, {"action": "merge"}, name="merge"),
    path("<int:candidate_id>/defer/", candidate_triage, {"action": "defer"}, name="defer"),
    path("<int:candidate_id>/dismiss/", candidate_triage, {"action": "dismiss"}, name="dismiss"),
]
