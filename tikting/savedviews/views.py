"""Saved views in the pages: save the list as it is filtered, open one, remove one's own."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import path
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from tikting.core.exceptions import PermissionDeniedError

from . import registry
from . import services as S

app_name = "savedviews"


def _back(request: HttpRequest) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=False):
        return target
    saved = registry.get(request.POST.get("list_key", ""))
    return str(saved.url) if saved else "/register/"


@login_required
@require_POST
def create(request: HttpRequest) -> HttpResponse:
    try:
        view = S.create_view(
            actor=request.user,
            name=request.POST.get("name", ""),
            list_key=request.POST.get("list_key", ""),
            query=request.POST.get("query", ""),
            shared=request.POST.get("shared") in {"on", "1", "true"},
        )
    except PermissionDeniedError as exc:
        raise PermissionDenied(str(exc)) from exc
    except ValidationError as exc:
        for field, msgs in exc.message_dict.items():
            for msg in msgs:
                messages.error(request, f"The view was not saved: {field.replace('_', ' ')}: {msg}")
        return redirect(_back(request))
    messages.success(
        request, f"View “{view.name}” saved{' and shared with ' + str(view.team) if view.team else ''}."
    )
    return redirect(S.url_of(view) + ("&" if view.query else "?") + f"view={view.pk}")


@login_required
@require_safe
def open_view(request: HttpRequest, view_id: int) -> HttpResponse:
    view = get_object_or_404(S.visible_to(request.user), pk=view_id)
    return redirect(S.url_of(view) + ("&" if view.query else "?") + f"view={view.pk}")


@login_required
@require_POST
def delete(request: HttpRequest, view_id: int) -> HttpResponse:
    view = S.visible_to(request.user).filter(pk=view_id).first()
    if view is None:
        raise Http404("No such view.")
    try:
        S.delete_view(view, actor=request.user)
    except PermissionDeniedError as exc:
        raise PermissionDenied(str(exc)) from exc
    messages.success(request, f"View “{view.name}” removed.")
    return redirect(_back(request))


urlpatterns = [
    path("", create, name="create"),
    path("<int:view_id>/", open_view, name="open"),
    path("<int:view_id>/delete/", delete, name="delete"),
]
