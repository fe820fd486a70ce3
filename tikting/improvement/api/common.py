"""The two routers, paging, and the helpers every handler uses: the actor, visible items, the
records a path or a body names."""

import datetime as dt
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import OuterRef, Prefetch, Subquery
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Field, Router, Schema
from ninja.pagination import LimitOffsetPagination

from tikting.accounts.models import User
from tikting.cmdb.models import Service

from ..models import Action, Indicator, Item, Measurement

router = Router(tags=["items"])
lookups = Router(tags=["register"])

MAX_PAGE = 500


class Page(LimitOffsetPagination):
    """limit/offset paging; the response carries `items` and the total `count`."""

    class Input(Schema):
        limit: int = Field(settings.TIKTING_PAGE_SIZE, ge=1, le=MAX_PAGE)
        offset: int = Field(0, ge=0, le=2**31 - 1)


# --- Helpers ------------------------------------------------------------------------------------


def _actor(request: HttpRequest) -> User:
    return request.auth  # type: ignore[attr-defined,return-value]


def _items(request: HttpRequest):
    return Item.objects.visible_to(_actor(request))


def _indicators_queryset():
    latest = Measurement.objects.filter(indicator=OuterRef("pk")).order_by("-measured_at", "-id")
    return Indicator.objects.select_related("owner").annotate(
        latest_value=Subquery(
            latest.values("value")[:1], output_field=models.DecimalField(max_digits=16, decimal_places=4)
        ),
        latest_measured_at=Subquery(latest.values("measured_at")[:1]),
    )


def _get_item(request: HttpRequest, item_id: int) -> Item:
    return get_object_or_404(_items(request), pk=item_id)


def _detail(request: HttpRequest, item_id: int) -> Item:
    """The item with its children prefetched: a fixed number of queries whatever it holds."""
    qs = _items(request).select_related("service", "owner", "parent", "submitted_by", "assessed_by")
    qs = qs.prefetch_related(
        Prefetch("indicators", queryset=_indicators_queryset()),
        Prefetch("actions", queryset=Action.objects.select_related("owner")),
        Prefetch("children", queryset=Item.objects.order_by("id")),
    )
    return get_object_or_404(qs, pk=item_id)


def _get_indicator(request: HttpRequest, indicator_id: int) -> Indicator:
    qs = Indicator.objects.filter(item__in=_items(request)).select_related("item")
    return get_object_or_404(qs, pk=indicator_id)


def _get_action(request: HttpRequest, action_id: int) -> Action:
    qs = Action.objects.filter(item__in=_items(request)).select_related("item", "owner")
    return get_object_or_404(qs, pk=action_id)


def _lookup(model: type[models.Model], pk: int | None, field: str, **filters: Any) -> Any:
    """The record an id in a request body points at, or a 422 naming the field."""
    if pk is None:
        return None
    obj = model._default_manager.filter(pk=pk, **filters).first()
    if obj is None:
        raise ValidationError({field: f"No {model._meta.verbose_name} with id {pk}."})
    return obj


def _resolve(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Replace the ids of service / owner / parent in a body with the records."""
    targets = {"service": (Service, {}), "owner": (User, {"is_active": True}), "parent": (Item, {})}
    for field, (model, filters) in targets.items():
        if field in data:
            data[field] = _lookup(model, data[field], f"{prefix}{field}", **filters)
    return data


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and timezone.is_naive(value):
        return timezone.make_aware(value)
    return value
