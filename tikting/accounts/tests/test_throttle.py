"""Password guessing: failed sign-ins (login page, API tokens) lock out an account and an address
for TIKTING_LOGIN_LOCKOUT_MINUTES after TIKTING_LOGIN_FAILURE_LIMIT failures; 429 with
Retry-After; an administrator unlocks at once (CLI, admin action)."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.test import Client

from tikting.accounts.models import ApiToken
from tikting.test import PASSWORD

pytestmark = pytest.mark.django_db

ADDRESS, OTHER_ADDRESS = "203.0.113.7", "198.51.100.9"  # documentation ranges (RFC 5737)
LIMIT = 10  # TIKTING_LOGIN_FAILURE_LIMIT's default


def sign_in(username: str, password: str, address: str = ADDRESS) -> tuple[Client, Any]:
    client = Client(REMOTE_ADDR=address)
    response = client.post("/login/", {"username": username, "password": password})
    return client, response


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_the_right_password_is_refused_after_too_many_wrong_ones(cast):
    for _ in range(25):
        _client, response = sign_in("olga", "guess")
    client, response = sign_in("olga", PASSWORD)
    assert response.status_code == 429
    assert not signed_in(client)
    text = response.content.decode()
    assert "Too many failed sign-ins" in text and "blocked for 15 minutes" in text
    assert 14 * 60 < int(response["Retry-After"]) <= 15 * 60


def test_failures_under_the_limit_do_not_lock(cast):
    for _ in range(LIMIT - 1):
        sign_in("olga", "guess")
    client, response = sign_in("olga", PASSWORD)
    assert response.status_code == 302 and signed_in(client)


def test_an_account_locks_whatever_address_the_guesses_come_from(cast):
    for n in range(LIMIT):
        sign_in("olga", "guess", address=f"192.0.2.{n + 1}")
    client, response = sign_in("olga", PASSWORD, address=OTHER_ADDRESS)
    assert response.status_code == 429 and not signed_in(client)
    # Another account from that address is not affected.
    client, response = sign_in("mia", PASSWORD, address=OTHER_ADDRESS)
    assert response.status_code == 302 and signed_in(client)


def test_an_address_locks_whatever_usernames_it_tries(cast):
    for n in range(LIMIT):
        sign_in(f"user{n}", "guess")
    client, response = sign_in("mia", PASSWORD)
    assert response.status_code == 429 and not signed_in(client)
    client, response = sign_in("mia", PASSWORD, address=OTHER_ADDRESS)
    assert signed_in(client)


def test_the_lockout_ends_when_the_failures_are_old_enough(cast):
    for _ in range(LIMIT):
        sign_in("olga", "guess")
    assert sign_in("olga", PASSWORD)[1].status_code == 429
    AccessAttempt.objects.update(attempt_time=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=16))
    client, _response = sign_in("olga", PASSWORD)
    assert signed_in(client)


def test_a_try_during_the_lockout_does_not_extend_it(cast):
    for _ in range(LIMIT):
        sign_in("olga", "guess")
    AccessAttempt.objects.update(attempt_time=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10))
    _client, response = sign_in("olga", "guess again")
    assert response.status_code == 429
    assert 4 * 60 < int(response["Retry-After"]) <= 5 * 60


def test_bad_api_tokens_lock_the_address_out_with_429(cast):
    _, raw = ApiToken.issue(cast.owner, "script")
    client = Client(REMOTE_ADDR=ADDRESS)
    for n in range(LIMIT - 1):
        assert client.get("/api/items", HTTP_AUTHORIZATION=f"Bearer tkt_guess{n}").status_code == 401
    response = client.get("/api/items", HTTP_AUTHORIZATION="Bearer tkt_last_guess")
    assert response.status_code == 429
    assert 14 * 60 < int(response["Retry-After"]) <= 15 * 60
    assert "Too many failed sign-ins" in response.json()["detail"]
    # While locked, the address is refused, a valid token included, and that token is not marked
    # as used (its lookup and the address's count are one query; the refusal comes before the write)
    assert client.get("/api/items", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 429
    assert ApiToken.objects.get(user=cast.owner).last_used_at is None
    # ... and another address is not.
    other = Client(REMOTE_ADDR=OTHER_ADDRESS)
    assert other.get("/api/items", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200


def test_bad_tokens_from_many_addresses_do_not_lock_token_users(cast):
    _, raw = ApiToken.issue(cast.owner, "script")
    for n in range(LIMIT * 2):
        Client(REMOTE_ADDR=f"192.0.2.{n + 1}").get("/api/items", HTTP_AUTHORIZATION="Bearer tkt_guess")
    response = Client(REMOTE_ADDR=OTHER_ADDRESS).get("/api/items", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 200


def test_429_is_documented_on_every_operation(client):
    schema = client.get("/api/openapi.json").json()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert "429" in operation["responses"], f"{method.upper()} {path}"


def test_unlock_command_lifts_an_account_and_an_address(cast):
    for _ in range(LIMIT):
        sign_in("olga", "guess")
    out = io.StringIO()
    call_command("unlock", "--list", stdout=out)
    assert out.getvalue().startswith(f"olga\t{ADDRESS}\t{LIMIT} failure(s)")
    call_command("unlock", "olga", stdout=io.StringIO())
    client, _response = sign_in("olga", PASSWORD, address=OTHER_ADDRESS)
    assert signed_in(client)
    # The address itself is still locked (its failures were olga's): unlock it by address.
    for n in range(LIMIT):
        sign_in(f"user{n}", "guess")
    assert sign_in("mia", PASSWORD)[1].status_code == 429
    call_command("unlock", "--ip", ADDRESS, stdout=io.StringIO())
    assert signed_in(sign_in("mia", PASSWORD)[0])


def test_the_admin_action_unlocks_the_selected_users(cast):
    for _ in range(LIMIT):
        sign_in("olga", "guess")
    admin = Client(REMOTE_ADDR=OTHER_ADDRESS)
    admin.force_login(cast.admin)
    cast.admin.is_superuser = True
    cast.admin.save()
    response = admin.post(
        "/admin/accounts/user/",
        {"action": "unlock_sign_in", "_selected_action": [cast.owner.pk]},
        follow=True,
    )
    assert "Sign-in unlocked for olga" in response.content.decode()
    assert not AccessAttempt.objects.filter(username="olga").exists()


def test_authenticate_outside_a_request_is_not_throttled(cast):
    for _ in range(LIMIT):
        sign_in("olga", "guess")
    # The CLI and scripts call authenticate() without a request: no address, nothing to throttle.
    assert authenticate(username="olga", password=PASSWORD) == cast.owner


def test_the_admin_login_counts_and_is_locked_too(cast):
    client = Client(REMOTE_ADDR=ADDRESS)
    for _ in range(LIMIT):
        client.post("/admin/login/", {"username": "ada", "password": "guess"})
    response = client.post("/admin/login/", {"username": "ada", "password": PASSWORD})
    assert response.status_code == 429 and "Too many failed sign-ins" in response.content.decode()
    assert sign_in("ada", PASSWORD)[1].status_code == 429  # the same lockout on the app's page
