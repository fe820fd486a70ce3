import uuid
from collections.abc import Callable
from contextvars import ContextVar

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from tikting.lib import untrusted

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
