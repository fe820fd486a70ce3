"""Saved views over HTTP (/api/views): yours and those shared with your team; only the owner
changes or removes one. Every role may save views (mounted as self-service in tikting/api.py)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from ninja.errors import HttpError

from tikting.core.api import StrictBody, UserBrief, errors

from . import services as S
from .models import SavedView

router = Router(tags=["saved views"])


class ViewOut(Schema):
    id: int
    name: str
    list_key: str = Field(description="'register' or 'records:<kind>'")
    query: str = Field(description="The list's query string (filters and sort)")
    url: str
    shared: bool
    team: str | None
    owner: UserBrief
    mine: bool
    version: int

    @staticmethod
    def resolve_url(obj: SavedView) -> str:
        return S.url_of(obj)

    @staticmethod
    def resolve_team(obj: SavedView) -> str | None:
        return obj.team.name if obj.team else None


class ViewIn(StrictBody):
    name: str = Field(max_length=200)
    list_key: str = Field(max_length=60)
    query: str = Field("", max_length=4000)
    shared: bool = False


class ViewPatch(StrictBody):
    name: str | None = Field(None, max_length=200)
    query: str | None = Field(None, max_length=4000)
    shared: bool | None = None
    expected_version: int | None = None


def _actor(request: HttpRequest) -> Any:
    return request.auth  # type: ignore[attr-defined]


def _out(request: HttpRequest, view: SavedView) -> SavedView:
    view.mine = view.owner_id == _actor(request).pk  # type: ignore[attr-defined]
    return view


def _get(request: HttpRequest, view_id: int) -> SavedView:
    view = S.visible_to(_actor(request)).filter(pk=view_id).first()
    if view is None:
        raise HttpError(404, "Not found.")
    return view


@router.get("", response={200: list[ViewOut], **errors()}, summary="List your and your team's views")
def list_views(request: HttpRequest, list_key: str = ""):
    qs = S.visible_to(_actor(request))
    if list_key:
        qs = qs.filter(list_key=list_key)
    return [_out(request, v) for v in qs]


@router.post("", response={201: ViewOut, **errors(403)}, summary="Save a view")
def create_view(request: HttpRequest, payload: ViewIn):
    view = S.create_view(actor=_actor(request), **payload.dict())
    return Status(201, _out(request, view))


@router.get("/{view_id}", response={200: ViewOut, **errors(404)}, summary="One view")
def get_view(request: HttpRequest, view_id: int):
    return _out(request, _get(request, view_id))


@router.patch("/{view_id}", response={200: ViewOut, **errors(403, 404, 409)}, summary="Change your view")
def update_view(request: HttpRequest, view_id: int, payload: ViewPatch):
    data = payload.dict(exclude_unset=True)
    expected = data.pop("expected_version", None)
    changes = {k: v for k, v in data.items() if v is not None}
    view = S.update_view(_get(request, view_id), actor=_actor(request), expected_version=expected, **changes)
    return _out(request, view)


@router.delete("/{view_id}", response={204: None, **errors(403, 404)}, summary="Remove your view")
def delete_view(request: HttpRequest, view_id: int):
    S.delete_view(_get(request, view_id), actor=_actor(request))
    return Status(204, None)
