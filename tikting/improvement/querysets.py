"""Reusable selections of register items: visibility, governance flags, filters."""

from __future__ import annotations

import datetime as dt
from typing import Self

from django.apps import apps
from django.conf import settings
from django.db import models
from django.db.models import Exists, OuterRef, Q, Subquery
from django.utils import timezone

from tikting.accounts.models import Actor

from . import choices as C


def _measurements() -> models.Manager:
    """Measurement's manager, looked up through the app registry: the models import this module."""
    return apps.get_model("improvement", "Measurement")._default_manager


class ItemQuerySet(models.QuerySet):
    def visible_to(self, user: Actor) -> Self:
        """Every signed-in user with a role may read the register; anonymous users see nothing."""
        if user is None or not user.is_authenticated or not user.is_active:
            return self.none()
        return self

    def open(self) -> Self:
        return self.filter(status__in=C.OPEN_STATUSES)

    def active(self) -> Self:
        return self.filter(status__in=C.ACTIVE_STATUSES)

    def closed(self) -> Self:
        return self.filter(status=C.Status.CLOSED)

    def to_assess(self) -> Self:
        return self.filter(status=C.Status.NEW)

    def blocked(self) -> Self:
        return self.open().filter(blocked=True)

    def overdue(self, today: dt.date | None = None) -> Self:
        today = today or timezone.localdate()
        return self.open().filter(target_date__lt=today)

    def due_soon(self, today: dt.date | None = None) -> Self:
        today = today or timezone.localdate()
        return self.open().filter(due_soon_from__lte=today, target_date__gte=today)

    def stale(self, now: dt.datetime | None = None) -> Self:
        now = now or timezone.now()
        return self.open().filter(last_activity_at__lt=now - dt.timedelta(days=settings.TIKTING_STALE_DAYS))

    def deferred_due(self, today: dt.date | None = None) -> Self:
        """Deferred items whose revisit date has come."""
        today = today or timezone.localdate()
        return self.filter(status=C.Status.DEFERRED, revisit_date__lte=today)

    def with_last_measured(self) -> Self:
        """Annotate each item with the time of its latest measurement (a correlated subquery)."""
        last = (
            _measurements()
            .filter(indicator__item=OuterRef("pk"))
            .order_by("-measured_at")
            .values("measured_at")[:1]
        )
        return self.annotate(last_measured_at=Subquery(last))

    def measurement_due(self, now: dt.datetime | None = None) -> Self:
        """Acting or evaluating items, and closed items under watch, not measured for an interval.

        "Last measured before the interval, or never" is "no measurement within the interval":
        NOT EXISTS costs one index probe per item, where MAX over a join groups every column.
        """
        now = now or timezone.now()
        limit = now - dt.timedelta(days=settings.TIKTING_MEASUREMENT_INTERVAL_DAYS)
        watched = Q(status__in=[C.Status.ACTION, C.Status.EVALUATION]) | Q(
            status=C.Status.CLOSED, control_until__gte=timezone.localdate(now)
        )
        recent = _measurements().filter(indicator__item=OuterRef("pk"), measured_at__gte=limit)
        return self.filter(watched).filter(~Exists(recent)).with_last_measured()

    def slipped(self) -> Self:
        return self.filter(sustainment=C.Sustainment.SLIPPED)

    def recently_closed(self, since: dt.datetime) -> Self:
        return self.closed().filter(closed_at__gte=since)

    def search(self, text: str) -> Self:
        text = (text or "").strip()
        if not text:
            return self
        query = Q(title__icontains=text) | Q(description__icontains=text)
        ref = text.upper().removeprefix("CI-").lstrip("0")
        if ref.isdigit():
            query |= Q(pk=int(ref))
        return self.filter(query)

    def backlog_order(self) -> Self:
        """Manual rank first (ranked items in their order), then impact × effort score."""
        return self.order_by(models.F("rank").asc(nulls_last=True), "-priority_score", "-id")
