"""Items: list (filtered, sorted, paged), submit, rank the backlog, get, edit."""

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from ninja import Query, Status
from ninja.pagination import paginate

from tikting.core.api import errors

from .. import filtersets
from .. import services as S

# /export and /import are registered before /{item_id}, which would otherwise take them for an id.
from . import import_export  # noqa: F401
from .common import Page, _actor, _detail, _get_item, _items, _resolve, router
from .inputs import ItemCreate, ItemFilters, ItemPatch, RankIn
from .schemas import Id, ItemDetail, ItemOut, RankOut


@router.get("", response={200: list[ItemOut], **errors(422)}, summary="List items")
@paginate(Page)
def list_items(request: HttpRequest, filters: Query[ItemFilters]):
    """Filter, sort and page the register. Several values of one filter are OR-ed (repeat the
    parameter or separate values with commas); different filters are AND-ed. An unknown value
    answers 422 naming the filter."""
    params = filters.dict(exclude={"sort"})
    qs = filtersets.filter_items(_items(request), params, user=_actor(request))
    qs = filtersets.sort_items(qs, filters.sort)
    return qs.select_related("service", "owner")


@router.post("", response={201: ItemDetail, **errors(403, 422)}, summary="Submit an item")
def create_item(request: HttpRequest, payload: ItemCreate):
    """Submit an opportunity; it starts as `new`, to be assessed. Contributors and above."""
    data = _resolve(payload.dict(exclude_unset=True))
    item = S.create_item(actor=_actor(request), **data)
    return Status(201, _detail(request, item.pk))


@router.post("/rank", response={200: RankOut, **errors(403, 422)}, summary="Rank the backlog")
def rank_items(request: HttpRequest, payload: RankIn):
    """Give the listed items ranks 1..n in that order (managers)."""
    visible = set(_items(request).filter(pk__in=payload.ids).values_list("pk", flat=True))
    missing = [pk for pk in payload.ids if pk not in visible]
    if missing:
        raise ValidationError({"ids": f"Unknown item ids: {missing[:10]}"})
    if len(set(payload.ids)) != len(payload.ids):
        raise ValidationError({"ids": "Each item may appear once."})
    return {"changed": S.rank_items(payload.ids, actor=_actor(request))}


@router.get("/{item_id}", response={200: ItemDetail, **errors(404, 422)}, summary="Get an item")
def get_item(request: HttpRequest, item_id: Id):
    return _detail(request, item_id)


@router.patch("/{item_id}", response={200: ItemDetail, **errors(403, 404, 409, 422)}, summary="Edit an item")
def update_item(request: HttpRequest, item_id: Id, payload: ItemPatch):
    """Change the fields sent (others are left as they are). `expected_version` is required:
    a stale one answers 409 with the current version."""
    item = _get_item(request, item_id)
    data = payload.dict(exclude_unset=True)
    expected = data.pop("expected_version")
    S.update_item(item, actor=_actor(request), expected_version=expected, **_resolve(data))
    return _detail(request, item_id)
