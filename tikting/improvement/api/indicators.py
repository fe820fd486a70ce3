"""Indicators of an item (listed and added under /items/{id}, edited under /indicators/{id}),
their measurements, and their binding to a metric."""

from django.http import HttpRequest
from ninja import Status
from ninja.pagination import paginate

from tikting.core.api import errors

from .. import services as S
from .common import (
    Page,
    _actor,
    _aware,
    _get_indicator,
    _get_item,
    _indicators_queryset,
    _resolve,
    lookups,
    router,
)
from .inputs import IndicatorBind, IndicatorCreate, IndicatorPatch, MeasurementIn
from .schemas import Id, IndicatorOut, MeasurementOut

# --- Indicators and measurements ----------------------------------------------------------------


@router.get(
    "/{item_id}/indicators",
    response={200: list[IndicatorOut], **errors(404, 422)},
    summary="Indicators of an item",
)
def list_indicators(request: HttpRequest, item_id: Id):
    item = _get_item(request, item_id)
    return _indicators_queryset().filter(item=item)


@router.post(
    "/{item_id}/indicators",
    response={201: IndicatorOut, **errors(403, 404, 422)},
    summary="Add an indicator",
)
def add_indicator(request: HttpRequest, item_id: Id, payload: IndicatorCreate):
    item = _get_item(request, item_id)
    indicator = S.add_indicator(item, actor=_actor(request), **_resolve(payload.dict(exclude_unset=True)))
    return Status(201, _indicators_queryset().get(pk=indicator.pk))


@lookups.get(
    "/indicators/{indicator_id}", response={200: IndicatorOut, **errors(404, 422)}, tags=["indicators"]
)
def get_indicator(request: HttpRequest, indicator_id: Id):
    return _indicators_queryset().get(pk=_get_indicator(request, indicator_id).pk)


@lookups.patch(
    "/indicators/{indicator_id}",
    response={200: IndicatorOut, **errors(403, 404, 409, 422)},
    tags=["indicators"],
)
def update_indicator(request: HttpRequest, indicator_id: Id, payload: IndicatorPatch):
    """Change baseline, target and the other fields sent; `expected_version` is required."""
    indicator = _get_indicator(request, indicator_id)
    data = payload.dict(exclude_unset=True)
    expected = data.pop("expected_version")
    S.update_indicator(indicator, actor=_actor(request), expected_version=expected, **_resolve(data))
    return _indicators_queryset().get(pk=indicator_id)


@lookups.post(
    "/indicators/{indicator_id}/bind",
    response={200: IndicatorOut, **errors(403, 404, 409, 422)},
    tags=["indicators"],
    summary="Bind an indicator to a metric",
)
def bind_indicator(request: HttpRequest, indicator_id: Id, payload: IndicatorBind):
    """Compute the baseline from the records (metric, scope, window); measurements are then taken
    from the records each interval while the item acts, and during its control period."""
    indicator = _get_indicator(request, indicator_id)
    data = payload.dict()
    S.bind_indicator(indicator, actor=_actor(request), **data)
    return _indicators_queryset().get(pk=indicator_id)


@lookups.delete(
    "/indicators/{indicator_id}", response={204: None, **errors(403, 404, 422)}, tags=["indicators"]
)
def remove_indicator(request: HttpRequest, indicator_id: Id):
    S.remove_indicator(_get_indicator(request, indicator_id), actor=_actor(request))
    return Status(204, None)


@lookups.get(
    "/indicators/{indicator_id}/measurements",
    response={200: list[MeasurementOut], **errors(404, 422)},
    tags=["indicators"],
)
@paginate(Page)
def list_measurements(request: HttpRequest, indicator_id: Id):
    """Measurements, oldest first (the order of a chart)."""
    indicator = _get_indicator(request, indicator_id)
    return indicator.measurements.select_related("recorded_by").order_by("measured_at", "id")


@lookups.post(
    "/indicators/{indicator_id}/measurements",
    response={201: MeasurementOut, **errors(403, 404, 422)},
    tags=["indicators"],
)
def record_measurement(request: HttpRequest, indicator_id: Id, payload: MeasurementIn):
    indicator = _get_indicator(request, indicator_id)
    data = payload.dict()
    data["measured_at"] = _aware(data["measured_at"])
    return Status(201, S.record_measurement(indicator, actor=_actor(request), **data))
