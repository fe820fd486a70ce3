"""Content-Security-Policy: every response says where scripts, styles and requests may come from.

Ours, not django-csp: one policy, a nonce and a context variable are some thirty lines, and the
project keeps its dependencies few (Django 6 has this built in; on 5.2 we carry it ourselves).

The policy (POLICY): scripts only from our own static files, or inline with the request's nonce
(`<script nonce="{{ csp_nonce }}">`): no inline event handlers (`onclick=`), no eval (htmx runs
with `allowEval: false`). Style sheets from our static files or a nonce'd `<style>`;
`style="…"` attributes are allowed (style-src-attr): Bootstrap, Chart.js, Swagger UI and a few of
our templates size things with them, and an attribute cannot load or run anything. Images from
our files and data: URIs (Bootstrap's icons in CSS); fetches to our own origin only; no plugins,
no <base>, forms post to our own origin, no framing. Swagger UI at /api/docs works under it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

HEADER = "Content-Security-Policy"

POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'nonce-{nonce}'",
        # Browsers without the -elem/-attr directives (CSP 2) fall back to style-src.
        "style-src 'self' 'unsafe-inline'",
        "style-src-elem 'self' 'nonce-{nonce}'",
        "style-src-attr 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class ContentSecurityPolicyMiddleware:
    """Gives each request a nonce (`request.csp_nonce`) and each response the policy, unless a view
    set its own."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        nonce = secrets.token_urlsafe(18)
        request.csp_nonce = nonce  # type: ignore[attr-defined]
        response = self.get_response(request)
        if HEADER not in response:
            response[HEADER] = POLICY.format(nonce=nonce)
        return response


def nonce(request: HttpRequest) -> dict[str, str]:
    """Template context processor: `csp_nonce` for inline <script>/<style> (django-htmx's
    {% htmx_script %} reads it too)."""
    return {"csp_nonce": getattr(request, "csp_nonce", "")}
