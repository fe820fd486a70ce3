"""One page of a list, with what templates/includes/pagination.html needs."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, QueryDict


def page_of(request: HttpRequest, qs: QuerySet[Any], query: QueryDict | None = None) -> dict[str, Any]:
    """`page` (page=N of the request, TIKTING_PAGE_SIZE rows), `page_range` with `ellipsis`, and
    `page_query` (the request's other parameters, for the page links)."""
    paginator = Paginator(qs, settings.TIKTING_PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    params = (query if query is not None else request.GET).copy()
    params.pop("page", None)
    return {
        "page": page,
        "page_range": list(paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1)),
        "ellipsis": Paginator.ELLIPSIS,
        "page_query": params.urlencode(),
    }
