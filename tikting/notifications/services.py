"""The notifications' services: turning an event into notices, deliveries and e-mails to send
(on_event, subscribed to core.events), following, reading, preferences, webhooks. Every write
takes `actor=` and runs in a transaction; webhook changes are in the audit trail."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from tikting.accounts.models import Actor, Role, User
from tikting.core import audit
from tikting.core.events import Event, Kind
from tikting.core.exceptions import PermissionDeniedError
from tikting.core.prepared import Prepared
from tikting.improvement.models import Item
from tikting.records import registry as R

from . import rules, tasks, webhooks
from .models import (
    Channel,
    Delivery,
    DigestChoice,
    Follow,
    Notification,
    Preference,
    Webhook,
    default_channel,
)

N = Notification


# --- What a notice is about -----------------------------------------------------------------------


def label_of(target: models.Model) -> str:
    if isinstance(target, Item):
        return f"{target.ref} {target.title}"[:200]
    kind = R.kind_for(target)
    if kind is not None:
        return f"{kind.label} {target}"[:200]
    return str(target)[:200]


def url_of(target: models.Model) -> str:
    get = getattr(target, "get_absolute_url", None)
    return str(get()) if callable(get) else ""


def can_follow(user: Actor, target: models.Model) -> bool:
    """Whoever may read the target may follow it: the register's items and reviews are read by
    every signed-in user with a role, a record by those who may view records."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if R.kind_for(target) is not None:
        return R.can_view_records(user)
    return True


# --- Events → notices ---------------------------------------------------------------------------------


def channels_for(user_ids: Iterable[int], kinds: Iterable[str]) -> dict[tuple[int, str], str]:
    """Each person's channel for each kind: their preference, else the default."""
    ids, kinds = list(user_ids), list(kinds)
    chosen = {
        (p.user_id, p.kind): p.channel for p in Preference.objects.filter(user_id__in=ids, kind__in=kinds)
    }
    return {(u, k): chosen.get((u, k), default_channel(k)) for u in ids for k in kinds}


def on_event(event: Event) -> None:
    """Subscribed to core.events: a notice for each person to tell (rules.recipients) whose
    preference for that kind is not off, an e-mail queued (or kept for the digest) where it says
    e-mail, and a delivery queued for each active webhook subscribed to the kind. All in the
    emitting service's transaction; sending happens in the worker."""
    found = rules.recipients(event)
    if found:
        _notify(event, found)
    _queue_webhooks(event, found)


def _notify(event: Event, found: list[rules.Recipient]) -> None:
    channels = channels_for([r.user_id for r in found], {r.kind for r in found})
    digest = set(
        DigestChoice.objects.filter(user_id__in=[r.user_id for r in found], daily=True).values_list(
            "user_id", flat=True
        )
    )
    with_email = set(
        User.objects.filter(pk__in=[r.user_id for r in found]).exclude(email="").values_list("pk", flat=True)
    )
    if event.key:
        told = set(
            N.objects.filter(key=event.key, recipient_id__in=[r.user_id for r in found]).values_list(
                "recipient_id", flat=True
            )
        )
        found = [r for r in found if r.user_id not in told]
    content_type = ContentType.objects.get_for_model(event.target, for_concrete_model=False)
    label, url = label_of(event.target), url_of(event.target)
    excerpt = " ".join(event.text.split())[:500]
    notices = []
    for recipient in found:
        channel = channels[(recipient.user_id, recipient.kind)]
        if channel == Channel.OFF:
            continue
        email = ""
        if channel == Channel.EMAIL and recipient.user_id in with_email:
            email = N.Email.DIGEST if recipient.user_id in digest else N.Email.PENDING
        notices.append(
            N(
                recipient_id=recipient.user_id,
                kind=recipient.kind,
                reason=recipient.reason,
                actor=event.actor,
                content_type=content_type,
                object_id=str(event.target.pk),
                target_label=label,
                url=url,
                summary=event.summary or label,
                excerpt=excerpt,
                key=event.key,
                email=email,
            )
        )
    # one INSERT whatever the number of people told; an e-mail task for each to send at once
    for notice in N.objects.bulk_create(notices):
        if notice.email == N.Email.PENDING:
            tasks.send_email.enqueue(notice.pk)


def payload(event: Event, mentioned: list[str]) -> dict[str, Any]:
    """The JSON a webhook receives (docs/notifications.md, "Webhooks")."""
    target = event.target
    kind = R.kind_for(target)
    return {
        "kind": event.kind,
        "at": timezone.now().isoformat(),
        "actor": getattr(event.actor, "username", None),
        "summary": event.summary,
        "text": event.text,
        "mentioned": mentioned,
        "target": {
            "type": kind.slug if kind else target._meta.model_name,
            "id": target.pk,
            "label": label_of(target),
            "url": url_of(target),
        },
        "data": event.data,
    }


# Asked on every event: compiled once per connection.
_active_webhooks = Prepared(lambda: Webhook.objects.filter(active=True))


def _queue_webhooks(event: Event, found: list[rules.Recipient]) -> None:
    mentioned_ids = [r.user_id for r in found if r.kind == Kind.MENTIONED]
    kinds = {event.kind} | ({Kind.MENTIONED.value} if mentioned_ids else set())
    subscribed = [w for w in _active_webhooks() if kinds & set(w.kinds)]
    if not subscribed:
        return
    names = list(User.objects.filter(pk__in=mentioned_ids).values_list("username", flat=True))
    body = json.dumps(payload(event, names), sort_keys=True, separators=(",", ":"), default=str)
    for webhook in subscribed:
        delivery = Delivery.objects.create(webhook=webhook, kind=event.kind, body=body)
        tasks.deliver_webhook.enqueue(delivery.pk)


# --- Following ------------------------------------------------------------------------------------


def is_following(user: Actor, target: models.Model) -> bool:
    if user is None or not user.is_authenticated:
        return False
    return Follow.objects.filter(
        user=user,
        content_type=ContentType.objects.get_for_model(target, for_concrete_model=False),
        object_id=str(target.pk),
    ).exists()


@transaction.atomic
def follow(target: models.Model, *, actor: Actor, on: bool = True) -> bool:
    """Follow (or stop following) `target`; True when something changed."""
    if not isinstance(actor, User) or not can_follow(actor, target):
        raise PermissionDeniedError("You may not follow this.")
    content_type = ContentType.objects.get_for_model(target, for_concrete_model=False)
    if on:
        return Follow.objects.get_or_create(user=actor, content_type=content_type, object_id=str(target.pk))[
            1
        ]
    found = Follow.objects.filter(user=actor, content_type=content_type, object_id=str(target.pk))
    return found.delete()[0] > 0


# --- Reading ----------------------------------------------------------------------------------


def unread_count(user: Actor) -> int:
    if user is None or not user.is_authenticated:
        return 0
    return N.objects.filter(recipient=user, read_at=None).count()


@transaction.atomic
def mark_read(notification: Notification, *, actor: Actor, read: bool = True) -> Notification:
    if actor is None or getattr(actor, "pk", None) != notification.recipient_id:
        raise PermissionDeniedError("This notification is somebody else's.")
    notification.read_at = (notification.read_at or timezone.now()) if read else None
    notification.save(update_fields=["read_at"])
    return notification


@transaction.atomic
def mark_all_read(*, actor: Actor) -> int:
    if actor is None or not actor.is_authenticated:
        raise PermissionDeniedError("Sign in to read your notifications.")
    return N.objects.filter(recipient=actor, read_at=None).update(read_at=timezone.now())


# --- Preferences ------------------------------------------------------------------------------


def preferences_of(user: User) -> tuple[dict[str, str], bool]:
    channels = channels_for([user.pk], Kind.values)
    choice = DigestChoice.objects.filter(user=user).first()
    return {k: channels[(user.pk, k)] for k in Kind.values}, bool(choice and choice.daily)


@transaction.atomic
def set_preferences(*, actor: Actor, channels: dict[str, str], daily_digest: bool | None = None) -> None:
    """Set the caller's channel per kind (in the app / e-mail / off) and the daily digest."""
    if not isinstance(actor, User) or not actor.is_authenticated:
        raise PermissionDeniedError("Sign in to choose your notifications.")
    errors = {k: f"Unknown event kind '{k}'." for k in channels if k not in Kind.values}
    errors.update(
        {
            k: f"Choose one of: {', '.join(Channel.values)}."
            for k, v in channels.items()
            if v not in Channel.values
        }
    )
    if errors:
        raise ValidationError(errors)
    for kind, channel in channels.items():
        Preference.objects.update_or_create(user=actor, kind=kind, defaults={"channel": channel})
    if daily_digest is not None:
        DigestChoice.objects.update_or_create(user=actor, defaults={"daily": daily_digest})


# --- Webhooks -------------------------------------------------------------------------------------


def can_manage_webhooks(user: Actor) -> bool:
    """Webhooks send the register's events out of tikting: improvement managers and administrators."""
    return bool(user is not None and user.is_authenticated and user.has_role(Role.MANAGER))


def _require_manager(actor: Actor, what: str) -> None:
    if actor is not None and not can_manage_webhooks(actor):
        raise PermissionDeniedError(f"You may not {what}: improvement managers and administrators do.")


WEBHOOK_FIELDS = frozenset({"name", "url", "kinds", "active"})


def _clean_webhook(webhook: Webhook) -> None:
    errors: dict[str, str] = {}
    webhook.name = (webhook.name or "").strip()
    if not webhook.name:
        errors["name"] = "Give the webhook a name."
    kinds = webhook.kinds if isinstance(webhook.kinds, list) else []
    unknown = [k for k in kinds if k not in Kind.values]
    if not kinds or unknown:
        errors["kinds"] = (
            f"Unknown event kind(s): {', '.join(map(str, unknown))}."
            if unknown
            else "Choose at least one event kind."
        )
    if errors:
        raise ValidationError(errors)
    webhook.kinds = sorted(set(kinds))
    webhooks.check_url(webhook.url)  # ValidationError naming `url`: scheme, address (SSRF)
    webhook.full_clean(exclude=["url"] if webhook.url else None)


@transaction.atomic
def create_webhook(*, actor: Actor, name: str, url: str, kinds: list[str], active: bool = True) -> Webhook:
    _require_manager(actor, "create webhooks")
    webhook = Webhook(name=name, url=(url or "").strip(), kinds=list(kinds or []), active=active)
    webhook.created_by = actor if isinstance(actor, User) else None
    _clean_webhook(webhook)
    webhook.save()
    changes = audit.diff({}, audit.snapshot(webhook, fields=["name", "url", "kinds", "active"]))
    audit.record(webhook, action="create", actor=actor, changes=changes)
    return webhook


@transaction.atomic
def update_webhook(
    webhook: Webhook, *, actor: Actor, expected_version: int | None = None, **changes: Any
) -> Webhook:
    """Change name, URL, kinds or active; turning it active again clears the failure count."""
    _require_manager(actor, "change webhooks")
    unknown = sorted(set(changes) - WEBHOOK_FIELDS)
    if unknown:
        raise ValidationError(dict.fromkeys(unknown, "This field cannot be set here."))
    locked = Webhook.objects.select_for_update().get(pk=webhook.pk)
    if expected_version is not None and locked.version != int(expected_version):
        from tikting.core.exceptions import ConflictError

        raise ConflictError(locked, expected_version)
    fields = ["name", "url", "kinds", "active"]
    before = audit.snapshot(locked, fields=fields)
    for name, value in changes.items():
        setattr(locked, name, value.strip() if isinstance(value, str) else value)
    if changes.get("active") and not before["active"]:
        locked.failures_in_a_row = 0
        locked.disabled_reason = ""
    _clean_webhook(locked)
    locked.version += 1
    locked.save()
    audit.record(
        locked,
        action="update",
        actor=actor,
        changes=audit.diff(before, audit.snapshot(locked, fields=fields)),
    )
    return locked


@transaction.atomic
def delete_webhook(webhook: Webhook, *, actor: Actor) -> None:
    _require_manager(actor, "delete webhooks")
    changes = audit.diff(audit.snapshot(webhook, fields=["name", "url", "kinds", "active"]), {})
    audit.record(webhook, action="delete", actor=actor, changes=changes)
    webhook.delete()
