"""/search/: the results of the header's search box, ranked across every kind, with a chip per
kind to narrow to one (docs/search.md)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_safe

from tikting.records.registry import can_view_records

from . import services


@login_required
@require_safe
def results(request: HttpRequest) -> HttpResponse:
    if not can_view_records(request.user):
        raise PermissionDenied("You may not search: your account has no role that reads the register.")
    raw = request.GET.get("q", "")
    kind = request.GET.get("kind", "").strip()
    context: dict[str, object] = {
        "q": " ".join(raw.split()),
        "kind": kind,
        "errors": [],
        "results": None,
        "per_kind": services.PER_KIND,
    }
    status = 200
    if raw.strip() or kind:
        try:
            context["results"] = services.search(raw, kind=kind)
        except ValidationError as exc:
            context["errors"] = [m for messages in exc.message_dict.values() for m in messages]
            status = 400
    return render(request, "search/results.html", context, status=status)


urlpatterns = [path("", results, name="results")]
