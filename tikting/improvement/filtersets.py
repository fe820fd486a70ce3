"""The register's filters and sorts, shared by the HTML list, the API and exports (one definition)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.db.models import F, QuerySet
from django.db.models.expressions import OrderBy
from django.utils import timezone

from tikting.accounts.models import Actor

from . import choices as C
from .querysets import ItemQuerySet

QuerySetT = TypeVar("QuerySetT", bound=QuerySet)

# Public sort keys → ORDER BY. A leading "-" on the key reverses it.
SORTS: dict[str, list[Any]] = {
    "rank": [F("rank").asc(nulls_last=True), "-priority_score", "-id"],
    "priority": ["-priority_score", "-id"],
    "ref": ["id"],
    "title": ["title", "id"],
    "status": ["status", "-priority_score"],
    "practice": ["practice", "-priority_score"],
    "service": ["service__name", "-priority_score"],
    "owner": ["owner__username", "-priority_score"],
    "impact": ["impact", "id"],
    "effort": ["effort", "id"],
    "target_date": [F("target_date").asc(nulls_last=True), "id"],
    "identified": ["identified_at", "id"],
    "updated": ["last_activity_at", "id"],
}
DEFAULT_SORT = "rank"

# Filter names accepted in query strings / API parameters.
FLAGS = ("stale", "overdue", "due_soon", "blocked", "slipped", "measurement_due", "deferred_due", "to_assess")
FILTER_FIELDS = (
    "q",
    "status",
    "practice",
    "service",
    "owner",
    "quadrant",
    "source_channel",
    "flag",
    "parent",
)


def _many(params: Mapping[str, Any], name: str) -> list[str]:
    if hasattr(params, "getlist"):
        values = params.getlist(name)
    else:
        value = params.get(name)
        values = value if isinstance(value, list | tuple) else [value]
    result: list[str] = []
    for value in values:
        if value in (None, ""):
            continue
        result.extend(part.strip() for part in str(value).split(",") if part.strip())
    return result


def _check_choices(name: str, values: list[str], allowed) -> None:
    bad = [v for v in values if v not in allowed]
    if bad:
        raise ValidationError({name: f"Unknown value(s) {', '.join(bad)}; choose from {', '.join(allowed)}."})


def filter_items(
    qs: ItemQuerySet, params: Mapping[str, Any], *, user: Actor = None, now: dt.datetime | None = None
) -> ItemQuerySet:
    """Apply the register filters in `params` (a QueryDict or a dict) to an Item queryset.

    status: item statuses, or the groups "open", "active", "ended"; practice, quadrant,
    source_channel: choice values; impact, effort: ratings 1-5; service: ids; owner: user ids, "me" or "none";
    flag: stale, overdue, due_soon, blocked, slipped, measurement_due, deferred_due,
    to_assess (new, plus deferred items whose revisit date came); q: text or CI-00012; parent: id.
    Several values of one filter (repeated or comma-separated) are OR-ed; filters are AND-ed.
    Unknown values raise ValidationError naming the filter.
    """
    now = now or timezone.now()
    today = timezone.localdate(now)
    statuses = _many(params, "status")
    if statuses:
        expanded: set[str] = set()
        groups = {"open": C.OPEN_STATUSES, "active": C.ACTIVE_STATUSES, "ended": C.ENDED_STATUSES}
        for status in statuses:
            if status in groups:
                expanded |= set(groups[status])
            elif status in C.Status.values:
                expanded.add(status)
            else:
                _check_choices("status", [status], [*C.Status.values, *groups])
        qs = qs.filter(status__in=expanded)
    for name, choices in (
        ("practice", C.Practice.values),
        ("quadrant", C.Quadrant.values),
        ("source_channel", C.SourceChannel.values),
    ):
        values = _many(params, name)
        if values:
            _check_choices(name, values, choices)
            qs = qs.filter(**{f"{name}__in": values})
    for name in ("impact", "effort"):
        ratings = _many(params, name)
        if ratings:
            _check_choices(name, ratings, ["1", "2", "3", "4", "5"])
            qs = qs.filter(**{f"{name}__in": [int(r) for r in ratings]})
    services = _many(params, "service")
    if services:
        if not all(s.isdigit() for s in services):
            raise ValidationError({"service": "Give service ids (numbers)."})
        qs = qs.filter(service_id__in=[int(s) for s in services])
    owners = _many(params, "owner")
    if owners:
        ids, none = [], False
        for owner in owners:
            if owner == "me" and user is not None and user.is_authenticated:
                ids.append(user.pk)
            elif owner == "none":
                none = True
            elif owner.isdigit():
                ids.append(int(owner))
            else:
                raise ValidationError({"owner": f"'{owner}' is not a user id, 'me' or 'none'."})
        if none and ids:
            qs = qs.filter(owner_id__in=ids) | qs.filter(owner__isnull=True)
        elif none:
            qs = qs.filter(owner__isnull=True)
        else:
            qs = qs.filter(owner_id__in=ids)
    parent = _many(params, "parent")
    if parent:
        if not all(p.isdigit() for p in parent):
            raise ValidationError({"parent": "Give item ids (numbers)."})
        qs = qs.filter(parent_id__in=[int(p) for p in parent])
    flags = _many(params, "flag")
    _check_choices("flag", flags, FLAGS)
    for flag in flags:
        qs = {
            "stale": lambda q: q.stale(now),
            "overdue": lambda q: q.overdue(today),
            "due_soon": lambda q: q.due_soon(today),
            "blocked": lambda q: q.blocked(),
            "slipped": lambda q: q.slipped(),
            "measurement_due": lambda q: q.measurement_due(now),
            "deferred_due": lambda q: q.deferred_due(today),
            "to_assess": lambda q: q.to_assess() | q.deferred_due(today),
        }[flag](qs)
    q = params.get("q")
    if q:
        qs = qs.search(str(q))
    return qs


def sort_items(qs: QuerySetT, sort: str | None) -> QuerySetT:
    """Order by a public sort key ("-" prefix for descending); unknown keys raise ValidationError."""
    sort = (sort or DEFAULT_SORT).strip()
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    if key not in SORTS:
        raise ValidationError({"sort": f"Unknown sort '{sort}'; choose from {', '.join(SORTS)}."})
    order = SORTS[key]
    if descending:
        order = [_reverse(o) for o in order]
    return qs.order_by(*order)


def _reverse(term):
    """The opposite direction of one ORDER BY term; empty values stay last either way."""
    if isinstance(term, str):
        return term[1:] if term.startswith("-") else f"-{term}"
    return OrderBy(term.expression, descending=not term.descending, nulls_last=True)
