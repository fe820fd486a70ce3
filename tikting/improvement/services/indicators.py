"""Services of indicators and their measurements, and of indicators bound to a tikting metric
(baseline and measurements computed from the records)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, NamedTuple

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max, Min
from django.utils import timezone

from tikting.accounts.models import Actor
from tikting.core import audit
from tikting.lib import display

from .. import bounds
from .. import choices as C
from .. import permissions as P
from ..models import Indicator, Item, Measurement
from .common import (
    INDICATOR_FIELDS,
    _check_fields,
    _check_worker,
    _check_writable,
    _decimal,
    _lock,
    _pk,
    _touch,
    _user,
)
from .lifecycle import check_item_sustainment


def _clean_indicator_values(data: dict[str, Any]) -> dict[str, Any]:
    for field in ("baseline_value", "target_value", "min_value", "max_value"):
        if field in data:
            data[field] = _decimal(data[field], field)
    return data


def _check_range(indicator: Indicator) -> None:
    """Baseline, target and every measurement within the indicator's stated range (bounds)."""
    errors = bounds.range_errors(
        min_value=indicator.min_value,
        max_value=indicator.max_value,
        unit=indicator.unit,
        values={"baseline_value": indicator.baseline_value, "target_value": indicator.target_value},
    )
    if not errors and indicator.pk:
        lowest, highest = (
            indicator.measurements.aggregate(low=Min("value"), high=Max("value"))[k] for k in ("low", "high")
        )
        for field, value in (("min_value", lowest), ("max_value", highest)):
            if value is not None and not indicator.in_range(value):
                errors[field] = (
                    f"A measurement of {display.number(value)} lies outside this range: the range must "
                    "hold every measurement taken."
                )
    bounds.check(errors)


def _state_range(indicator: Indicator) -> None:
    """An indicator created (or bound) without a range takes the one its unit implies."""
    if indicator.min_value is None and indicator.max_value is None:
        indicator.min_value, indicator.max_value = bounds.infer_range(indicator.unit)


@transaction.atomic
def add_indicator(item: Item, *, actor: Actor, **data: Any) -> Indicator:
    """An indicator of the item (INDICATOR_FIELDS); a baseline given without a date is dated today,
    a range left empty follows the unit (bounds.infer_range); baseline and target lie within it."""
    P.check(actor, P.can_edit, item, what=f"add indicators to {item.ref}")
    _check_writable(item, "add indicators to it")
    _check_fields(data, INDICATOR_FIELDS)
    _check_worker(data.get("owner"))
    indicator = Indicator(item=item, **_clean_indicator_values(dict(data)))
    _state_range(indicator)
    _check_range(indicator)
    if indicator.baseline_value is not None and not indicator.baseline_date:
        indicator.baseline_date = timezone.localdate()
    if indicator.baseline_value is not None and not indicator.baseline_method:
        indicator.baseline_method = "manual"
    indicator.full_clean()
    indicator.save()
    audit.record(
        indicator, action="create", actor=actor, root=item, changes=audit.diff({}, audit.snapshot(indicator))
    )
    _touch(item)
    return indicator


@transaction.atomic
def update_indicator(
    indicator: Indicator, *, actor: Actor, expected_version: int | None = None, **changes: Any
) -> Indicator:
    """Change the fields given; ConflictError when the indicator changed since `expected_version`.
    Baseline, target and the measurements taken must stay within the range."""
    P.check(actor, P.can_edit, indicator.item, what=f"edit indicators of {indicator.item.ref}")
    _check_fields(changes, INDICATOR_FIELDS)
    if "owner" in changes and _pk(changes["owner"]) != indicator.owner_id:
        _check_worker(changes["owner"])
    locked = _lock(Indicator, indicator, expected_version)
    _check_writable(locked.item, "edit its indicators")
    before = audit.snapshot(locked)
    for name, value in _clean_indicator_values(dict(changes)).items():
        setattr(locked, name, value)
    if "baseline_value" in changes and locked.baseline_value is not None and "baseline_date" not in changes:
        locked.baseline_date = locked.baseline_date or timezone.localdate()
    _check_range(locked)
    locked.version += 1
    locked.full_clean()
    locked.save()
    diff = audit.diff(before, audit.snapshot(locked))
    diff.pop("updated_at", None)
    audit.record(locked, action="update", actor=actor, root=locked.item, changes=diff)
    _touch(locked.item)
    return locked


@transaction.atomic
def remove_indicator(indicator: Indicator, *, actor: Actor) -> None:
    """Delete the indicator and its measurements; the audit row keeps what it was."""
    item = indicator.item
    P.check(actor, P.can_edit, item, what=f"remove indicators of {item.ref}")
    _check_writable(item, "remove its indicators")
    audit.record(
        indicator, action="delete", actor=actor, root=item, changes=audit.diff(audit.snapshot(indicator), {})
    )
    indicator.delete()
    _touch(item)


@transaction.atomic
def record_measurement(
    indicator: Indicator,
    *,
    actor: Actor,
    value: Any,
    measured_at: dt.datetime | None = None,
    note: str = "",
    source: str = Measurement.Source.MANUAL,
) -> Measurement:
    """A measurement of the indicator, within its range and dated neither in the future nor
    decades back (bounds.measurement_errors). On a closed item only sustainment measurements are
    taken: while it is watched, dated after its closure; the item is then checked again."""
    item = Item.objects.get(pk=indicator.item_id)
    P.check(actor, P.can_measure, indicator, what=f"record measurements of {indicator.name} ({item.ref})")
    number = _decimal(value, "value")
    if number is None:
        raise ValidationError({"value": "A measurement needs a value."})
    measured_at = measured_at or timezone.now()
    _check_sustainment_measurement(item, measured_at)
    bounds.check(bounds.measurement_errors(indicator, item, value=number, measured_at=measured_at))
    measurement = Measurement(
        indicator=indicator,
        value=number,
        measured_at=measured_at,
        note=note or "",
        source=source,
        recorded_by=_user(actor),
    )
    measurement.full_clean()
    measurement.save()
    audit.record(
        measurement,
        action="create",
        actor=actor,
        root=item,
        changes={"value": [None, display.number(number)], "indicator": [None, indicator.name]},
        message=f"Measured {indicator.name}: {display.number(number)}",
    )
    _touch(item)
    if item.status == C.Status.CLOSED and item.sustainment in {C.Sustainment.HOLDING, C.Sustainment.SLIPPED}:
        check_item_sustainment(item)
    return measurement


def _check_sustainment_measurement(item: Item, measured_at: dt.datetime) -> None:
    """A closed item takes measurements only for its sustainment watch: while under watch, dated
    after it closed (an earlier one would rewrite the value it reached). Rejected items take none."""
    if not item.read_only:
        return
    watched = item.status == C.Status.CLOSED and item.sustainment in {
        C.Sustainment.HOLDING,
        C.Sustainment.SLIPPED,
    }
    if not watched:
        _check_writable(item, "record measurements of it (it is not watched for sustainment)")
    assert item.closed_at is not None  # a closed item under watch
    if measured_at <= item.closed_at:
        raise ValidationError(
            {
                "measured_at": f"{item.ref} closed on {display.when(item.closed_at)}: "
                "a sustainment measurement is dated after the closure."
            }
        )


# --- Indicators bound to a tikting metric ------------------------------------------------------


class MetricFigure(NamedTuple):
    """A bound indicator's figure: the metric over a window (value, count), whether it is final."""

    value: Decimal | None  # to the 4 decimals a baseline or a measurement keeps
    records: int  # how many records are behind it (not `count`: a tuple has a count() method)
    complete: bool  # no record of it still open and its window has ended: it will not change
    date_field: str  # which date placed the records in the window


def binding_date_field(metric_key: str) -> str:
    """Which date places records in a bound indicator's window: their resolution (closure where a
    kind has none; survey responses and the backlog their own). By opening date, a recent window
    leaves out its records still open and every record opened before it, so its value looks
    better than it is and still changes; by resolution date a window that has ended holds only
    final figures (docs/metrics.md, "Incomplete periods")."""
    from tikting.metrics.definitions import get_definition

    accepted = get_definition(metric_key).date_fields
    return next((name for name in ("resolved", "closed") if name in accepted), "opened")


def metric_value(metric_key: str, scope: dict[str, Any], start: dt.date, end: dt.date) -> MetricFigure:
    """The metric over [start, end] (local dates, on binding_date_field) within `scope` (the
    metrics engine's filters: service, priority, group, category, ci, source, status)."""
    from tikting.metrics.engine import compute

    date_field = binding_date_field(metric_key)
    filters = {**scope, "date_from": start.isoformat(), "date_to": end.isoformat()}
    total = compute(metric_key, filters=filters, date_field=date_field).total
    value = None if total.value is None else Decimal(str(round(total.value, 4)))
    return MetricFigure(value, total.count, not total.incomplete, date_field)


@transaction.atomic
def bind_indicator(
    indicator: Indicator,
    *,
    actor: Actor,
    metric_key: str,
    scope: dict[str, Any] | None = None,
    window_start: dt.date,
    window_end: dt.date,
    expected_version: int | None = None,
) -> Indicator:
    """Bind an indicator to a tikting metric and scope, and compute its baseline over a window.

    The baseline comes from the records (e.g. MTTR of service E-mail, priority 2, of the incidents
    resolved in the last 90 days: binding_date_field), never typed in; its method says which
    metric, scope, window, date and how many records, and when the window had not ended yet (its
    figure as of now). Unit and direction follow the metric.
    Raises ValidationError naming `metric_key`, a scope filter or `window_start` when they cannot be
    used, or when the window holds no records.
    """
    from tikting.metrics.definitions import get_definition

    item = indicator.item
    P.check(actor, P.can_edit, item, what=f"edit indicators of {item.ref}")
    _check_writable(item, "bind its indicators")
    scope = {k: v for k, v in (scope or {}).items() if v not in (None, "")}
    if window_start > window_end:
        raise ValidationError({"window_start": "The window starts after it ends."})
    try:
        definition = get_definition(metric_key)
    except ValidationError as exc:
        raise ValidationError({"metric_key": exc.messages}) from exc
    figure = metric_value(metric_key, scope, window_start, window_end)
    value, count = figure.value, figure.records
    if value is None:
        raise ValidationError(
            {
                "window_start": f"No records in scope between {display.when(window_start)} and "
                f"{display.when(window_end)}: no baseline."
            }
        )
    described = ", ".join(f"{k} {v}" for k, v in sorted(scope.items())) or "all records"
    locked = _lock(Indicator, indicator, expected_version)
    before = audit.snapshot(locked)
    locked.metric_key = metric_key
    locked.metric_scope = scope
    locked.unit = {"hours": "h"}.get(definition.unit, definition.unit)[:30]
    if definition.direction in C.Direction.values:
        locked.direction = definition.direction
    _state_range(locked)
    locked.baseline_value = value
    locked.baseline_date = window_end
    as_of = "" if figure.complete else f" (window not ended: as of {display.when(timezone.now())})"
    locked.baseline_method = (
        f"computed: {definition.label}, {described}, {display.when(window_start)} to "
        f"{display.when(window_end)} by {figure.date_field} date{as_of}, {count} records"
    )[:300]
    _check_range(locked)
    locked.version += 1
    locked.full_clean()
    locked.save()
    diff = audit.diff(before, audit.snapshot(locked))
    diff.pop("updated_at", None)
    audit.record(
        locked, action="update", actor=actor, root=locked.item, changes=diff, message="Bound to a metric"
    )
    _touch(locked.item)
    return locked
