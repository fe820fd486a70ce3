"""Notifications and webhooks over HTTP (tikting/api.py mounts them):

- /api/notifications/: your own notifications (every role, viewers included: reading them and
  marking them read changes nothing of the register), your preferences;
- /api/webhooks/: subscriptions, their delivery log (improvement managers and administrators).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Field, Router, Schema, Status

from tikting.accounts.models import User
from tikting.accounts.requests import api_actor
from tikting.core.api import StrictBody, errors
from tikting.core.events import Kind
from tikting.core.exceptions import PermissionDeniedError

from . import services
from .models import Channel, Delivery, Notification, Webhook

router = Router(tags=["notifications"])
webhook_router = Router(tags=["webhooks"])
MAX_PAGE = 200


def _me(request: HttpRequest) -> User:
    actor = api_actor(request)
    if not isinstance(actor, User):
        raise PermissionDeniedError("Sign in to read your notifications.")
    return actor


class NotificationOut(Schema):
    id: int
    kind: str
    reason: str
    summary: str
    excerpt: str
    target_label: str
    url: str
    actor: str | None
    created_at: dt.datetime
    read_at: dt.datetime | None
    email: str = Field(description="'' (not e-mailed), pending, digest, sent or failed")

    @staticmethod
    def resolve_actor(obj: Notification) -> str | None:
        return obj.actor.username if obj.actor else None


class NotificationPage(Schema):
    count: int
    unread: int
    results: list[NotificationOut]


@router.get("", response={200: NotificationPage, **errors()}, summary="Your notifications, newest first")
def list_notifications(request: HttpRequest, unread: bool = False, limit: int = 50, offset: int = 0) -> Any:
    user = _me(request)
    qs = Notification.objects.filter(recipient=user).select_related("actor")
    if unread:
        qs = qs.filter(read_at=None)
    limit = max(1, min(limit, MAX_PAGE))
    return {
        "count": qs.count(),
        "unread": services.unread_count(user),
        "results": list(qs[max(offset, 0) : max(offset, 0) + limit]),
    }


class ReadIn(StrictBody):
    read: bool = True


@router.post(
    "/{notification_id}/read",
    response={200: NotificationOut, **errors(404)},
    summary="Mark one read (or unread)",
)
def read_notification(request: HttpRequest, notification_id: int, payload: ReadIn | None = None) -> Any:
    user = _me(request)
    notification = get_object_or_404(Notification, pk=notification_id, recipient=user)
    return services.mark_read(notification, actor=user, read=payload.read if payload else True)


class Count(Schema):
    count: int


@router.post("/read-all", response={200: Count, **errors()}, summary="Mark all yours read")
def read_all(request: HttpRequest) -> Any:
    return {"count": services.mark_all_read(actor=_me(request))}


class PreferencesOut(Schema):
    channels: dict[str, str] = Field(description="Event kind → app, email or off")
    daily_digest: bool


class PreferencesIn(StrictBody):
    channels: dict[str, str] = Field(default_factory=dict, description="Event kind → app, email or off")
    daily_digest: bool | None = None


@router.get("/preferences", response={200: PreferencesOut, **errors()}, summary="Your preferences")
def get_preferences(request: HttpRequest) -> Any:
    channels, digest = services.preferences_of(_me(request))
    return {"channels": channels, "daily_digest": digest}


@router.put("/preferences", response={200: PreferencesOut, **errors(422)}, summary="Set your preferences")
def put_preferences(request: HttpRequest, payload: PreferencesIn) -> Any:
    user = _me(request)
    services.set_preferences(actor=user, channels=payload.channels, daily_digest=payload.daily_digest)
    channels, digest = services.preferences_of(user)
    return {"channels": channels, "daily_digest": digest}


# --- Webhooks -------------------------------------------------------------------------------------


def _manager(request: HttpRequest) -> Any:
    actor = api_actor(request)
    if not services.can_manage_webhooks(actor):
        raise PermissionDeniedError(
            "You may not manage webhooks: improvement managers and administrators do."
        )
    return actor


class WebhookOut(Schema):
    id: int
    name: str
    url: str
    kinds: list[str]
    active: bool
    failures_in_a_row: int
    disabled_reason: str
    secret: str = Field(description="The HMAC-SHA256 key of X-Tikting-Signature")
    version: int
    created_at: dt.datetime


class WebhookIn(StrictBody):
    name: str
    url: str
    kinds: list[str] = Field(description=f"Event kinds: {', '.join(Kind.values)}")
    active: bool = True


class WebhookPatch(StrictBody):
    name: str | None = None
    url: str | None = None
    kinds: list[str] | None = None
    active: bool | None = None
    expected_version: int | None = None


class AttemptOut(Schema):
    at: dt.datetime
    status_code: int | None
    error: str
    duration_ms: int


class DeliveryOut(Schema):
    id: int
    kind: str
    status: str
    attempts: int
    created_at: dt.datetime
    finished_at: dt.datetime | None
    next_attempt_at: dt.datetime | None
    tries: list[AttemptOut]

    @staticmethod
    def resolve_tries(obj: Delivery) -> list[Any]:
        return list(obj.tries.all())


@webhook_router.get("", response={200: list[WebhookOut], **errors(403)}, summary="Webhooks")
def list_webhooks(request: HttpRequest) -> Any:
    _manager(request)
    return list(Webhook.objects.all())


@webhook_router.post("", response={201: WebhookOut, **errors(403, 422)}, summary="Create a webhook")
def create_webhook(request: HttpRequest, payload: WebhookIn) -> Any:
    actor = _manager(request)
    webhook = services.create_webhook(actor=actor, **payload.dict())
    return Status(201, webhook)


@webhook_router.get("/{webhook_id}", response={200: WebhookOut, **errors(403, 404)}, summary="A webhook")
def get_webhook(request: HttpRequest, webhook_id: int) -> Any:
    _manager(request)
    return get_object_or_404(Webhook, pk=webhook_id)


@webhook_router.patch(
    "/{webhook_id}", response={200: WebhookOut, **errors(403, 404, 409, 422)}, summary="Change a webhook"
)
def patch_webhook(request: HttpRequest, webhook_id: int, payload: WebhookPatch) -> Any:
    actor = _manager(request)
    webhook = get_object_or_404(Webhook, pk=webhook_id)
    changes = payload.dict(exclude_unset=True)
    expected = changes.pop("expected_version", None)
    return services.update_webhook(webhook, actor=actor, expected_version=expected, **changes)


@webhook_router.delete("/{webhook_id}", response={204: None, **errors(403, 404)}, summary="Delete a webhook")
def delete_webhook(request: HttpRequest, webhook_id: int) -> Any:
    actor = _manager(request)
    services.delete_webhook(get_object_or_404(Webhook, pk=webhook_id), actor=actor)
    return Status(204, None)


@webhook_router.get(
    "/{webhook_id}/deliveries",
    response={200: list[DeliveryOut], **errors(403, 404)},
    summary="The delivery log, newest first (each try with its status code)",
)
def list_deliveries(request: HttpRequest, webhook_id: int, limit: int = 50) -> Any:
    _manager(request)
    webhook = get_object_or_404(Webhook, pk=webhook_id)
    return list(webhook.deliveries.prefetch_related("tries")[: max(1, min(limit, MAX_PAGE))])


__all__ = ["Channel", "router", "webhook_router"]
