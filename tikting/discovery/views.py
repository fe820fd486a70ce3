"""The CMDB health page (/discovery/): the asset data accuracy figures with their trends, the CIs
behind each figure, and one-click reconciliation actions; the discovery runs.

Every signed-in user reads (records.registry.can_view_records); managers and administrators act
(services.can_act). Actions are POSTs with CSRF; from htmx they answer with the table row they
change (errors included, as 200: htmx swaps 2xx answers only), otherwise with a redirect back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe
from django_htmx.middleware import HtmxDetails

from tikting.cmdb.models import ConfigurationItem
from tikting.core.exceptions import ConflictError, PermissionDeniedError
from tikting.core.paging import page_of
from tikting.records.registry import can_view_records

from . import services as S
from . import snapshot
from .models import AccuracySnapshot, Decision, DiscoveryRun, DriftItem, DuplicateCandidate

CI = ConfigurationItem
TREND_DAYS = 90  # the trend charts' span
COMPARE_DAYS = 30  # a card's change is against the snapshot this many days before
LISTED = 8  # rows of each action list on the health page (its drill-down lists them all)
DRIFT_STATUSES = (Decision.OPEN, Decision.ACCEPTED, Decision.REJECTED, Decision.RESOLVED)
DUPLICATE_STATUSES = (Decision.OPEN, Decision.MERGED, Decision.DISMISSED)


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def _require_view(request: HttpRequest) -> None:
    if not can_view_records(request.user):
        raise PermissionDenied("You may not read the CMDB's health.")


def _require_act(request: HttpRequest, what: str) -> None:
    if not S.can_act(request.user):
        raise PermissionDenied(f"Only managers and administrators may {what}.")


def _percent(part: int, whole: int) -> float | None:
    return 100.0 * part / whole if whole else None


# --- The health page ------------------------------------------------------------------------------


def _totals(rows: dict[str, dict[str, int]]) -> dict[str, int]:
    names = snapshot.COUNTS
    return {name: sum(counts.get(name, 0) for counts in rows.values()) for name in names}


# The health page's figures: (key, label, numerator, denominator or None for a count, what it
# counts, the drill-down figure, which way is better).
CARDS: tuple[tuple[str, str, str, str | None, str, str, str], ...] = (
    ("cmdb_coverage", "Discovery coverage", "seen", "in_scope",
     "{seen} of {in_scope} in-scope CIs seen within {days} days", "seen", "higher"),
    ("cmdb_accuracy", "Accuracy", "accurate", "seen",
     "{drifted} of {seen} seen CIs with an open drift on a key attribute", "drifted", "higher"),
    ("cmdb_unregistered", "Unregistered devices", "unregistered", None,
     "found by discovery, not in the register yet", "unregistered", "lower"),
    ("cmdb_stale", "Stale CIs", "stale", None, "in scope, not seen for {days} days", "stale", "lower"),
    ("never_seen", "Never seen", "never_seen", None, "in scope, never seen by discovery", "never_seen",
     "lower"),
    ("cmdb_duplicates", "Duplicate candidates", "duplicates", None, "pairs of CIs that look like one device",
     "duplicates", "lower"),
    ("cmdb_completeness", "Completeness", "filled", "required",
     "{filled} of {required} required attributes filled", "incomplete", "higher"),
)  # fmt: skip


def _figure(counts: dict[str, int] | None, numerator: str, denominator: str | None) -> float | int | None:
    if counts is None:
        return None
    if denominator is None:
        return counts[numerator]
    return _percent(counts[numerator], counts[denominator])


def _cards(totals: dict[str, int], before: dict[str, int] | None) -> list[dict[str, Any]]:
    """The figures with what they count, their change since COMPARE_DAYS ago, and their drill-down."""
    shown = {name: f"{value:,}" for name, value in totals.items()}
    cards = []
    for key, label, numerator, denominator, detail, figure, better in CARDS:
        value = _figure(totals, numerator, denominator)
        then = _figure(before, numerator, denominator)
        change = None if value is None or then is None else value - then
        cards.append(
            {
                "key": key,
                "label": label,
                "value": value,
                "unit": "%" if denominator else "",
                "detail": detail.format(days=settings.TIKTING_DISCOVERY_STALE_DAYS, **shown),
                "figure": figure,
                "change": change,
                "good": None if not change else (change > 0) == (better == "higher"),
            }
        )
    return cards


def _trend(today: dt.date) -> dict[str, Any]:
    """Daily totals of the last TREND_DAYS days with a snapshot, for the charts (one query)."""
    start = today - dt.timedelta(days=TREND_DAYS)
    rows = (
        AccuracySnapshot.objects.filter(day__gte=start, day__lte=today)
        .values("day")
        .annotate(**{name: Sum(name) for name in snapshot.COUNTS})
        .order_by("day")
    )
    series: dict[str, list[Any]] = {
        k: []
        for k in ("labels", "coverage", "accuracy", "completeness", "unregistered", "stale", "duplicates")
    }
    for values in rows:
        row: dict[str, Any] = dict(values)
        series["labels"].append(row["day"].isoformat())
        series["coverage"].append(_percent(row["seen"] or 0, row["in_scope"] or 0))
        series["accuracy"].append(_percent(row["accurate"] or 0, row["seen"] or 0))
        series["completeness"].append(_percent(row["filled"] or 0, row["required"] or 0))
        for name in ("unregistered", "stale", "duplicates"):
            series[name].append(row[name] or 0)
    return series


def _before(today: dt.date) -> dict[str, int] | None:
    """The totals of the last snapshot at least COMPARE_DAYS old (None: there is none)."""
    day = (
        AccuracySnapshot.objects.filter(day__lte=today - dt.timedelta(days=COMPARE_DAYS))
        .order_by("-day")
        .values_list("day", flat=True)
        .first()
    )
    if day is None:
        return None
    row = AccuracySnapshot.objects.filter(day=day).aggregate(**{name: Sum(name) for name in snapshot.COUNTS})
    return {name: int(value or 0) for name, value in row.items()}


@login_required
@require_safe
def health(request: HttpRequest) -> HttpResponse:
    _require_view(request)
    now = timezone.now()
    today = timezone.localdate(now)
    rows = snapshot.figures(now)
    totals = _totals(rows)
    classes = dict(CI.CIClass.choices)
    per_class = [
        {
            "key": key,
            "label": classes.get(key, key),
            **counts,
            "coverage": _percent(counts["seen"], counts["in_scope"]),
            "accuracy": _percent(counts["accurate"], counts["seen"]),
            "completeness": _percent(counts["filled"], counts["required"]),
        }
        for key, counts in sorted(rows.items(), key=lambda pair: str(classes.get(pair[0], pair[0])))
    ]
    context = {
        "cards": _cards(totals, _before(today)),
        "totals": totals,
        "compare_days": COMPARE_DAYS,
        "trend_days": TREND_DAYS,
        "per_class": per_class,
        "trend": _trend(today),
        "stale_days": settings.TIKTING_DISCOVERY_STALE_DAYS,
        "unregistered": snapshot.cis_behind("unregistered", now=now).order_by("-last_seen_at", "pk")[:LISTED],
        "stale": snapshot.cis_behind("stale", now=now).order_by("last_seen_at", "pk")[:LISTED],
        "drifts": _drifts().filter(status=Decision.OPEN)[:LISTED],
        "duplicates": _duplicates().filter(status=Decision.OPEN)[:LISTED],
        "counts": {
            "drifts": DriftItem.objects.filter(status=Decision.OPEN).count(),
            "duplicates": totals["duplicates"],
        },
        "runs": DiscoveryRun.objects.select_related("actor")[:5],
        "can_act": S.can_act(request.user),
        "class_choices": CI.CIClass.choices,
        "next": request.get_full_path(),
    }
    return render(request, "discovery/health.html", context)


# --- Drill-down lists -------------------------------------------------------------------------------


@login_required
@require_safe
def ci_list(request: HttpRequest) -> HttpResponse:
    """The CIs behind one figure of the health page (?figure=…&class=…), with the actions that
    figure calls for."""
    _require_view(request)
    figure = request.GET.get("figure") or "unregistered"
    if figure not in snapshot.FIGURES:
        figure = "unregistered"
    ci_class = request.GET.get("class", "")
    if ci_class not in CI.CIClass.values:
        ci_class = ""
    order = ("last_seen_at", "name", "pk") if figure == "stale" else ("name", "pk")
    qs = snapshot.cis_behind(figure, ci_class=ci_class).select_related("service", "owner").order_by(*order)
    context = {
        "figure": figure,
        "figure_label": snapshot.FIGURES[figure],
        "figures": snapshot.FIGURES,
        "ci_class": ci_class,
        "class_choices": CI.CIClass.choices,
        "can_act": S.can_act(request.user),
        "stale_days": settings.TIKTING_DISCOVERY_STALE_DAYS,
        "next": request.get_full_path(),
        **page_of(request, qs),
    }
    return render(request, "discovery/cis.html", context)


def _drifts() -> Any:
    return DriftItem.objects.select_related("ci").order_by("-found_at", "-pk")


def _duplicates() -> Any:
    return DuplicateCandidate.objects.select_related("ci", "other").order_by("-found_at", "-pk")


def _decisions(request: HttpRequest, qs: Any, statuses: tuple[str, ...], template: str) -> HttpResponse:
    """A list of drifts or duplicate candidates in one status (?status=, default open; "all")."""
    _require_view(request)
    status = request.GET.get("status") or Decision.OPEN
    if status != "all":
        qs = qs.filter(status=status if status in statuses else Decision.OPEN)
    context = {
        "status": status,
        "statuses": [*((d, Decision(d).label) for d in statuses), ("all", "All")],
        "can_act": S.can_act(request.user),
        "next": request.get_full_path(),
        **page_of(request, qs),
    }
    return render(request, template, context)


@login_required
@require_safe
def drift_list(request: HttpRequest) -> HttpResponse:
    return _decisions(request, _drifts(), DRIFT_STATUSES, "discovery/drifts.html")


@login_required
@require_safe
def duplicate_list(request: HttpRequest) -> HttpResponse:
    return _decisions(request, _duplicates(), DUPLICATE_STATUSES, "discovery/duplicates.html")


# --- Runs -------------------------------------------------------------------------------------------


@login_required
@require_safe
def run_list(request: HttpRequest) -> HttpResponse:
    _require_view(request)
    qs = DiscoveryRun.objects.select_related("actor")
    source = request.GET.get("source", "")
    if source:
        qs = qs.filter(source_name=source)
    return render(request, "discovery/runs.html", {"source": source, **page_of(request, qs)})


@login_required
@require_safe
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    _require_view(request)
    run = get_object_or_404(DiscoveryRun.objects.select_related("actor"), pk=run_id)
    return render(request, "discovery/run_detail.html", {"run": run})


# --- Actions ----------------------------------------------------------------------------------------


def _back(request: HttpRequest) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return reverse("discovery:health")


def _version(request: HttpRequest) -> int | None:
    value = request.POST.get("version", "")
    return int(value) if value.isdigit() else None


def _act(
    request: HtmxHttpRequest,
    call: Callable[[], Any],
    *,
    done: str,
    row: Callable[[], dict[str, Any]],
    template: str,
) -> HttpResponse:
    """Run a service; answer htmx with the row it changed (or its error), anyone else with a
    redirect back and a message."""
    error = ""
    try:
        call()
    except ValidationError as exc:
        error = " ".join(exc.messages)
    except ConflictError as exc:
        error = str(exc)
    except PermissionDeniedError as exc:
        raise PermissionDenied(str(exc)) from exc
    if request.htmx:
        context = {
            **row(),
            "error": error,
            "done": "" if error else done,
            "can_act": True,
            "next": _back(request),
        }
        return render(request, template, context)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, done)
    return redirect(_back(request))


@login_required
@require_POST
def register(request: HtmxHttpRequest, ci_id: int) -> HttpResponse:
    _require_act(request, "register discovered devices")
    ci = get_object_or_404(CI, pk=ci_id)
    data = {k: request.POST[k] for k in ("name", "ci_class") if request.POST.get(k)}
    return _act(
        request,
        lambda: S.register_ci(ci, actor=request.user, expected_version=_version(request), **data),
        done=f"{ci.name} registered.",
        row=lambda: {
            "ci": CI.objects.select_related("service", "owner").get(pk=ci.pk),
            "figure": "unregistered",
            "class_choices": CI.CIClass.choices,
        },  # fmt: skip
        template="discovery/partials/ci_row.html",
    )


@login_required
@require_POST
def register_selected(request: HtmxHttpRequest) -> HttpResponse:
    _require_act(request, "register discovered devices")
    pks = [int(v) for v in request.POST.getlist("ci") if v.isdigit()]
    cis = list(CI.objects.filter(pk__in=pks).order_by("pk"))
    if not cis:
        messages.error(request, "Choose the devices to register.")
        return redirect(_back(request))
    try:
        S.register_cis(cis, actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    except PermissionDeniedError as exc:
        raise PermissionDenied(str(exc)) from exc
    else:
        messages.success(request, f"{len(cis)} device{'s' if len(cis) != 1 else ''} registered.")
    return redirect(_back(request))


@login_required
@require_POST
def retire(request: HtmxHttpRequest, ci_id: int) -> HttpResponse:
    _require_act(request, "retire configuration items")
    ci = get_object_or_404(CI, pk=ci_id)
    return _act(
        request,
        lambda: S.retire_ci(
            ci, actor=request.user, expected_version=_version(request), reason=request.POST.get("reason", "")
        ),
        done=f"{ci.name} retired.",
        row=lambda: {
            "ci": CI.objects.select_related("service", "owner").get(pk=ci.pk),
            "figure": "stale",
            "class_choices": CI.CIClass.choices,
        },  # fmt: skip
        template="discovery/partials/ci_row.html",
    )


def _drift_action(request: HtmxHttpRequest, drift_id: int, verb: str) -> HttpResponse:
    _require_act(request, f"{verb} drifts")
    drift = get_object_or_404(DriftItem, pk=drift_id)
    service = S.accept_drift if verb == "accept" else S.reject_drift
    return _act(
        request,
        lambda: service(drift, actor=request.user, expected_version=_version(request)),
        done=f"Drift of {drift.ci.name}'s {drift.attribute_label} {verb}ed.",
        row=lambda: {"drift": _drifts().get(pk=drift.pk)},
        template="discovery/partials/drift_row.html",
    )


@login_required
@require_POST
def accept_drift(request: HtmxHttpRequest, drift_id: int) -> HttpResponse:
    return _drift_action(request, drift_id, "accept")


@login_required
@require_POST
def reject_drift(request: HtmxHttpRequest, drift_id: int) -> HttpResponse:
    return _drift_action(request, drift_id, "reject")


@login_required
@require_POST
def merge_duplicate(request: HtmxHttpRequest, duplicate_id: int) -> HttpResponse:
    _require_act(request, "merge configuration items")
    candidate = get_object_or_404(DuplicateCandidate.objects.select_related("ci", "other"), pk=duplicate_id)
    keep_id = request.POST.get("keep", "")
    keep = {str(candidate.ci_id): candidate.ci, str(candidate.other_id): candidate.other}.get(keep_id)
    kept = keep or candidate.ci
    return _act(
        request,
        lambda: S.merge_duplicate(
            candidate, actor=request.user, keep=keep, expected_version=_version(request)
        ),
        done=f"Merged into {kept.name}.",
        row=lambda: {"pair": _duplicates().get(pk=candidate.pk)},
        template="discovery/partials/duplicate_row.html",
    )


@login_required
@require_POST
def dismiss_duplicate(request: HtmxHttpRequest, duplicate_id: int) -> HttpResponse:
    _require_act(request, "dismiss duplicate candidates")
    candidate = get_object_or_404(DuplicateCandidate, pk=duplicate_id)
    return _act(
        request,
        lambda: S.dismiss_duplicate(candidate, actor=request.user, expected_version=_version(request)),
        done="Not a duplicate: dismissed.",
        row=lambda: {"pair": _duplicates().get(pk=candidate.pk)},
        template="discovery/partials/duplicate_row.html",
    )
