import uuid
from collections.abc import Callable
from contextvars import ContextVar
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.http.response import HttpResponseRedirectBase
from django.shortcuts import render, resolve_url
from django.utils.http import url_has_allowed_host_and_scheme

from tikting.lib import untrusted

SAFE = {"GET", "HEAD", "OPTIONS", "TRACE"}
_request_id: ContextVar[str | None] = ContextVar("tikting_request_id", default=None)


def current_request_id() -> str | None:
    """The id of the HTTP request being served (None outside a request: CLI, tasks)."""
    return _request_id.get()


class RequestIdMiddleware:
    """Gives each request an id, stored on every audit row it writes and echoed in a header."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex
        request_id = request_id[:64]
        token = _request_id.set(request_id)
        request.request_id = request_id
        try:
            response = self.get_response(request)
        finally:
            _request_id.reset(token)
        response["X-Request-Id"] = request_id
        return response


class RejectNulMiddleware:
    """Refuses a NUL character (U+0000) in the path, a query string or a form body (urlencoded)
    before any view reads it: PostgreSQL cannot store it and no legitimate input holds one.

    The API (/api/) answers 422 in its error shape, naming the parameter; pages answer 400 with a
    plain message. JSON bodies are checked by the API's parser, multipart fields by the forms'
    own validators (Django's CharField refuses NUL), imported files by their readers.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        field = self.nul_field(request)
        if field is None:
            return self.get_response(request)
        if request.path.startswith("/api/"):
            detail = [{"field": field or None, "message": untrusted.NUL_MESSAGE}]
            return JsonResponse({"detail": detail}, status=422)
        where = f"the field “{field}”" if field else "the address"
        message = f"{untrusted.NUL_MESSAGE} Remove it from {where} and try again."
        return render(request, "400.html", {"message": message}, status=400)

    @staticmethod
    def nul_field(request: HttpRequest) -> str | None:
        """The parameter holding a NUL ("" for the path itself), or None when there is none."""
        if untrusted.NUL in request.path:
            return ""
        data = [request.GET]
        if request.content_type == "application/x-www-form-urlencoded" and request.method == "POST":
            data.append(request.POST)
        for query in data:
            for key, values in query.lists():
                if untrusted.NUL in key or any(untrusted.NUL in value for value in values):
                    return untrusted.shown(key)
        return None


class SignInAgainMiddleware:
    """A session that ended while a page was open: back to that page after signing in, never to a
    fragment or a POST-only address (which would answer 405), never a login form swapped into a
    fragment.

    `login_required` answers a request without a session with a redirect to the login page, `next`
    being the address asked for. For an htmx request, or a form posted, that address is not a page:
    the redirect is replaced by one whose `next` is the page the user was on (htmx's
    HX-Current-URL, or the Referer of a form), and an htmx request gets 401 with HX-Redirect, so the
    whole window goes to the login page. static/js/app.js keeps what the user typed meanwhile.
    """

    MESSAGE = "Your session has ended: sign in again to go on."

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        htmx = request.headers.get("HX-Request") == "true"
        if not isinstance(response, HttpResponseRedirectBase) or not (htmx or request.method not in SAFE):
            return response
        login = resolve_url(settings.LOGIN_URL)
        target = urlsplit(response.get("Location", ""))  # HttpResponseClientRedirect has none
        if target.netloc or target.path != login:
            return response
        url = f"{login}?{urlencode({'next': self.page_of(request, htmx)})}"
        if not htmx:
            return HttpResponseRedirect(url)
        answer = HttpResponse(self.MESSAGE, status=401, content_type="text/plain; charset=utf-8")
        answer["HX-Redirect"] = url
        return answer

    @staticmethod
    def page_of(request: HttpRequest, htmx: bool) -> str:
        """The page the request was made from (this site's only), else the register."""
        page = request.headers.get("HX-Current-URL" if htmx else "Referer", "")
        if page and url_has_allowed_host_and_scheme(page, {request.get_host()}, request.is_secure()):
            parts = urlsplit(page)
            if parts.path and parts.path != resolve_url(settings.LOGIN_URL):
                return parts.path + (f"?{parts.query}" if parts.query else "")
        return "/"
