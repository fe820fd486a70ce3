"""Who follows what, who was told what (and whether the e-mail went), what each person wants to be
told, and the webhooks with their delivery log."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models

from tikting.core.events import Kind

__all__ = [
    "Channel",
    "Follow",
    "Preference",
    "DigestChoice",
    "Notification",
    "Webhook",
    "Delivery",
    "Attempt",
]


class Channel(models.TextChoices):
    APP = "app", "In the app"
    EMAIL = "email", "In the app and by e-mail"
    OFF = "off", "Off"


# What a person is told of each kind until they choose: e-mail for what is addressed to them.
DEFAULT_CHANNELS: dict[str, str] = {
    Kind.ASSIGNED: Channel.EMAIL,
    Kind.MENTIONED: Channel.EMAIL,
    Kind.ESCALATED: Channel.EMAIL,
    Kind.ACTION_OVERDUE: Channel.EMAIL,
}


def default_channel(kind: str) -> str:
    return DEFAULT_CHANNELS.get(kind, Channel.APP)


class Follow(models.Model):
    """A person follows an item, a record or a review: its comments, status changes and minutes
    reach them as they reach its owner."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="follows")
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
    object_id = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "content_type", "object_id"], name="follow_once")
        ]
        indexes = [models.Index(fields=["content_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.user} follows {self.content_type.model} {self.object_id}"


class Preference(models.Model):
    """One person's choice for one event kind (no row: default_channel)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    channel = models.CharField(max_length=8, choices=Channel.choices)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "kind"], name="preference_once")]

    def __str__(self) -> str:
        return f"{self.user}: {self.kind} → {self.channel}"


class DigestChoice(models.Model):
    """A person who wants one e-mail a day (the schedule's "digest" entry) instead of one each."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    daily = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"{self.user}: {'daily digest' if self.daily else 'one e-mail each'}"


class Notification(models.Model):
    """One thing one person is told: shown under the bell until read; sent by e-mail (at once by
    the worker, or in the day's digest) when their preference says so."""

    class Reason(models.TextChoices):
        NAMED = "named", "It is yours"
        OWNER = "owner", "You own it"
        FOLLOWER = "follower", "You follow it"
        MENTIONED = "mentioned", "You were mentioned"
        MANAGER = "manager", "You manage the register"

    class Email(models.TextChoices):
        NONE = "", "Not e-mailed"
        PENDING = "pending", "To send"
        DIGEST = "digest", "In the next digest"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=32, choices=Kind.choices)
    reason = models.CharField(max_length=10, choices=Reason.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
    object_id = models.CharField(max_length=64)
    target_label = models.CharField(max_length=200)
    url = models.CharField(max_length=300, blank=True)
    summary = models.CharField(max_length=300)
    excerpt = models.CharField(max_length=500, blank=True)
    key = models.CharField(max_length=200, blank=True, help_text="The same fact told once (overdue, …)")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    read_at = models.DateTimeField(null=True, blank=True)
    email = models.CharField(max_length=8, choices=Email.choices, blank=True, default="")
    email_attempts = models.PositiveSmallIntegerField(default=0)
    email_error = models.CharField(max_length=300, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["recipient", "read_at"]),
            models.Index(fields=["email", "recipient"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "key"], condition=~models.Q(key=""), name="notification_key_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.recipient}: {self.summary}"

    @property
    def unread(self) -> bool:
        return self.read_at is None


def new_secret() -> str:
    return secrets.token_hex(32)


class Webhook(models.Model):
    """A URL told of the chosen event kinds: a signed JSON POST per event (docs/notifications.md)."""

    name = models.CharField(max_length=100)
    url = models.URLField(max_length=500)
    kinds = models.JSONField(default=list, help_text="Event kinds (core.events.Kind) delivered")
    secret = models.CharField(max_length=128, default=new_secret)
    active = models.BooleanField(default=True)
    failures_in_a_row = models.PositiveIntegerField(default=0)
    disabled_reason = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class Delivery(models.Model):
    """One event to one webhook: the body exactly as signed and sent, and how it went."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed (gave up)"

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    body = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"

    def __str__(self) -> str:
        return f"{self.webhook} {self.kind} #{self.pk}"


class Attempt(models.Model):
    """One try of a delivery: the answer's status code (none: no answer) or the error."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="tries")
    at = models.DateTimeField(auto_now_add=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.delivery}: {self.status_code or self.error}"

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300
