"""The HTTP API (django-ninja): OpenAPI at /api/openapi.json, docs at /api/docs.

Authentication: a bearer token (`Authorization: Bearer tkt_...`, see /account/tokens/) for scripts,
or the Django session for the browser, with CSRF enforced on unsafe methods. Errors share one shape:
`{"detail": ...}`; validation errors list `{"field", "message"}` entries (see docs/api.md).
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from ninja import NinjaAPI
from ninja.errors import HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.openapi.docs import Swagger, _csrf_needed
from ninja.operation import Operation
from ninja.parser import Parser
from ninja.security import HttpBearer
from ninja.security import SessionAuth as NinjaSessionAuth
from ninja.utils import check_csrf

from tikting import __version__
from tikting.accounts import throttle
from tikting.accounts.models import ApiToken, Role
from tikting.core.exceptions import ConflictError, PermissionDeniedError
from tikting.lib import untrusted

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def writes_allowed(request: HttpRequest, user: Any, *, self_service: bool) -> Any:
    """Viewers read: an unsafe method from a user below contributor answers 403 before the body is
    parsed (so a viewer never learns, through a 422, what a valid write would look like).
    `self_service` operations (the caller's own API tokens) are open to every role."""
    unsafe = request.method not in SAFE_METHODS
    if user is not None and unsafe and not self_service and not user.has_role(Role.CONTRIBUTOR):
        raise HttpError(403, "You may not change the register: your role is read-only.")
    return user


# The token queryset every API request asks, made once: a manager call builds a new QuerySet and
# Query each time (3 % of a read's CPU), and authenticate_counting() only reads its database alias.
_TOKENS = ApiToken.objects.all()


class TokenAuth(HttpBearer):
    """`Authorization: Bearer tkt_...`: a token issued on /account/tokens/ or by `tikting token`.

    Unknown tokens count as failed sign-ins of the caller's address: past the limit the address
    gets 429 with Retry-After, valid tokens included, until the lockout ends (accounts/throttle.py).
    """

    def __init__(self, *, self_service: bool = False) -> None:
        super().__init__()
        self.self_service = self_service

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        # The token and the address's failed sign-ins in one query; the lockout is decided in full
        # (check_token_request) only at the limit, with allow or deny lists, or for an unknown token.
        def check(failures: int | None) -> None:
            if throttle.locked_out_maybe(request, failures):
                throttle.check_token_request(request)

        user, _ = _TOKENS.authenticate_counting(token, throttle.address_window(request), check)
        if user is None:
            throttle.check_token_request(request)
            throttle.token_failed(request)
            return None
        return writes_allowed(request, user, self_service=self.self_service)


class SessionAuth(NinjaSessionAuth):
    """The browser's Django session. Unsafe methods need the CSRF token (X-CSRFToken header).

    Ninja's own SessionAuth checks CSRF before it knows whether anyone is signed in, so an
    anonymous POST would get 403 instead of 401; here CSRF is checked only for a signed-in user.
    """

    def __init__(self, *, self_service: bool = False) -> None:
        super().__init__()
        self.self_service = self_service

    def __call__(self, request: HttpRequest) -> Any:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or not user.is_active:
            return None
        if self.csrf and not getattr(request, "_ninja_csrf_exempt", False) and check_csrf(request):
            raise HttpError(403, "CSRF check failed: send the X-CSRFToken header with session auth.")
        return writes_allowed(request, user, self_service=self.self_service)


class CheckedJsonParser(Parser):
    """JSON bodies are refused (422, naming the field) when they hold a NUL character or nest too
    deeply (tikting.lib.untrusted); ninja turns the error into an HttpError, see on_http_error."""

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        return untrusted.loads(request.body)


class BundledSwagger(Swagger):
    """Swagger UI from ninja's bundled static files (settings.NINJA_DIR), never a CDN. ninja is not
    an installed app (it would cost every command's start-up), and ninja then falls back to its CDN
    template: this renders templates/api/docs.html, ninja's bundled page with a viewport and
    tikting's stylesheet for phones (static/css/api-docs.css)."""

    template = "api/docs.html"

    def render_page(self, request: HttpRequest, api: NinjaAPI, **kwargs: Any) -> HttpResponse:
        self.settings["url"] = self.get_openapi_url(api, kwargs)
        context = {
            "swagger_settings": json.dumps(self.settings, indent=1),
            "api": api,
            "add_csrf": _csrf_needed(api),
        }
        return render(request, self.template, context)


class TiktingAPI(NinjaAPI):
    def get_openapi_operation_id(self, operation: Operation) -> str:
        """`<module>_<function>` as ninja makes it (tikting_improvement_api_list_items), an app's
        `api` package counting as one module: splitting an api.py into a package keeps the ids
        clients were generated from."""
        module = operation.view_func.__module__
        app, sep, _rest = module.partition(".api.")
        return f"{app + '.api' if sep else module}_{operation.view_func.__name__}".replace(".", "_")


# The sections of /api/docs, named and explained as the pages name them.
TAGS = [
    ("register", "The register as a whole: its export and import."),
    ("items", "Improvement items: submit, assess, move through the seven steps, close, reopen."),
    ("indicators", "An item's indicators (baseline, target, a bound metric) and their measurements."),
    ("actions", "An item's plan: actions with an owner and a due date."),
    (
        "governance",
        "Monthly register reviews (agenda, minutes, holding and closing) and the practice's metrics.",
    ),
    ("metrics", "The ITSM metrics computed from the records (names and units below)."),
    ("records", "ITSM records of every kind: incidents, problems, changes, requests, CIs …"),
    ("signals", "The intake queue: candidates raised by the detectors and the manual channels."),
    ("cadence", "Improvement sprints: scope, board, hours logged, reviews; protected capacity."),
    ("jobs", "Background jobs and the schedule (improvement managers)."),
    ("search", "Search across register items, every record kind and people, ranked together."),
    ("notifications", "Your notifications (mark read) and your preferences per event kind."),
    ("webhooks", "Signed event deliveries to other tools, and their log (improvement managers)."),
    ("tokens", "Your own API tokens."),
    ("attachments", "Files attached to items, records, comments and review minutes."),
    ("saved views", "Named, filtered and sorted register and record lists: yours and your team's."),
]


def api_description() -> str:
    """/api/docs' introduction (Markdown): the way back to the app, how to authenticate, and the
    metrics by name and unit, as the pages show them (an operation takes the key)."""
    from tikting.metrics.definitions import DEFINITIONS

    metrics = "\n".join(
        f"| `{key}` | {definition.label} | {definition.unit} |" for key, definition in DEFINITIONS.items()
    )
    return (
        "**[← Back to tikting](/register/)** · [Metrics page](/metrics/) · "
        "[Your API tokens](/account/tokens/)\n\n"
        "The Continual Improvement Register over HTTP: everything the pages do. Authenticate with "
        "`Authorization: Bearer tkt_...` (create a token on [your tokens page](/account/tokens/)) or, "
        "in this browser, with your session (and CSRF). Conventions — errors, pagination, filters, "
        "`expected_version` conflicts — are in docs/api.md. Dates are ISO 8601, decimals unrounded.\n\n"
        "### Metrics\n\n`GET /api/metrics/{key}` and indicators bound to a metric name it by key:\n\n"
        "| key | metric | unit |\n|---|---|---|\n" + metrics
    )


api = TiktingAPI(
    title="tikting API",
    version=__version__,
    description=api_description(),
    openapi_extra={"tags": [{"name": name, "description": text} for name, text in TAGS]},
    urls_namespace="api",
    auth=[TokenAuth(), SessionAuth()],
    # Swagger UI from ninja's bundled static files: no CDN.
    docs=BundledSwagger(settings={"persistAuthorization": False}),
    parser=CheckedJsonParser(),
)


# --- Errors -------------------------------------------------------------------------------------


def validation_detail(exc: DjangoValidationError) -> list[dict[str, Any]]:
    """One {"field", "message"} entry per message; field is None for errors not tied to a field."""
    if hasattr(exc, "error_dict"):
        return [
            {"field": None if field == "__all__" else field, "message": message}
            for field, messages in exc.message_dict.items()
            for message in messages
        ]
    return [{"field": None, "message": message} for message in exc.messages]


@api.exception_handler(DjangoValidationError)
def on_validation_error(request: HttpRequest, exc: DjangoValidationError) -> HttpResponse:
    return api.create_response(request, {"detail": validation_detail(exc)}, status=422)


def problem_detail(problems: list[untrusted.Problem]) -> list[dict[str, Any]]:
    return [{"field": field, "message": message} for field, message in problems]


@api.exception_handler(HttpError)
def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    """Ninja answers 400 "Cannot parse request body" for any parser error; a body that parsed but
    is refused as untrusted input answers 422 naming its fields instead."""
    if isinstance(exc.__cause__, untrusted.UntrustedInputError):
        return api.create_response(request, {"detail": problem_detail(exc.__cause__.problems)}, status=422)
    return api.create_response(request, {"detail": str(exc)}, status=exc.status_code)


@api.exception_handler(NinjaValidationError)
def on_schema_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    """Ninja's schema errors keep their `loc`/`msg`/`type`, plus `field` and `message` like ours."""
    detail = []
    for error in exc.errors:
        error = dict(error)
        loc = [part for part in error.get("loc", ()) if part not in ("body", "payload", "query", "path")]
        error.setdefault("field", ".".join(str(part) for part in loc) or None)
        error.setdefault("message", error.get("msg", ""))
        error.pop("ctx", None)  # may hold exception objects, which do not serialise
        detail.append(error)
    return api.create_response(request, {"detail": detail}, status=422)


@api.exception_handler(Http404)
def on_not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    """404 with what was not found ("No incident with id 12."), not ninja's bare "Not Found"."""
    return api.create_response(request, {"detail": str(exc) or "Not Found"}, status=404)


@api.exception_handler(throttle.Throttled)
def on_throttled(request: HttpRequest, exc: throttle.Throttled) -> HttpResponse:
    response = api.create_response(request, {"detail": str(exc)}, status=429)
    response["Retry-After"] = str(exc.retry_after)
    return response


@api.exception_handler(PermissionDeniedError)
def on_permission_denied(request: HttpRequest, exc: PermissionDeniedError) -> HttpResponse:
    return api.create_response(request, {"detail": str(exc)}, status=403)


@api.exception_handler(ConflictError)
def on_conflict(request: HttpRequest, exc: ConflictError) -> HttpResponse:
    return api.create_response(
        request,
        {
            "detail": str(exc),
            "current_version": getattr(exc.obj, "version", None),
            "expected_version": exc.expected_version,
        },
        status=409,
    )


api.add_router("/items", "tikting.improvement.api.router")
api.add_router("/", "tikting.improvement.api.lookups")
# Your own API tokens: every role may manage them (a viewer's token still only reads).
api.add_router(
    "/tokens",
    "tikting.accounts.api.router",
    auth=[TokenAuth(self_service=True), SessionAuth(self_service=True)],
)
api.add_router("/governance/", "tikting.governance.api.router")
api.add_router("/records/", "tikting.records.api.router")
api.add_router("/metrics/", "tikting.metrics.api.router")
api.add_router("/signals/", "tikting.signals.api.router")
api.add_router("/discovery/", "tikting.discovery.api.router")
api.add_router("/cadence/", "tikting.cadence.api.router")
# Staff feedback: every signed-in user may give it, viewers included (their token still only reads
# everything else).
api.add_router(
    "/feedback",
    "tikting.signals.api.feedback_router",
    auth=[TokenAuth(self_service=True), SessionAuth(self_service=True)],
)
api.add_router("/jobs", "tikting.jobs.api.router")
api.add_router("/search", "tikting.search.api.router")
# Your own notifications and preferences: every role (reading them changes nothing of the register).
api.add_router(
    "/notifications",
    "tikting.notifications.api.router",
    auth=[TokenAuth(self_service=True), SessionAuth(self_service=True)],
)
api.add_router("/webhooks", "tikting.notifications.api.webhook_router")
api.add_router("/attachments", "tikting.attachments.api.router")
# Saved views: every role keeps its own (a viewer's filters change nothing in the register).
api.add_router(
    "/views",
    "tikting.savedviews.api.router",
    auth=[TokenAuth(self_service=True), SessionAuth(self_service=True)],
)
