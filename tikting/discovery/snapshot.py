"""Asset data accuracy: the figures of the CMDB health page and of the metrics engine's "Asset data
accuracy" metrics, each one aggregate over the CIs (docs/metrics.md has the formulas).

- **in scope**: registered CIs discovery is expected to find: status in service or in maintenance,
  class in TIKTING_DISCOVERY_SCOPE_CLASSES;
- **seen**: in scope and last seen within TIKTING_DISCOVERY_STALE_DAYS (coverage = seen / in scope);
- **stale**: in scope, seen before, not within those days; **never seen**: in scope, never seen;
- **drifted**: seen, with an open drift on a key attribute (TIKTING_DISCOVERY_KEY_ATTRIBUTES);
  accuracy = (seen − drifted) / seen;
- **unregistered**: CIs discovery created that nobody registered yet (any class);
- **duplicates**: open duplicate candidates, counted on the class of the older CI;
- **completeness**: required attributes filled / required attributes expected, over the in-scope
  CIs, per class (TIKTING_DISCOVERY_REQUIRED_ATTRIBUTES).

`take(now)` keeps one AccuracySnapshot row per day and class, after every run and daily (the
worker's schedule), written only when a figure changed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db.models import Case, Count, Exists, IntegerField, OuterRef, Q, QuerySet, Sum, Value, When
from django.utils import timezone

from tikting.cmdb.models import ConfigurationItem

from .models import AccuracySnapshot, Decision, DriftItem, DuplicateCandidate

__all__ = ["FIGURES", "cis_behind", "figures", "required_attributes", "stale_cis", "take"]

CI = ConfigurationItem
IN_SERVICE = (CI.Status.ACTIVE, CI.Status.MAINTENANCE)
COUNTS = (
    "in_scope",
    "seen",
    "never_seen",
    "stale",
    "accurate",
    "drifted",
    "unregistered",
    "duplicates",
    "required",
    "filled",
)
# The figures a person can drill into on the health page, with what they list.
FIGURES = {
    "in_scope": "In-scope CIs",
    "seen": "Seen within the stale window",
    "never_seen": "Never seen by discovery",
    "stale": "Stale: not seen for the stale window",
    "drifted": "Drifted: an open drift on a key attribute",
    "unregistered": "Discovered, unregistered",
    "duplicates": "In an open duplicate candidate",
    "incomplete": "Missing a required attribute",
}


def cutoff(now: dt.datetime | None = None) -> dt.datetime:
    return (now or timezone.now()) - dt.timedelta(days=settings.TIKTING_DISCOVERY_STALE_DAYS)


def in_scope_q() -> Q:
    return Q(status__in=IN_SERVICE, ci_class__in=list(settings.TIKTING_DISCOVERY_SCOPE_CLASSES))


def required_attributes(ci_class: str) -> list[str]:
    table = settings.TIKTING_DISCOVERY_REQUIRED_ATTRIBUTES
    return list(table.get(ci_class, table.get("*", [])))


def _filled(attribute: str) -> Q:
    field = CI._meta.get_field(attribute)
    return Q(**{f"{attribute}__isnull": False}) if field.is_relation else ~Q(**{attribute: ""})


def _missing_q(ci_class: str) -> Q:
    q = Q(pk__in=[])
    for attribute in required_attributes(ci_class):
        q |= ~_filled(attribute)
    return q


def _drift_on_key() -> Exists:
    return Exists(
        DriftItem.objects.filter(
            ci=OuterRef("pk"),
            status=Decision.OPEN,
            attribute__in=list(settings.TIKTING_DISCOVERY_KEY_ATTRIBUTES),
        )
    )


def stale_cis(now: dt.datetime | None = None) -> QuerySet[ConfigurationItem]:
    return CI.objects.filter(in_scope_q(), last_seen_at__lt=cutoff(now))


def _filled_count() -> Case:
    """Per CI, how many of its class's required attributes are filled."""
    whens = []
    for ci_class in CI.CIClass.values:
        terms: Any = Value(0)
        for attribute in required_attributes(ci_class):
            terms = terms + Case(When(_filled(attribute), then=Value(1)), default=Value(0))
        whens.append(When(ci_class=ci_class, then=terms))
    return Case(*whens, default=Value(0), output_field=IntegerField())


def figures(now: dt.datetime | None = None) -> dict[str, dict[str, int]]:
    """{class: {figure: count}} for every class with a non-zero figure (two aggregate queries)."""
    limit = cutoff(now)
    scope = in_scope_q()
    seen = scope & Q(last_seen_at__gte=limit)
    rows = (
        CI.objects.order_by()
        .annotate(_drifted=_drift_on_key(), _filled=_filled_count())
        .values("ci_class")
        .annotate(
            in_scope=Count("pk", filter=scope),
            seen=Count("pk", filter=seen),
            never_seen=Count("pk", filter=scope & Q(last_seen_at__isnull=True)),
            stale=Count("pk", filter=scope & Q(last_seen_at__lt=limit)),
            drifted=Count("pk", filter=seen & Q(_drifted=True)),
            unregistered=Count("pk", filter=Q(status=CI.Status.DISCOVERED)),
            filled=Sum("_filled", filter=scope),
        )
    )
    result: dict[str, dict[str, int]] = {}
    for row in rows:
        values: dict[str, Any] = dict(row)
        ci_class = str(values["ci_class"])
        counts = {name: int(values.get(name) or 0) for name in COUNTS if name in values}
        counts["accurate"] = counts["seen"] - counts["drifted"]
        counts["required"] = counts["in_scope"] * len(required_attributes(ci_class))
        counts["duplicates"] = 0
        result[ci_class] = counts
    duplicates = (
        DuplicateCandidate.objects.filter(status=Decision.OPEN)
        .values("ci__ci_class")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for pair in duplicates:
        counts = result.setdefault(str(pair["ci__ci_class"]), dict.fromkeys(COUNTS, 0))
        counts["duplicates"] = int(pair["n"])
    return {k: v for k, v in result.items() if any(v.values())}


def take(now: dt.datetime | None = None) -> int:
    """The day's snapshot rows (one per class) brought up to date; returns how many rows were
    written (0 when no figure changed: a run that changed nothing writes nothing)."""
    now = now or timezone.now()
    day = timezone.localdate(now)
    wanted = figures(now)
    existing = {row.ci_class: row for row in AccuracySnapshot.objects.filter(day=day)}
    written = 0
    for ci_class in sorted(set(wanted) | set(existing)):
        counts = wanted.get(ci_class, dict.fromkeys(COUNTS, 0))
        row = existing.get(ci_class)
        if row is None:
            AccuracySnapshot.objects.create(day=day, ci_class=ci_class, taken_at=now, **counts)
            written += 1
        elif any(getattr(row, name) != counts[name] for name in COUNTS):
            for name in COUNTS:
                setattr(row, name, counts[name])
            row.taken_at = now
            row.save()
            written += 1
    return written


def cis_behind(
    figure: str, *, ci_class: str = "", now: dt.datetime | None = None
) -> QuerySet[ConfigurationItem]:
    """The CIs behind one figure of the health page (FIGURES), optionally of one class."""
    limit = cutoff(now)
    scope = in_scope_q()
    qs = CI.objects.all()
    if figure == "in_scope":
        qs = qs.filter(scope)
    elif figure == "seen":
        qs = qs.filter(scope, last_seen_at__gte=limit)
    elif figure == "never_seen":
        qs = qs.filter(scope, last_seen_at__isnull=True)
    elif figure == "stale":
        qs = qs.filter(scope, last_seen_at__lt=limit)
    elif figure == "drifted":
        qs = qs.filter(scope, last_seen_at__gte=limit).filter(_drift_on_key())
    elif figure == "unregistered":
        qs = qs.filter(status=CI.Status.DISCOVERED)
    elif figure == "duplicates":
        pairs = DuplicateCandidate.objects.filter(status=Decision.OPEN)
        qs = qs.filter(Q(pk__in=pairs.values("ci")) | Q(pk__in=pairs.values("other")))
    elif figure == "incomplete":
        missing = Q(pk__in=[])
        for name in CI.CIClass.values:
            missing |= Q(ci_class=name) & _missing_q(name)
        qs = qs.filter(scope).filter(missing)
    else:
        raise ValueError(f"Unknown figure '{figure}'; the figures are {', '.join(FIGURES)}.")
    if ci_class:
        qs = qs.filter(ci_class=ci_class)
    return qs
