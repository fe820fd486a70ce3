"""Sign-in throttling: too many failed passwords or API tokens lock out an account and an address.

django-axes records every failed sign-in (the login page, the admin's, and through
`token_failed` every unknown API token) in `axes_accessattempt`. After TIKTING_LOGIN_FAILURE_LIMIT
failures within TIKTING_LOGIN_LOCKOUT_MINUTES, for one username (from anywhere) or from one
address (whatever the username or token), sign-ins are refused until the oldest of those failures
is that old: the login page says so with 429 and Retry-After, the API answers 429 with Retry-After.
An administrator unlocks at once with `tikting unlock USERNAME` / `--ip ADDRESS`, or in the admin
(Users → "Unlock sign-in", or Axes → Access attempts).

Wired in settings.py: AUTHENTICATION_BACKENDS, the AXES_* settings, axes.middleware.AxesMiddleware.
"""

from __future__ import annotations

import math
from typing import Any

from axes.backends import AxesStandaloneBackend
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cool_off, get_failure_limit
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.signals import user_login_failed
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

SIGNAL_SENDER = "tikting.api.TokenAuth"  # user_login_failed for an unknown API token


class Throttled(Exception):
    """Sign-ins from this request are refused for `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(lockout_message(retry_after))


class LoginThrottleBackend(AxesStandaloneBackend):
    """Refuses a sign-in while its account or address is locked out (first in
    AUTHENTICATION_BACKENDS; ModelBackend does the checking of passwords). Outside an HTTP request
    (the CLI, tests calling authenticate() directly) there is no address and nothing is throttled."""

    def authenticate(self, request: HttpRequest | None, *args: Any, **kwargs: Any) -> None:
        if request is None:
            return None
        super().authenticate(request, *args, **kwargs)
        return None


# --- Settings hooks (AXES_*) -------------------------------------------------------------------


def lockout_parameters(request: Any, credentials: dict[str, Any] | None = None) -> list[str]:
    """Failures count per username and per address; a failure without a username (an unknown
    API token) per address only, so bad tokens do not add up for every token user."""
    username = (credentials or {}).get("username")
    if username is None and isinstance(request, HttpRequest) and request.method == "POST":
        username = request.POST.get("username")
    return ["username", "ip_address"] if username else ["ip_address"]


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: REMOTE_ADDR, or behind a proxy (TIKTING_BEHIND_PROXY) the last
    address of X-Forwarded-For, the one the proxy itself added (those before it are the client's
    word and could be forged)."""
    if settings.TIKTING_BEHIND_PROXY:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        if forwarded[-1]:
            return forwarded[-1]
    return request.META.get("REMOTE_ADDR")


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    """The login page again, with the lockout message, 429 and Retry-After (AXES_LOCKOUT_CALLABLE)."""
    wait = retry_after(request, credentials)
    form = AuthenticationForm(request, initial={"username": (credentials or {}).get("username", "")})
    context = {
        "form": form,
        "locked_out": lockout_message(wait),
        "next": request.POST.get("next", request.GET.get("next", "")),
    }
    response = render(request, "registration/login.html", context, status=429)
    response["Retry-After"] = str(wait)
    return response


# --- Questions and API tokens ------------------------------------------------------------------


def lockout_message(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    wait = f"{minutes} minute{'s' if minutes != 1 else ''}"
    return (
        f"Too many failed sign-ins for this account or from your address: signing in is blocked for "
        f"{wait}. Try again then, or ask an administrator to unlock it."
    )


def retry_after(request: HttpRequest, credentials: dict[str, Any] | None = None) -> int:
    """Seconds until the request's account and address are both unlocked (at least 1).

    A lockout ends when enough failures are older than the cool-off for those left to be under
    the limit: walking each locked account's or address's attempts newest first, the one that
    reaches the limit is the one whose expiry ends it.
    """
    AxesProxyHandler.update_request(request)
    handler: Any = AxesProxyHandler.get_implementation()
    limit = get_failure_limit(request, credentials)
    cool_off = get_cool_off(request)
    now = timezone.now()
    longest = 0.0
    for attempts in handler.get_user_attempts(request, credentials):
        total = 0
        for at, failures in attempts.order_by("-attempt_time").values_list(
            "attempt_time", "failures_since_start"
        ):
            total += failures
            if total >= limit:
                if cool_off is not None:
                    longest = max(longest, (at + cool_off - now).total_seconds())
                break
    return max(1, math.ceil(longest))


# Settings under which django-axes decides more than "this address's failures against the limit":
# with any of them set, every API request asks axes itself (check_token_request).
_AXES_LISTS = (
    "AXES_ONLY_ADMIN_SITE",
    "AXES_IP_BLACKLIST",
    "AXES_IP_WHITELIST",
    "AXES_NEVER_LOCKOUT_WHITELIST",
    "AXES_WHITELIST_CALLABLE",
    "AXES_NEVER_LOCKOUT_GET",
)


def address_window(request: HttpRequest) -> tuple[str | None, Any] | None:
    """(address, since) whose failed sign-ins decide a lockout of a token request (since None when
    failures never cool off), for ApiToken.objects.authenticate_counting; None when axes is off."""
    if not getattr(settings, "AXES_ENABLED", True):
        return None
    cool_off = get_cool_off(request)
    return client_ip(request), (timezone.now() - cool_off) if cool_off is not None else None


def locked_out_maybe(request: HttpRequest, failures: int | None) -> bool:
    """Whether a request whose address counts `failures` (None: not counted) must be checked in
    full by check_token_request: at or over the limit, or with allow or deny lists configured."""
    if not getattr(settings, "AXES_ENABLED", True):
        return False
    if failures is None or any(getattr(settings, name, None) for name in _AXES_LISTS):
        return True
    return failures >= get_failure_limit(request, {"username": None})


def _address_failures(request: HttpRequest) -> int:
    """The failed sign-ins of the request's address within the cool-off, as django-axes sums them
    for an API token (lockout_parameters: the address alone): one indexed query, without building
    an ORM query per request."""
    from django.db import connection

    cool_off = get_cool_off(request)
    sql = "SELECT COALESCE(SUM(failures_since_start), 0) FROM axes_accessattempt WHERE ip_address = %s"
    # (fixed SQL: the address and the time are parameters)
    params: list[Any] = [client_ip(request)]
    if cool_off is not None:
        sql += " AND attempt_time >= %s"
        params.append(timezone.now() - cool_off)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.fetchone()[0])


def check_token_request(request: HttpRequest) -> None:
    """Raise Throttled when the request's address is locked out (before a token is looked up).

    Every API request passes here, so the usual answer (under the limit, no allow or deny lists
    configured) is one small query; at or over the limit, or with such lists, django-axes decides.
    """
    if not getattr(settings, "AXES_ENABLED", True):
        return
    if not any(getattr(settings, name, None) for name in _AXES_LISTS) and _address_failures(
        request
    ) < get_failure_limit(request, {"username": None}):
        return
    credentials: dict[str, Any] = {"username": None}
    if not AxesProxyHandler.is_allowed(request, credentials):
        raise Throttled(retry_after(request, credentials))


def token_failed(request: HttpRequest) -> None:
    """Count an unknown, revoked or inactive user's API token as a failed sign-in of the address;
    raise Throttled if that locks it out."""
    credentials: dict[str, Any] = {"username": None}
    user_login_failed.send(sender=SIGNAL_SENDER, credentials=credentials, request=request)
    if getattr(request, "axes_locked_out", False):
        # The API answers 429 itself: AxesMiddleware must not swap in the login page.
        request.axes_locked_out = False  # type: ignore[attr-defined]
        raise Throttled(retry_after(request, credentials))


def unlock(*, username: str | None = None, ip_address: str | None = None) -> int:
    """Forget the failed sign-ins of a username and/or an address; returns how many records went."""
    count = 0
    if username:
        count += AxesProxyHandler.reset_attempts(username=username)
    if ip_address:
        count += AxesProxyHandler.reset_attempts(ip_address=ip_address)
    return count


def attempts() -> list[tuple[str | None, str | None, int, Any]]:
    """(username, address, failures, last failure) of every failed sign-in on record, newest
    first (for `tikting unlock --list`); None for a username: an API token."""
    from axes.models import AccessAttempt

    rows = AccessAttempt.objects.order_by("-attempt_time").values_list(
        "username", "ip_address", "failures_since_start", "attempt_time"
    )
    return list(rows)
