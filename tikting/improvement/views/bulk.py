"""The register list's bulk actions (tikting/improvement/bulk.py): the selected rows, one action,
a report of what was done and what was refused and why, item by item; or the selected rows as CSV."""

from __future__ import annotations

import tempfile
from io import TextIOWrapper

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from tikting.core.bulk import parse_ids
from tikting.core.exceptions import PermissionDeniedError

from .. import bulk as B
from .. import io
from .. import permissions as P
from ..models import Item
from ..permissions import can_view


def export_selected(request: HttpRequest, ids: list[int]) -> FileResponse:
    """The selected items in the register's CSV (the columns `GET /api/items/export` writes)."""
    raw = tempfile.SpooledTemporaryFile(max_size=8 << 20)  # noqa: SIM115
    text = TextIOWrapper(raw, encoding="utf-8", newline="")
    io.export_items(text, fmt="csv", qs=Item.objects.visible_to(request.user).filter(pk__in=ids))
    text.flush()
    text.detach()
    raw.seek(0)
    response = FileResponse(raw, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="tikting-register-selected.csv"'
    return response


@login_required
@require_POST
def bulk(request: HttpRequest) -> HttpResponse | FileResponse:
    action = request.POST.get("action", "")
    if action == "export":
        if not can_view(request.user):
            raise PermissionDenied("You may not read the register.")
    elif not P.can_submit(request.user):
        raise PermissionDenied("You may not change register items: your role is read-only.")
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, {request.get_host()}, require_https=False):
        back = ""
    back = back or reverse("improvement:list")
    try:
        ids = parse_ids(request.POST.getlist("ids"))
        if action == "export":
            return export_selected(request, ids)
        result = B.run(action, ids, request.POST.get(action, ""), actor=request.user)
    except PermissionDeniedError as exc:
        raise PermissionDenied(str(exc)) from exc
    except ValidationError as exc:
        errors = [m for msgs in exc.message_dict.values() for m in msgs]
        return render(request, "bulk/result.html", {"errors": errors, "back": back}, status=400)
    # Refused for every item because of who asks: the answer is a refusal, with the report.
    forbidden = (
        not result.done and result.refused and all(o.reason.startswith("You may not") for o in result.refused)
    )
    return render(
        request,
        "bulk/result.html",
        {"result": result, "back": back},
        status=403 if forbidden else 200,
    )


urlpatterns = [path("bulk/", bulk, name="bulk")]
