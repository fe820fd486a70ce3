"""Scheduled housekeeping, run daily by `tikting register housekeeping` or a task: deferred items
back for assessment, sustainment of closed items, measurements of bound indicators."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from tikting.accounts.models import Actor
from tikting.core import audit, events
from tikting.lib import display

from .. import choices as C
from ..models import Action, Indicator, Item, Measurement
from .common import _save_item, _set_status
from .indicators import metric_value, record_measurement
from .lifecycle import check_item_sustainment


@transaction.atomic
def wake_deferred(*, as_of: dt.date | None = None, actor: Actor = None) -> int:
    """Deferred items whose revisit date has come are back in the assessment queue."""
    count = 0
    for item in Item.objects.select_for_update().deferred_due(as_of):
        before = audit.snapshot(item)
        _set_status(item, C.Status.NEW, actor=actor, reason=f"revisit date {item.revisit_date} reached")
        _save_item(item, before, actor=actor, message="Back for assessment: revisit date reached")
        events.emit(
            events.Kind.DEFERRED_RETURNED,
            item,
            actor=actor,
            summary=f"{item.ref} {item.title}: back for assessment (revisit date reached)"[:300],
            key=f"deferred_returned:{item.pk}:{item.revisit_date}",
        )
        count += 1
    return count


@transaction.atomic
def announce_due_work(*, today: dt.date | None = None) -> dict[str, int]:
    """Announce open actions due within TIKTING_ACTION_DUE_SOON_DAYS or past their due date (to
    their owner, or the item's owner when the action has none), and items whose indicators are due
    for a measurement (Item.objects.measurement_due). Run daily: each fact carries a key, so the
    notifications app tells a person once, not every night."""
    today = today or timezone.localdate()
    soon = today + dt.timedelta(days=settings.TIKTING_ACTION_DUE_SOON_DAYS)
    counts = {"action_due": 0, "action_overdue": 0, "measurement_due": 0}
    actions = (
        Action.objects.filter(done=False, cancelled=False, due_date__isnull=False, due_date__lte=soon)
        .filter(item__status__in=C.OPEN_STATUSES)
        .select_related("item")
    )
    for action in actions:
        assert action.due_date is not None  # filtered above
        overdue = action.due_date < today
        kind = events.Kind.ACTION_OVERDUE if overdue else events.Kind.ACTION_DUE
        events.emit(
            kind,
            action.item,
            actor=None,
            summary=(
                f"{action.item.ref}: the action “{action.title}” "
                f"{'was due' if overdue else 'is due'} {display.when(action.due_date)}"
            ),
            recipients=[action.owner_id or action.item.owner_id],
            key=f"{kind}:{action.pk}:{action.due_date}",
            data={"action": action.pk, "due_date": action.due_date.isoformat()},
        )
        counts[kind] += 1
    now = timezone.make_aware(dt.datetime.combine(today, dt.time(12)))
    interval = settings.TIKTING_MEASUREMENT_INTERVAL_DAYS
    for item in Item.objects.measurement_due(now):
        events.emit(
            events.Kind.MEASUREMENT_DUE,
            item,
            actor=None,
            summary=(
                f"{item.ref} {item.title}: no measurement for "
                f"{settings.TIKTING_MEASUREMENT_INTERVAL_DAYS} days"
            ),
            recipients=[item.owner_id],
            # once per measurement interval
            key=f"measurement_due:{item.pk}:{today.toordinal() // interval}",
        )
        counts["measurement_due"] += 1
    return counts


def check_sustainment(*, today: dt.date | None = None) -> dict[str, int]:
    """check_item_sustainment for every closed item under watch; counts per resulting status."""
    counts: dict[str, int] = {}
    watched = Item.objects.closed().filter(sustainment__in=[C.Sustainment.HOLDING, C.Sustainment.SLIPPED])
    for item in watched.iterator():
        with transaction.atomic():
            status = check_item_sustainment(item, today=today)
        counts[status] = counts.get(status, 0) + 1
    return counts


def take_computed_measurements(*, today: dt.date | None = None) -> int:
    """Measure every bound indicator whose item is acting, evaluating, or closed and under watch,
    once per measurement interval: the metric over the interval that just ended (up to yesterday,
    records placed by their resolution date: metric_value). A figure that would still change (a
    record of it still open, a window not ended) is never taken: evaluation and the sustainment
    watch judge final figures only. Returns how many measurements were recorded. Run daily by
    `tikting register housekeeping`."""
    today = today or timezone.localdate()
    interval = dt.timedelta(days=settings.TIKTING_MEASUREMENT_INTERVAL_DAYS)
    watched = models.Q(item__status__in=[C.Status.ACTION, C.Status.EVALUATION]) | models.Q(
        item__status=C.Status.CLOSED, item__control_until__gte=today
    )
    taken = 0
    bound = Indicator.objects.exclude(metric_key="").filter(watched).select_related("item")
    for indicator in bound:
        last = (
            indicator.measurements.filter(source=Measurement.Source.COMPUTED).order_by("-measured_at").first()
        )
        if last is not None and timezone.localdate(last.measured_at) > today - interval:
            continue
        end = today - dt.timedelta(days=1)  # today has not ended: its figure would still change
        start = end - interval + dt.timedelta(days=1)
        figure = metric_value(indicator.metric_key, indicator.metric_scope, start, end)
        if figure.value is None or not figure.complete:
            continue  # nothing to measure, or an incomplete figure: tried again tomorrow
        record_measurement(
            indicator,
            actor=None,
            value=figure.value,
            measured_at=min(timezone.now(), timezone.make_aware(dt.datetime.combine(today, dt.time(23, 59)))),
            note=(
                f"{display.when(start)} to {display.when(end)} by {figure.date_field} date, "
                f"{figure.records} records"
            ),
            source=Measurement.Source.COMPUTED,
        )
        taken += 1
    return taken
