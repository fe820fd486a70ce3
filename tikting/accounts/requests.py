"""Who a request acts as, for the API routers."""

from __future__ import annotations

from django.http import HttpRequest

from .models import Actor, User


def api_actor(request: HttpRequest) -> Actor:
    """The authenticated user of an API call: `request.auth` (the token or session auth of the API
    root), else the session's user."""
    user = getattr(request, "auth", None)
    if isinstance(user, User):
        return user
    return getattr(request, "user", None)
