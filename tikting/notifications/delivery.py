"""Sending, as the background worker does it (tasks.py calls these): a notification's e-mail, the
daily digests, a webhook delivery. Each returns what happened and, when it failed and may be tried
again, after how long (the task re-enqueues itself then). Nothing here runs in a person's request:
an SMTP server or a receiver that fails never breaks what they did."""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from tikting import __version__

from . import webhooks
from .models import Attempt, Delivery, Notification, Webhook

logger = logging.getLogger("tikting.notifications")
N = Notification


@dataclass(frozen=True)
class Outcome:
    text: str
    retry_in: int | None = None  # seconds before the next attempt; None: nothing more to do


def backoff(attempts: int) -> int:
    """Seconds to wait after the `attempts`-th failed attempt (TIKTING_RETRY_BACKOFF, the last
    repeats)."""
    waits = settings.TIKTING_RETRY_BACKOFF or [60]
    return int(waits[min(max(attempts, 1), len(waits)) - 1])


def link(url: str) -> str:
    return f"{settings.TIKTING_BASE_URL}{url}" if url.startswith("/") else url


FOOTER = "\n\n--\nYou get this from tikting. Choose what you are told, and how: {prefs}\n"


def _footer() -> str:
    return FOOTER.format(prefs=link("/notifications/preferences/"))


def email_text(notification: Notification) -> tuple[str, str]:
    """Subject and body of one notification's e-mail."""
    subject = f"[tikting] {notification.summary}"[:200]
    lines = [notification.summary, ""]
    if notification.excerpt:
        lines += [notification.excerpt, ""]
    if notification.actor:
        lines.append(f"By {notification.actor}.")
    lines.append(f"Why you: {notification.get_reason_display().lower()}.")
    if notification.url:
        lines.append(f"Open it: {link(notification.url)}")
    return subject.replace("\n", " "), "\n".join(lines) + _footer()


def send_email(notification_id: int) -> Outcome:
    """E-mail one notification (email = pending); on failure, count the attempt and say when to
    try again, until TIKTING_EMAIL_ATTEMPTS, then mark it failed (it stays under the bell)."""
    with transaction.atomic():
        notification = (
            N.objects.select_for_update(of=("self",))
            .select_related("recipient", "actor")
            .filter(pk=notification_id)
            .first()
        )
        if notification is None or notification.email != N.Email.PENDING:
            return Outcome("nothing to send")
        address = notification.recipient.email
        if not address:
            notification.email = N.Email.NONE
            notification.save(update_fields=["email"])
            return Outcome("no address")
        subject, body = email_text(notification)
        notification.email_attempts += 1
        try:
            send_mail(subject, body, None, [address], fail_silently=False)
        except Exception as exc:  # SMTP errors, refused connections, timeouts: all alike
            notification.email_error = f"{type(exc).__name__}: {exc}"[:300]
            retry = notification.email_attempts < settings.TIKTING_EMAIL_ATTEMPTS
            if not retry:
                notification.email = N.Email.FAILED
            notification.save(update_fields=["email", "email_attempts", "email_error"])
            logger.warning("E-mail of notification %s failed: %s", notification.pk, notification.email_error)
            if retry:
                return Outcome("failed; retrying", backoff(notification.email_attempts))
            return Outcome("failed; gave up")
        notification.email = N.Email.SENT
        notification.emailed_at = timezone.now()
        notification.email_error = ""
        notification.save(update_fields=["email", "email_attempts", "email_error", "emailed_at"])
        return Outcome("sent")


def digest_text(notifications: list[Notification]) -> tuple[str, str]:
    """One e-mail for a person's waiting notifications: grouped by what they are about, the
    newest group first, each line one notification."""
    groups: dict[tuple[int, str], list[Notification]] = defaultdict(list)
    for n in sorted(notifications, key=lambda n: n.created_at, reverse=True):
        groups[(n.content_type_id, n.object_id)].append(n)
    count = len(notifications)
    subject = f"[tikting] Your daily digest: {count} notification{'s' if count != 1 else ''}"
    lines = [
        f"{count} notification{'s' if count != 1 else ''} about {len(groups)} thing(s) since the last one.",
        "",
    ]
    for group in groups.values():
        first = group[0]
        lines.append(f"{first.target_label} ({len(group)})")
        if first.url:
            lines.append(f"  {link(first.url)}")
        for n in group:
            by = f" (by {n.actor})" if n.actor else ""
            lines.append(
                f"  - {timezone.localtime(n.created_at):%d %b %H:%M} {n.get_kind_display()}: {n.summary}{by}"
            )
        lines.append("")
    return subject, "\n".join(lines) + _footer()


def send_digests() -> dict[str, int]:
    """The day's digests: one e-mail per person with notifications waiting for it. A failed
    sending leaves them waiting for the next digest."""
    sent = failed = 0
    waiting = N.objects.filter(email=N.Email.DIGEST).values_list("recipient_id", flat=True).distinct()
    for recipient_id in list(waiting):
        with transaction.atomic():
            notifications = list(
                N.objects.select_for_update(of=("self",))
                .filter(recipient_id=recipient_id, email=N.Email.DIGEST)
                .select_related("recipient", "actor")
            )
            if not notifications:
                continue
            address = notifications[0].recipient.email
            ids = [n.pk for n in notifications]
            if not address:
                N.objects.filter(pk__in=ids).update(email=N.Email.NONE)
                continue
            subject, body = digest_text(notifications)
            try:
                send_mail(subject, body, None, [address], fail_silently=False)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"[:300]
                N.objects.filter(pk__in=ids).update(email_error=error, email_attempts=F("email_attempts") + 1)
                logger.warning("Digest for user %s failed: %s", recipient_id, error)
                failed += 1
                continue
            N.objects.filter(pk__in=ids).update(
                email=N.Email.SENT,
                emailed_at=timezone.now(),
                email_error="",
                email_attempts=F("email_attempts") + 1,
            )
            sent += 1
    return {"sent": sent, "failed": failed}


def headers_for(delivery: Delivery) -> dict[str, str]:
    body = delivery.body.encode()
    return {
        "Content-Type": "application/json",
        "User-Agent": f"tikting-webhooks/{__version__}",
        "X-Tikting-Event": delivery.kind,
        "X-Tikting-Delivery": str(delivery.pk),
        webhooks.SIGNATURE_HEADER: webhooks.sign(delivery.webhook.secret, body),
    }


def deliver(delivery_id: int) -> Outcome:
    """One attempt of a pending delivery, logged (status code or error). A failure counts against
    the webhook (failures_in_a_row; TIKTING_WEBHOOK_DISABLE_AFTER in a row disable it) and is tried
    again after backoff() until TIKTING_WEBHOOK_ATTEMPTS; a success resets the count."""
    delivery = Delivery.objects.select_related("webhook").filter(pk=delivery_id).first()
    if delivery is None or delivery.status != Delivery.Status.PENDING:
        return Outcome("nothing to deliver")
    webhook = delivery.webhook
    now = timezone.now
    if not webhook.active:
        Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.FAILED, finished_at=now())
        return Outcome("webhook disabled")
    answer = webhooks.post(webhook.url, delivery.body.encode(), headers_for(delivery))
    with transaction.atomic():
        Attempt.objects.create(
            delivery=delivery,
            status_code=answer.status_code,
            error=answer.error,
            duration_ms=answer.duration_ms,
        )
        attempts = delivery.attempts + 1
        if answer.ok:
            Webhook.objects.filter(pk=webhook.pk).update(failures_in_a_row=0)
            Delivery.objects.filter(pk=delivery.pk).update(
                status=Delivery.Status.DELIVERED, attempts=attempts, finished_at=now(), next_attempt_at=None
            )
            return Outcome(f"delivered ({answer.status_code})")
        Webhook.objects.filter(pk=webhook.pk).update(failures_in_a_row=F("failures_in_a_row") + 1)
        webhook.refresh_from_db(fields=["failures_in_a_row", "active"])
        limit = settings.TIKTING_WEBHOOK_DISABLE_AFTER
        if webhook.active and webhook.failures_in_a_row >= limit:
            Webhook.objects.filter(pk=webhook.pk).update(
                active=False,
                disabled_reason=(
                    f"Disabled {timezone.localtime(now()):%Y-%m-%d %H:%M} after {webhook.failures_in_a_row} "
                    f"failed attempts in a row (last: {answer.status_code or answer.error})"
                )[:300],
            )
            webhook.active = False
        what = f"failed ({answer.status_code or answer.error})"
        if webhook.active and attempts < settings.TIKTING_WEBHOOK_ATTEMPTS:
            wait = backoff(attempts)
            Delivery.objects.filter(pk=delivery.pk).update(
                attempts=attempts, next_attempt_at=now() + dt.timedelta(seconds=wait)
            )
            return Outcome(f"{what}; retrying in {wait} s", wait)
        Delivery.objects.filter(pk=delivery.pk).update(
            status=Delivery.Status.FAILED, attempts=attempts, finished_at=now(), next_attempt_at=None
        )
        return Outcome(f"{what}; gave up" + ("" if webhook.active else ": the webhook is disabled"))


__all__ = ["Outcome", "backoff", "deliver", "digest_text", "email_text", "send_digests", "send_email"]
