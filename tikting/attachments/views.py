"""Attachment pages: upload (drag and drop or a file input), download, remove.

The panel (templates/attachments/panel.html, `{% attachments_panel obj %}`) posts here; an htmx or
script request gets the panel back, a plain form post is sent back to the page it came from.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from tikting.accounts.models import Role
from tikting.core.exceptions import PermissionDeniedError

from . import registry
from . import services as S
from .models import Attachment
from .serving import file_response
from .templatetags.attachments import panel_context

app_name = "attachments"


def _back(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=False):
        return target
    return fallback or "/"


def _panel(request: HttpRequest, obj, *, errors: list[str], status: int = 200) -> HttpResponse:
    context = panel_context(request.user, obj, next_url=_back(request, ""), errors=errors)
    return render(request, "attachments/panel.html", context, status=status)


def _messages(exc: ValidationError) -> list[str]:
    return (
        [m for msgs in exc.message_dict.values() for m in msgs]
        if hasattr(exc, "error_dict")
        else exc.messages
    )


@login_required
@require_POST
def upload(request: HttpRequest) -> HttpResponse:
    if not request.user.has_role(Role.CONTRIBUTOR):  # type: ignore[union-attr]
        raise PermissionDenied("You may not attach files: your role is read-only.")
    try:
        obj, target = registry.resolve(request.POST.get("target", ""))
    except ValidationError as exc:
        raise Http404(" ".join(_messages(exc))) from exc
    if not target.can_view(request.user, obj):
        raise Http404("No such record.")
    if not S.can_attach(request.user, obj):
        raise PermissionDenied(f"You may not attach files to this {target.label}.")
    uploads = request.FILES.getlist("file")
    errors: list[str] = []
    added = 0
    if not uploads:
        errors.append("Choose a file to attach.")
    for upload in uploads:
        try:
            S.attach(obj, upload, actor=request.user)
            added += 1
        except PermissionDeniedError as exc:
            raise PermissionDenied(str(exc)) from exc
        except ValidationError as exc:
            errors.extend(_messages(exc))
    status = 400 if errors and not added else 200
    if request.headers.get("HX-Request") or request.headers.get("X-Requested-With") == "fetch":
        return _panel(request, obj, errors=errors, status=status)
    for error in errors:
        messages.error(request, error)
    if added:
        messages.success(request, f"{added} file{'s' if added != 1 else ''} attached.")
    return redirect(_back(request, target.url(obj)))


def _visible(request: HttpRequest, attachment_id: int) -> Attachment:
    attachment = get_object_or_404(Attachment.objects.select_related("content_type"), pk=attachment_id)
    obj = attachment.target
    if obj is None or not S.can_view(request.user, obj):
        raise Http404("No such file.")  # who may not see the record learns nothing of its files
    return attachment


@login_required
@require_safe
def download(request: HttpRequest, attachment_id: int) -> FileResponse:
    return file_response(_visible(request, attachment_id))


@login_required
@require_POST
def delete(request: HttpRequest, attachment_id: int) -> HttpResponse:
    attachment = _visible(request, attachment_id)
    obj = attachment.target
    target = registry.target_for(obj) if obj is not None else None
    try:
        S.remove(attachment, actor=request.user)
    except PermissionDeniedError as exc:
        raise PermissionDenied(str(exc)) from exc
    if request.headers.get("HX-Request") or request.headers.get("X-Requested-With") == "fetch":
        return _panel(request, obj, errors=[])
    messages.success(request, f"{attachment.name} removed.")
    return redirect(_back(request, target.url(obj) if target else "/"))


urlpatterns = [
    path("", upload, name="upload"),
    path("<int:attachment_id>/", download, name="download"),
    path("<int:attachment_id>/delete/", delete, name="delete"),
]
