"""CMDB hygiene: the asset data accuracy figures getting worse (Odysseus, docs/discovery.md).

Reads the daily accuracy snapshots (tikting/discovery/snapshot.py: one row per day and CI class,
taken after every discovery run and daily) and compares the window's last snapshot (*now*, at or
before the window's end) with the last one at least ``compare_days`` older (*then*). Four kinds of
proposal, each raised at most once per run, with a stable fingerprint (the intake merges a
recurrence into the open candidate and brings a dismissed one back when it grows):

- **coverage**: the share of in-scope CIs seen by discovery within the stale window fell by at
  least ``min_drop_points`` percentage points, over at least ``min_in_scope`` in-scope CIs;
- **accuracy**: the share of seen CIs with no open drift on a key attribute fell likewise (over at
  least ``min_in_scope`` seen CIs);
- **unregistered**: devices discovered and not registered grew by at least ``min_growth`` and by
  at least ``min_growth_share`` of *then* (from 0: the growth alone);
- **stale**: in-scope CIs no longer seen grew likewise.

Score and magnitude: the CIs behind the change (for a share: the points fallen × the CIs it is a
share of, / 100). Baseline: the figure *now* (unit % or the count, direction as the metric's),
with the metric (`cmdb_coverage`, `cmdb_accuracy`, `cmdb_unregistered`, `cmdb_stale`) so that
accepting the candidate binds the register indicator to it. Evidence: the CIs behind the figure now
(stale or never seen, drifted, unregistered, stale), at most ``max_evidence``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

from django.db.models import Sum
from django.utils import timezone

from tikting.cmdb.models import ConfigurationItem
from tikting.core.itsm import Practice
from tikting.discovery import snapshot
from tikting.discovery.models import AccuracySnapshot
from tikting.signals.proposals import Evidence, Progress, Proposal, Window, no_progress

from . import _common as C

NAME = "cmdb_hygiene"
TITLE = "CMDB hygiene"
CHANNEL = "asset_data"
THRESHOLDS: dict[str, float] = {
    "compare_days": 30.0,  # "then" is the last snapshot at least this many days before "now"
    "min_drop_points": 5.0,  # coverage or accuracy falling by this many percentage points ...
    "min_in_scope": 20.0,  # ... over at least this many CIs
    "min_growth": 10.0,  # unregistered devices or stale CIs growing by this many ...
    "min_growth_share": 0.25,  # ... and by this share of their number then
    "max_evidence": 200.0,  # CIs listed per proposal (figures count all)
}

# (kind, metric, label, numerator, denominator, the figure whose CIs are evidence, what they are)
SHARES = (
    ("coverage", "cmdb_coverage", "Discovery coverage", "seen", "in_scope", "unseen", "not_seen"),
    ("accuracy", "cmdb_accuracy", "CMDB accuracy", "accurate", "seen", "drifted", "drifted"),
)
COUNTS = (
    ("unregistered", "cmdb_unregistered", "Unregistered devices", "unregistered", "unregistered"),
    ("stale", "cmdb_stale", "Stale CIs", "stale", "stale"),
)


def detect(
    window: Window, *, thresholds: dict[str, float], progress: Progress = no_progress
) -> list[Proposal]:
    t = C.merged(THRESHOLDS, thresholds)
    end_day = timezone.localtime(window.end - dt.timedelta(microseconds=1)).date()
    now_day = _last_day(end_day)
    if now_day is None:
        return []
    then_day = _last_day(now_day - dt.timedelta(days=int(t["compare_days"])))
    if then_day is None:
        return []
    compared = Compared(_totals(now_day), _totals(then_day), now_day, then_day, t)
    progress(1, 3)
    proposals = [p for spec in SHARES if (p := _share(spec, compared)) is not None]
    progress(2, 3)
    proposals += [p for spec in COUNTS if (p := _count(spec, compared)) is not None]
    progress(3, 3)
    return sorted(proposals, key=lambda p: (-p.score, p.fingerprint))


class Compared(NamedTuple):
    """The totals now and then, their days, and the thresholds in force."""

    now: dict[str, int]
    then: dict[str, int]
    now_day: dt.date
    then_day: dt.date
    t: dict[str, float]


def _last_day(day: dt.date) -> dt.date | None:
    return (
        AccuracySnapshot.objects.filter(day__lte=day).order_by("-day").values_list("day", flat=True).first()
    )


def _totals(day: dt.date) -> dict[str, int]:
    row = AccuracySnapshot.objects.filter(day=day).aggregate(**{n: Sum(n) for n in snapshot.COUNTS})
    return {name: int(value or 0) for name, value in row.items()}


def _evidence(figure: str, role: str, limit: int) -> list[Evidence]:
    """The CIs behind a figure as the CMDB stands (the records registry's kind "ci")."""
    if figure == "unseen":
        stale = snapshot.cis_behind("stale")
        never = snapshot.cis_behind("never_seen")
        qs = ConfigurationItem.objects.filter(pk__in=stale.values("pk")) | ConfigurationItem.objects.filter(
            pk__in=never.values("pk")
        )
    else:
        qs = snapshot.cis_behind(figure)
    rows = qs.order_by("last_seen_at", "pk").values_list("pk", "name")[:limit]
    return [Evidence("ci", pk, name, role) for pk, name in rows]


def _base(kind: str, metric: str, now_day: dt.date, then_day: dt.date) -> dict[str, Any]:
    return {
        "kind": kind,
        "metric": metric,
        # accepting the candidate binds its indicator to the metric (signals.services.triage)
        "metric_binding": {"metric": metric, "scope": {}},
        "as_of": now_day.isoformat(),
        "compared_with": then_day.isoformat(),
    }


def _share(spec: tuple[str, ...], compared: Compared) -> Proposal | None:
    kind, metric, label, numerator, denominator, figure, role = spec
    now, then, now_day, then_day, t = compared
    if not now[denominator] or not then[denominator] or now[denominator] < t["min_in_scope"]:
        return None
    value_now = C.percent(now[numerator], now[denominator])
    value_then = C.percent(then[numerator], then[denominator])
    drop = value_then - value_now
    if drop < t["min_drop_points"]:
        return None
    behind = drop * now[denominator] / 100
    evidence = _evidence(figure, role, int(t["max_evidence"]))
    impact = C.rating(behind, (5, 20, 80, 300))
    what = (
        "in-scope CIs seen by discovery"
        if kind == "coverage"
        else "seen CIs with no open drift on a key attribute"
    )
    return Proposal(
        detector=NAME,
        fingerprint=f"{NAME}:{kind}",
        title=f"{label} fell from {value_then:.1f} % to {value_now:.1f} %",
        explanation=(
            f"{label}: {now[numerator]} of {now[denominator]} {what} on {now_day} ({value_now:.1f} %), "
            f"against {then[numerator]} of {then[denominator]} on {then_day} ({value_then:.1f} %): down "
            f"{drop:.1f} points, about {behind:.0f} CIs. Rule: a fall of at least {t['min_drop_points']:g} "
            "points over at least "
            f"{t['min_in_scope']:g} CIs, against the snapshot at least {t['compare_days']:g} days older."
        ),
        score=behind,
        magnitude=behind,
        period_start=then_day,
        period_end=now_day,
        evidence=evidence,
        figures={
            **_base(kind, metric, now_day, then_day),
            "now_pct": value_now,
            "then_pct": value_then,
            "drop_points": drop,
            f"{numerator}_now": now[numerator],
            f"{denominator}_now": now[denominator],
            f"{numerator}_then": then[numerator],
            f"{denominator}_then": then[denominator],
            **C.indicator(value_now, "%", False, label),
            "evidence_shown": len(evidence),
        },
        practice=Practice.ASSET,
        impact=impact,
        effort=3,
        rating_reason=(
            f"Impact {impact}: about {behind:.0f} CIs behind the fall (1-5 at 5/20/80/300); effort 3: find "
            "why discovery lost sight of them (a range, an agent, a credential) or correct the CMDB."
        ),
    )


def _count(spec: tuple[str, ...], compared: Compared) -> Proposal | None:
    kind, metric, label, column, figure = spec
    now, then, now_day, then_day, t = compared
    growth = now[column] - then[column]
    if growth < t["min_growth"] or (then[column] and growth < t["min_growth_share"] * then[column]):
        return None
    evidence = _evidence(figure, kind, int(t["max_evidence"]))
    impact = C.rating(growth, (10, 30, 100, 300))
    what = {
        "unregistered": "devices discovery found that are not in the register",
        "stale": "in-scope CIs discovery has not seen for the stale window",
    }[kind]
    return Proposal(
        detector=NAME,
        fingerprint=f"{NAME}:{kind}",
        title=f"{label} grew from {then[column]} to {now[column]}",
        explanation=(
            f"{now[column]} {what} on {now_day}, against {then[column]} on {then_day}: {growth} more. "
            f"Rule: a growth of at least {t['min_growth']:g} and of at least "
            f"{100 * t['min_growth_share']:g} % of the number then, against the snapshot at least "
            f"{t['compare_days']:g} days older."
        ),
        score=float(growth),
        magnitude=float(growth),
        period_start=then_day,
        period_end=now_day,
        evidence=evidence,
        figures={
            **_base(kind, metric, now_day, then_day),
            "now": now[column],
            "then": then[column],
            "growth": growth,
            **C.indicator(float(now[column]), "devices" if kind == "unregistered" else "CIs", True, label),
            "evidence_shown": len(evidence),
        },
        practice=Practice.ASSET,
        impact=impact,
        effort=2,
        rating_reason=(
            f"Impact {impact}: {growth} more (1-5 at 10/30/100/300); effort 2: "
            + (
                "register or retire them from the CMDB health page."
                if kind == "unregistered"
                else "confirm and retire them, or bring them back into discovery's reach."
            )
        ),  # fmt: skip
    )
