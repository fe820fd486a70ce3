import uuid
from contextvars import ContextVar

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
