"""/imports/: import records from a file in the browser: upload, read the dry run's report (the
errors by line), import with a progress bar, read the result (docs/import-records.md)."""

from __future__ import annotations

from typing import Any, cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from tikting.accounts.models import Role, User
from tikting.core.exceptions import PermissionDeniedError
from tikting.records.registry import KINDS

from . import uploads
from .models import Upload

RECENT = 20
ERRORS_SHOWN = 200  # errors listed on the page; the report keeps up to ImportReport.MAX_ERRORS


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def upload_list(request: HttpRequest) -> HttpResponse:
    kinds = uploads.kinds_for(request.user)
    if not kinds:
        raise PermissionDenied("You may not import records: your role reads them only.")
    errors: dict[str, list[str]] = {}
    chosen = request.GET.get("kind", "")
    if request.method == "POST":
        chosen = request.POST.get("kind", "")
        file = request.FILES.get("file")
        try:
            if file is None:
                raise ValidationError({"file": "Choose a file to upload (CSV, JSON or JSON Lines)."})
            upload = uploads.create_upload(chosen, file, actor=request.user)
        except PermissionDeniedError as exc:
            raise PermissionDenied(str(exc)) from exc
        except ValidationError as exc:
            errors = exc.message_dict
        else:
            return redirect(upload)
    user = cast(User, request.user)  # signed in (login_required)
    recent = Upload.objects.select_related("created_by")
    if not user.has_role(Role.MANAGER):
        recent = recent.filter(created_by=user)
    return render(
        request,
        "imports/list.html",
        {
            "kinds": kinds,
            "chosen": chosen,
            "errors": errors,
            "uploads": recent[:RECENT],
            "max_mb": settings.TIKTING_MAX_UPLOAD_BYTES // (1024 * 1024),
        },
        status=400 if errors else 200,
    )


def _visible(request: HttpRequest, pk: int) -> Upload:
    if not uploads.kinds_for(request.user):
        raise PermissionDenied("You may not import records: your role reads them only.")
    upload = get_object_or_404(Upload.objects.select_related("created_by"), pk=pk)
    if not uploads.can_see(request.user, upload):
        raise PermissionDenied("This import is someone else's: only they and improvement managers see it.")
    return upload


def _summary(report: dict[str, Any] | None) -> dict[str, Any] | None:
    if not report:
        return None
    counts = [
        {"kind": KINDS[k].label_plural if k in KINDS else k, "slug": k, **v}
        for k, v in report["counts"].items()
    ]
    return {
        **report,
        "rows": counts,
        "errors": report["errors"][:ERRORS_SHOWN],
        "errors_hidden": report["error_count"] - min(len(report["errors"]), ERRORS_SHOWN),
        "to_write": sum(c["created"] + c["updated"] for c in counts),
    }


@login_required
@require_safe
def upload_detail(request: HttpRequest, pk: int) -> HttpResponse:
    upload = _visible(request, pk)
    kind = KINDS.get(upload.kind)
    context = {
        "upload": upload,
        "kind": kind,
        "check": _summary(upload.check_report),
        "result": _summary(upload.report),
        "can_act": uploads.can_act(request.user, upload),
        "list_url": reverse("records:list", args=[upload.kind]) if kind else "",
    }
    template = "imports/_status.html" if request.headers.get("HX-Request") else "imports/detail.html"
    return render(request, template, context)


@login_required
@require_POST
def upload_run(request: HttpRequest, pk: int) -> HttpResponse:
    upload = _visible(request, pk)
    try:
        uploads.start_import(upload, actor=request.user)
    except PermissionDeniedError as exc:
        raise PermissionDenied(str(exc)) from exc
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect(upload)


@login_required
@require_POST
def upload_discard(request: HttpRequest, pk: int) -> HttpResponse:
    upload = _visible(request, pk)
    try:
        uploads.discard(upload, actor=request.user)
    except PermissionDeniedError as exc:
        raise PermissionDenied(str(exc)) from exc
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(upload)
    messages.info(request, f"{upload.file_name} discarded: nothing was imported.")
    return redirect("imports:list")


urlpatterns = [
    path("", upload_list, name="list"),
    path("<int:pk>/", upload_detail, name="detail"),
    path("<int:pk>/import/", upload_run, name="run"),
    path("<int:pk>/discard/", upload_discard, name="discard"),
]
