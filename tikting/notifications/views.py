"""The bell, the notifications list (mark read, mark all read), preferences, follow buttons, the
@mention autocomplete, and the webhooks pages (improvement managers and administrators)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from tikting.accounts.models import User
from tikting.core.exceptions import ConflictError, PermissionDeniedError
from tikting.core.paging import page_of
from tikting.improvement.models import Item
from tikting.records import registry as R

from . import services
from .forms import PreferencesForm, WebhookForm
from .models import Notification, Webhook

N = Notification


def _safe_next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return fallback


# --- The bell and the list ------------------------------------------------------------------------


@login_required
@require_safe
def bell(request: HttpRequest) -> HttpResponse:
    """The header's bell (loaded by htmx after the page, and every minute): the unread count."""
    return render(request, "notifications/_bell.html", {"unread": services.unread_count(request.user)})


@login_required
@require_safe
def notification_list(request: HttpRequest) -> HttpResponse:
    show = request.GET.get("show", "all")
    qs = N.objects.filter(recipient_id=request.user.pk).select_related("actor")
    if show == "unread":
        qs = qs.filter(read_at=None)
    context = {
        "show": show,
        "unread": services.unread_count(request.user),
        **page_of(request, qs),
    }
    return render(request, "notifications/list.html", context)


@login_required
@require_POST
def mark_read(request: HttpRequest, notification_id: int) -> HttpResponse:
    """Mark one notification read (read=0: unread again); with `next`, go there (opening it)."""
    notification = get_object_or_404(N, pk=notification_id, recipient=request.user)
    services.mark_read(notification, actor=request.user, read=request.POST.get("read", "1") != "0")
    if getattr(request, "htmx", False) and not request.POST.get("next"):
        return render(
            request,
            "notifications/_row.html",
            {"n": notification, "oob_bell": True, "unread": services.unread_count(request.user)},
        )
    return redirect(_safe_next(request, reverse("notifications:list")))


@login_required
@require_POST
def mark_all_read(request: HttpRequest) -> HttpResponse:
    count = services.mark_all_read(actor=request.user)
    messages.success(request, f"{count} notification{'s' if count != 1 else ''} marked read.")
    return redirect(_safe_next(request, reverse("notifications:list")))


# --- Preferences --------------------------------------------------------------------------------


@login_required
def preferences(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    status = 200
    if request.method == "POST":
        form = PreferencesForm(request.POST)
        if form.is_valid():
            services.set_preferences(
                actor=user, channels=form.channels(), daily_digest=form.cleaned_data["daily_digest"]
            )
            messages.success(request, "Your notification preferences are saved.")
            return redirect("notifications:preferences")
        status = 400
    else:
        channels, digest = services.preferences_of(user)
        form = PreferencesForm(
            initial={"daily_digest": digest, **{f"kind_{k}": v for k, v in channels.items()}}
        )
    return render(
        request,
        "notifications/preferences.html",
        {"form": form, "has_email": bool(user.email)},
        status=status,
    )


# --- Following ----------------------------------------------------------------------------------


def _follow(request: HttpRequest, target: models.Model) -> HttpResponse:
    wanted = request.POST.get("follow")
    if wanted not in {"0", "1"}:
        return HttpResponse("Say follow=1 or follow=0.", status=400, content_type="text/plain")
    try:
        services.follow(target, actor=request.user, on=wanted == "1")
    except PermissionDeniedError as exc:
        raise PermissionDenied(str(exc)) from exc
    if getattr(request, "htmx", False):
        return HttpResponse(follow_button(request, target))
    messages.success(request, "You follow it now." if wanted == "1" else "You no longer follow it.")
    return redirect(services.url_of(target) or "/")


@login_required
@require_POST
def follow_item(request: HttpRequest, item_id: int) -> HttpResponse:
    return _follow(request, get_object_or_404(Item, pk=item_id))


@login_required
@require_POST
def follow_record(request: HttpRequest, slug: str, record_id: int) -> HttpResponse:
    try:
        kind = R.get_kind(slug)
    except (KeyError, ValidationError) as exc:
        raise Http404("No such record kind.") from exc
    return _follow(request, get_object_or_404(kind.model, pk=record_id))


def follow_url(target: models.Model) -> str:
    if isinstance(target, Item):
        return reverse("notifications:follow_item", args=[target.pk])
    kind = R.kind_for(target)
    if kind is None:
        return ""
    return reverse("notifications:follow_record", args=[kind.slug, target.pk])


def follow_button(request: HttpRequest, target: models.Model) -> str:
    url = follow_url(target)
    if not url or not services.can_follow(request.user, target):
        return ""
    context = {"url": url, "following": services.is_following(request.user, target)}
    return render_to_string("notifications/_follow.html", context, request=request)


def follow_slot(request: HttpRequest, obj: Any) -> str:
    """core.slots "object-actions": the Follow button on an item's and a record's page."""
    return follow_button(request, obj) if isinstance(obj, models.Model) else ""


# --- @mention autocomplete --------------------------------------------------------------------------


@login_required
@require_safe
def people(request: HttpRequest) -> JsonResponse:
    """Active users whose user name or name starts with `q` (at most 8), for `@` in a textarea."""
    q = (request.GET.get("q") or "").strip().lstrip("@")[:50]
    if not q:
        return JsonResponse({"people": []})
    found = (
        User.objects.filter(is_active=True)
        .filter(Q(username__istartswith=q) | Q(first_name__istartswith=q) | Q(last_name__istartswith=q))
        .order_by("username")[:8]
    )
    return JsonResponse(
        {"people": [{"username": u.username, "name": u.get_full_name() or u.username} for u in found]}
    )


# --- Webhooks -------------------------------------------------------------------------------------


def _require_manager(request: HttpRequest) -> None:
    if not services.can_manage_webhooks(request.user):
        raise PermissionDenied("Webhooks are for improvement managers and administrators.")


def _form_errors(form: WebhookForm, exc: ValidationError) -> None:
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


@login_required
def webhook_list(request: HttpRequest) -> HttpResponse:
    _require_manager(request)
    status = 200
    if request.method == "POST":
        form = WebhookForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                webhook = services.create_webhook(
                    actor=request.user,
                    name=data["name"],
                    url=data["url"],
                    kinds=data["kinds"],
                    active=data["active"],
                )
            except ValidationError as exc:
                _form_errors(form, exc)
            else:
                messages.success(request, f"Webhook “{webhook}” created: its secret is on its page.")
                return redirect("notifications:webhook_detail", webhook_id=webhook.pk)
        status = 400
    else:
        form = WebhookForm(initial={"active": True})
    hooks = Webhook.objects.annotate(delivered=models.Count("deliveries"))
    return render(
        request, "notifications/webhook_list.html", {"form": form, "webhooks": hooks}, status=status
    )


@login_required
def webhook_detail(request: HttpRequest, webhook_id: int) -> HttpResponse:
    _require_manager(request)
    webhook = get_object_or_404(Webhook, pk=webhook_id)
    status = 200
    if request.method == "POST":
        form = WebhookForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                webhook = services.update_webhook(
                    webhook,
                    actor=request.user,
                    expected_version=data.get("version"),
                    name=data["name"],
                    url=data["url"],
                    kinds=data["kinds"],
                    active=data["active"],
                )
            except ConflictError:
                form.add_error(
                    None, "Somebody changed this webhook since you opened it: reload and try again."
                )
            except ValidationError as exc:
                _form_errors(form, exc)
            else:
                messages.success(request, f"Webhook “{webhook}” saved.")
                return redirect("notifications:webhook_detail", webhook_id=webhook.pk)
        status = 400
    else:
        form = WebhookForm.for_webhook(webhook)
    deliveries = webhook.deliveries.prefetch_related("tries")[:50]
    return render(
        request,
        "notifications/webhook_detail.html",
        {"webhook": webhook, "form": form, "deliveries": deliveries},
        status=status,
    )


@login_required
@require_POST
def webhook_delete(request: HttpRequest, webhook_id: int) -> HttpResponse:
    _require_manager(request)
    webhook = get_object_or_404(Webhook, pk=webhook_id)
    services.delete_webhook(webhook, actor=request.user)
    messages.success(request, f"Webhook “{webhook.name}” deleted.")
    return redirect("notifications:webhooks")
