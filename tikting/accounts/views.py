"""Account pages: the user's API tokens."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from .forms import TokenForm
from .services import issue_token, own_tokens, revoke_token


@login_required
@require_http_methods(["GET", "POST"])
def tokens(request: HttpRequest) -> HttpResponse:
    """List the user's tokens and create one. The raw value is rendered in this response only."""
    assert request.user.is_authenticated  # login_required
    form = TokenForm(request.POST or None)
    created = raw = None
    if request.method == "POST" and form.is_valid():
        created, raw = issue_token(actor=request.user, name=form.cleaned_data["name"])
        form = TokenForm()
    context = {"form": form, "tokens": own_tokens(request.user), "created": created, "raw_token": raw}
    response = render(request, "accounts/tokens.html", context)
    if raw:
        # The page holds a secret: keep it out of browser and proxy caches.
        response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    assert request.user.is_authenticated  # login_required
    token = get_object_or_404(own_tokens(request.user), pk=pk)
    revoke_token(token, actor=request.user)
    messages.success(request, f"Token “{token.name}” revoked: requests using it are refused from now on.")
    return redirect("accounts:tokens")
