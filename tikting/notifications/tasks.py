"""Background tasks of the notifications (Django's Tasks API, run by `tikting worker`): an e-mail
and a webhook delivery each, retried with backoff by enqueueing themselves again (`run_after`),
and the daily digest (the schedule's "digest" entry)."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from django_tasks import task

from . import delivery


def _later(seconds: int) -> dt.datetime:
    return timezone.now() + dt.timedelta(seconds=seconds)


@task()
def send_email(notification_id: int) -> str:
    outcome = delivery.send_email(notification_id)
    if outcome.retry_in is not None:
        send_email.using(run_after=_later(outcome.retry_in)).enqueue(notification_id)
    return outcome.text


@task()
def deliver_webhook(delivery_id: int) -> str:
    outcome = delivery.deliver(delivery_id)
    if outcome.retry_in is not None:
        deliver_webhook.using(run_after=_later(outcome.retry_in)).enqueue(delivery_id)
    return outcome.text


@task()
def send_digests() -> dict[str, int]:
    return delivery.send_digests()
