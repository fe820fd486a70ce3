"""GET /api/search: the header's search as data (docs/search.md, docs/api.md)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from django.http import HttpRequest
from ninja import Field, Router, Schema

from tikting.accounts.requests import api_actor
from tikting.core.api import errors
from tikting.core.exceptions import PermissionDeniedError
from tikting.records.registry import can_view_records

from . import services

router = Router(tags=["search"])


class HitOut(Schema):
    kind: str
    kind_label: str
    ref: str
    title: str
    detail: str
    url: str
    when: dt.datetime | dt.date | None
    excerpt: str
    score: float


class KindCountOut(Schema):
    kind: str
    label: str
    count: int
    capped: bool = Field(description="At least `count`: only the most recent matches of a kind are looked at")


class SearchOut(Schema):
    query: str
    kind: str
    total: int
    capped: bool
    kinds: list[KindCountOut]
    results: list[HitOut]


@router.get(
    "",
    response={200: SearchOut, **errors(403)},
    summary="Search items, records and people",
    description=(
        "Every word of `q` must appear in a result's reference, title or text; results of every kind "
        "are ranked together (docs/search.md). `kind` narrows to one kind (`item`, a record kind's "
        "slug, `person`): an unknown kind is 422 naming the field."
    ),
)
def search(
    request: HttpRequest,
    q: Annotated[str, Field(max_length=1000)],
    kind: Annotated[str, Field(max_length=40)] = "",
    limit: Annotated[int, Field(ge=1, le=services.MAX_LIMIT)] = services.DEFAULT_LIMIT,
) -> dict[str, Any]:
    if not can_view_records(api_actor(request)):
        raise PermissionDeniedError("You may not search: your account has no role that reads the register.")
    found = services.search(q, kind=kind, limit=limit)
    return {
        "query": found.query.text,
        "kind": found.kind,
        "total": found.total,
        "capped": found.capped,
        "kinds": [
            {"kind": c.key, "label": c.label, "count": c.count, "capped": c.capped} for c in found.counts
        ],
        "results": [
            {
                "kind": hit.source.key,
                "kind_label": hit.source.label,
                "ref": hit.candidate.ref,
                "title": hit.candidate.title,
                "detail": hit.candidate.detail,
                "url": hit.candidate.url,
                "when": hit.candidate.when,
                "excerpt": "".join(s.text for s in hit.excerpt),
                "score": hit.score,
            }
            for hit in found.hits
        ],
    }
