from django.db import connection
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseForbidden,
    HttpResponseNotFound,
    HttpResponseServerError,
    JsonResponse,
)
from django.shortcuts import render
from django.template import loader
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


@require_GET
@never_cache
def healthz(request):
    """200 when the database answers, 503 otherwise. No authentication: for load balancers."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - any database failure means unhealthy
        return JsonResponse({"status": "error", "database": str(exc.__class__.__name__)}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})


# --- Error pages (tikting/urls.py handler403/404/500) ---------------------------------------------
# In the app's layout with a way back. An htmx request gets the message as plain text: htmx
# swaps nothing on an error, and static/js/app.js shows the text (never a page inside a fragment).

FORBIDDEN = "You may not do this."
NOT_FOUND = "This page does not exist, or no longer does."
SERVER_ERROR = "Something went wrong on our side: nothing you did. Try again in a moment."


def _htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _back(request: HttpRequest) -> str:
    """The page the user came from, when it is one of ours (and not this one), else ""."""
    referer = request.headers.get("Referer", "")
    if not referer or not url_has_allowed_host_and_scheme(referer, {request.get_host()}, request.is_secure()):
        return ""
    return "" if referer.endswith(request.get_full_path()) else referer


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    message = str(exception) if exception is not None and str(exception) else FORBIDDEN
    if _htmx(request):
        return HttpResponseForbidden(message, content_type="text/plain; charset=utf-8")
    return render(request, "403.html", {"message": message, "back": _back(request)}, status=403)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _htmx(request):
        return HttpResponseNotFound(NOT_FOUND, content_type="text/plain; charset=utf-8")
    return render(request, "404.html", {"message": NOT_FOUND, "back": _back(request)}, status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    """Rendered without the request's context processors and without the database: either may be
    what failed. If even the template fails, a plain page says the same."""
    request_id = str(getattr(request, "request_id", ""))
    if _htmx(request):
        return HttpResponseServerError(SERVER_ERROR, content_type="text/plain; charset=utf-8")
    # "Try again" only where that asks the same again (a form's address may be POST only)
    path = request.path if request.method == "GET" else ""
    context = {"message": SERVER_ERROR, "request_id": request_id, "path": path}
    try:
        body = loader.get_template("500.html").render(context)  # no request: no context processors
    except Exception:  # noqa: BLE001 - the error page must answer whatever broke
        body = (
            "<!doctype html><title>Server error · tikting</title><h1>Something went wrong</h1>"
            f'<p>{SERVER_ERROR}</p><p><a href="/register/">Back to the register</a></p>'
        )
    return HttpResponseServerError(body)
