"""Sending in the worker: e-mails (an SMTP failure leaves the edit saved, retried with backoff),
digests grouped, webhooks signed (checked by an independent HMAC here), retried and disabled
against a real HTTP receiver on 127.0.0.1, and the SSRF guard (DNS names included)."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.test import Client
from django_tasks_db.models import DBTaskResult

from tikting.core.events import Kind
from tikting.improvement import services as S
from tikting.notifications import delivery, tasks, webhooks
from tikting.notifications import services as NS
from tikting.notifications.models import Attempt, Delivery, Notification, Webhook
from tikting.test import ready_item

pytestmark = pytest.mark.django_db
N = Notification


class Receiver:
    """A real HTTP server on 127.0.0.1 answering `status` and keeping what it was sent."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[tuple[dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append((dict(self.headers), body))
                self.send_response(outer.status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def url(self, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}/hooks/tikting?x=1"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- E-mail ------------------------------------------------------------------------------------------


def test_an_smtp_failure_leaves_the_edit_saved_and_is_retried(cast, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", closed_port(), 2
    settings.TIKTING_EMAIL_ATTEMPTS = 2
    item = ready_item(cast)
    client = Client()
    client.force_login(cast.contributor)
    response = client.post(f"/register/{item.pk}/comments/", {"body": "@mia have a look"})
    assert response.status_code in {200, 302}
    assert item.comments.filter(body="@mia have a look").exists()  # the edit is saved
    notice = N.objects.get(recipient=cast.manager, kind=Kind.MENTIONED)
    assert notice.email == N.Email.PENDING
    queued = DBTaskResult.objects.filter(task_path="tikting.notifications.tasks.send_email")
    assert queued.filter(args_kwargs__args=[notice.pk]).exists()

    assert tasks.send_email.call(notice.pk) == "failed; retrying"
    notice.refresh_from_db()
    assert notice.email_attempts == 1 and "Connection" in notice.email_error
    retry = queued.filter(args_kwargs__args=[notice.pk]).order_by("-enqueued_at").first()
    assert retry is not None and (retry.run_after - retry.enqueued_at).total_seconds() >= 55  # backoff
    assert tasks.send_email.call(notice.pk) == "failed; gave up"
    notice.refresh_from_db()
    assert notice.email == N.Email.FAILED and notice.read_at is None  # still under the bell


def test_an_email_is_sent_once(cast):
    item = ready_item(cast)
    S.add_comment(item, actor=cast.contributor, body="@mia ready for review")
    notice = N.objects.get(recipient=cast.manager)
    assert delivery.send_email(notice.pk).text == "sent"
    assert delivery.send_email(notice.pk).text == "nothing to send"
    [message] = mail.outbox
    assert message.to == ["mia@example.org"] and "@mia ready for review" in message.body
    assert f"/register/{item.pk}/" in message.body and "preferences" in message.body


def test_the_digest_groups_instead_of_flooding(cast):
    NS.set_preferences(actor=cast.owner, channels=dict.fromkeys(Kind.values, "email"), daily_digest=True)
    first = ready_item(cast)
    second = ready_item(cast, title="Fewer password resets")
    N.objects.all().delete()
    for body in ("one", "two", "three"):
        S.add_comment(first, actor=cast.contributor, body=body)
    S.add_comment(second, actor=cast.manager, body="four")
    waiting = N.objects.filter(recipient=cast.owner)
    assert waiting.count() == 4 and set(waiting.values_list("email", flat=True)) == {N.Email.DIGEST}
    assert mail.outbox == []
    assert delivery.send_digests() == {"sent": 1, "failed": 0}
    [message] = mail.outbox
    assert message.subject == "[tikting] Your daily digest: 4 notifications"
    assert "4 notifications about 2 thing(s)" in message.body
    assert f"{first.ref} Cut e-mail MTTR (3)" in message.body
    assert f"{second.ref} Fewer password resets (1)" in message.body
    assert set(waiting.values_list("email", flat=True)) == {N.Email.SENT}
    assert delivery.send_digests() == {"sent": 0, "failed": 0}


def test_backoff_follows_the_setting(settings):
    settings.TIKTING_RETRY_BACKOFF = [10, 60, 300]
    assert [delivery.backoff(n) for n in (1, 2, 3, 4, 9)] == [10, 60, 300, 300, 300]


# --- Webhooks -----------------------------------------------------------------------------------


def independent_signature(secret: str, body: bytes) -> str:
    """The receiver's side, as docs/notifications.md tells a receiver to check it."""
    mac = hmac.HMAC(secret.encode("utf-8"), digestmod=hashlib.sha256)
    mac.update(body)
    return "sha256=" + mac.hexdigest()


@pytest.fixture
def private_ok(settings):
    settings.TIKTING_WEBHOOK_ALLOW_PRIVATE = True
    return settings


def test_a_delivery_is_signed_and_logged(cast, private_ok):
    with Receiver(200) as receiver:
        hook = NS.create_webhook(
            actor=cast.manager, name="chat", url=receiver.url(), kinds=["commented", "mentioned"]
        )
        item = ready_item(cast)
        S.add_comment(item, actor=cast.contributor, body="@olga see the runbook")
        [pending] = Delivery.objects.filter(webhook=hook)
        assert tasks.deliver_webhook.call(pending.pk) == "delivered (200)"
    [(headers, body)] = receiver.received
    assert headers["X-Tikting-Signature"] == independent_signature(hook.secret, body)
    assert headers["X-Tikting-Signature"] != independent_signature("another secret", body)
    assert headers["X-Tikting-Event"] == "commented" and headers["X-Tikting-Delivery"] == str(pending.pk)
    assert headers["Host"] == f"127.0.0.1:{receiver.port}"
    data = json.loads(body)
    assert data["kind"] == "commented" and data["mentioned"] == ["olga"] and data["actor"] == "carl"
    assert data["target"] == {
        "type": "item",
        "id": item.pk,
        "label": f"{item.ref} Cut e-mail MTTR",
        "url": f"/register/{item.pk}/",
    }
    pending.refresh_from_db()
    assert pending.status == Delivery.Status.DELIVERED and pending.attempts == 1
    assert list(Attempt.objects.values_list("status_code", flat=True)) == [200]


def test_failures_are_retried_with_backoff_then_the_webhook_is_disabled(cast, private_ok):
    private_ok.TIKTING_WEBHOOK_ATTEMPTS = 3
    private_ok.TIKTING_WEBHOOK_DISABLE_AFTER = 4
    private_ok.TIKTING_RETRY_BACKOFF = [30, 120]
    with Receiver(503) as receiver:
        hook = NS.create_webhook(actor=cast.manager, name="flaky", url=receiver.url(), kinds=["commented"])
        item = ready_item(cast)
        S.add_comment(item, actor=cast.contributor, body="first")
        S.add_comment(item, actor=cast.contributor, body="second")
        first, second = Delivery.objects.order_by("pk")
        outcomes = [delivery.deliver(first.pk) for _ in range(4)]
        assert [o.retry_in for o in outcomes] == [30, 120, None, None]
        assert outcomes[2].text == "failed (503); gave up" and outcomes[3].text == "nothing to deliver"
        # the fourth failure in a row disables the webhook: the task does not enqueue itself again
        assert tasks.deliver_webhook.call(second.pk) == "failed (503); gave up: the webhook is disabled"
        assert len(receiver.received) == 4
        S.add_comment(item, actor=cast.contributor, body="third")  # nothing queued for a disabled one
    hook.refresh_from_db()
    assert not hook.active and "4 failed attempts in a row" in hook.disabled_reason
    assert Delivery.objects.count() == 2
    assert list(first.tries.values_list("status_code", flat=True)) == [503, 503, 503]
    # turned on again by a manager: the count starts over
    hook = NS.update_webhook(hook, actor=cast.manager, active=True)
    assert hook.failures_in_a_row == 0 and hook.disabled_reason == ""


def test_the_task_enqueues_itself_again_after_the_backoff(cast, private_ok):
    private_ok.TIKTING_RETRY_BACKOFF = [45]
    with Receiver(500) as receiver:
        NS.create_webhook(actor=cast.manager, name="x", url=receiver.url(), kinds=["commented"])
        S.add_comment(ready_item(cast), actor=cast.contributor, body="a")
        d = Delivery.objects.get()
        assert tasks.deliver_webhook.call(d.pk) == "failed (500); retrying in 45 s"
    queued = DBTaskResult.objects.filter(task_path="tikting.notifications.tasks.deliver_webhook")
    first, later = queued.order_by("enqueued_at", "id")
    assert first.args_kwargs["args"] == later.args_kwargs["args"] == [d.pk]
    assert 40 <= (later.run_after - later.enqueued_at).total_seconds() <= 50


def test_a_success_resets_the_failure_count(cast, private_ok):
    with Receiver(500) as receiver:
        hook = NS.create_webhook(actor=cast.manager, name="x", url=receiver.url(), kinds=["commented"])
        item = ready_item(cast)
        S.add_comment(item, actor=cast.contributor, body="a")
        d = Delivery.objects.get()
        delivery.deliver(d.pk)
        receiver.status = 204
        assert delivery.deliver(d.pk).text == "delivered (204)"
    hook.refresh_from_db()
    assert hook.failures_in_a_row == 0


@pytest.mark.parametrize(
    "url, words",
    [
        ("http://127.0.0.1/x", "loopback"),
        ("http://localhost:8000/x", "loopback"),  # a DNS name resolving to 127.0.0.1 (and ::1)
        ("http://[::1]/x", "loopback"),
        ("http://[::ffff:127.0.0.1]/x", "loopback"),
        ("http://10.1.2.3/x", "private"),
        ("http://192.168.0.10/x", "private"),
        ("http://172.16.5.5/x", "private"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://100.64.0.1/x", "shared"),
        ("http://0.0.0.0/x", "unspecified"),
        ("http://240.0.0.1/x", "reserved"),
        ("http://[fe80::1]/x", "link-local"),
        ("http://[fd00::1]/x", "private"),
        ("http://224.0.0.1/x", "multicast"),
        ("ftp://example.org/x", "Only http"),
        ("file:///etc/passwd", "Only http"),
        ("http://user:pw@93.184.216.34/x", "no user name"),
        ("http://no-such-host.invalid/x", "does not resolve"),
    ],
)
def test_ssrf_refused_at_subscription(cast, url, words):
    with pytest.raises(ValidationError, match=words):
        NS.create_webhook(actor=cast.manager, name="bad", url=url, kinds=["commented"])
    assert Webhook.objects.count() == 0


def test_a_public_address_passes_the_check():
    target = webhooks.check_url("https://93.184.216.34:8443/in?a=b")
    assert target.addresses == ("93.184.216.34",) and target.path == "/in?a=b" and target.port == 8443


def test_ssrf_checked_again_at_delivery(cast, private_ok):
    with Receiver(200) as receiver:
        hook = NS.create_webhook(
            actor=cast.manager, name="local", url=receiver.url("localhost"), kinds=["commented"]
        )
        item = ready_item(cast)
        S.add_comment(item, actor=cast.contributor, body="x")
        d = Delivery.objects.get(webhook=hook)
        private_ok.TIKTING_WEBHOOK_ALLOW_PRIVATE = False  # the administrator turned it off since
        outcome = delivery.deliver(d.pk)
        assert receiver.received == []
    assert outcome.retry_in is not None
    [attempt] = d.tries.all()
    assert attempt.status_code is None and "loopback" in attempt.error


def test_an_inactive_or_unsubscribed_webhook_gets_nothing(cast, private_ok):
    with Receiver(200) as receiver:
        NS.create_webhook(
            actor=cast.manager, name="off", url=receiver.url(), kinds=["commented"], active=False
        )
        NS.create_webhook(actor=cast.manager, name="other", url=receiver.url(), kinds=["escalated"])
        S.add_comment(ready_item(cast), actor=cast.contributor, body="x")
    assert Delivery.objects.count() == 0


def test_webhook_kinds_are_checked(cast, private_ok):
    with pytest.raises(ValidationError, match="Unknown event kind"):
        NS.create_webhook(actor=cast.manager, name="x", url="http://127.0.0.1/", kinds=["exploded"])
    with pytest.raises(ValidationError, match="at least one"):
        NS.create_webhook(actor=cast.manager, name="x", url="http://127.0.0.1/", kinds=[])
