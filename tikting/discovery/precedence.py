"""Source precedence per attribute: which source's value a CI holds, and when discovery may
overwrite it (docs/discovery.md, "Precedence").

Every CI attribute reconciliation keeps (RECONCILED) has an ordered list of sources, highest
first, in settings.TIKTING_DISCOVERY_PRECEDENCE ("manual" stands for a person). For one CI and one
attribute:

- the **discovered value** is the value of the highest-ranked source among the CI's discovered
  devices that have one (a device its source has not seen for TIKTING_DISCOVERY_STALE_DAYS before
  the CI's latest sighting ranks after every fresh one: a source that stopped reporting does not
  hold an attribute forever);
- the CI's **value source** is the source that wrote the value it holds (kept in
  `ConfigurationItem.attribute_sources` as [source, value]); a value that differs from what that
  source wrote, or that no source wrote, was given by a person: "manual";
- discovery writes the discovered value when its source ranks at or above the value source (or
  the CI has no value); otherwise the two values differ as a **drift**, shown for a decision, and
  the CI keeps its value. So a lower-precedence source never overwrites a higher one.

Plain Python over the values reconcile.py and the services read; no database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings

__all__ = ["MANUAL", "RECONCILED", "Decision", "Sighting", "decide", "ranking", "rankings"]

MANUAL = "manual"
# CI field → the discovered device's column holding the same value.
RECONCILED: dict[str, str] = {
    "fqdn": "fqdn",
    "hostname": "hostname",
    "serial_number": "serial",
    "manufacturer": "manufacturer",
    "model_name": "model",
    "system_uuid": "uuid",
    "mac_address": "mac",
    "ip_address": "ip",
    "os_name": "os_name",
    "os_version": "os_version",
    "location": "location",
}


@dataclass(frozen=True, slots=True)
class Sighting:
    """A discovered device's values, as precedence reads them."""

    source: str
    first_seen_at: dt.datetime
    last_seen_at: dt.datetime
    values: Mapping[str, str]  # device column → value ("" = the source did not say)


@dataclass(frozen=True, slots=True)
class Decision:
    """What discovery does with one attribute of one CI."""

    attribute: str
    action: str  # "keep" (the values agree; another source's authority), "write", "drift"
    value: str  # the discovered value
    source: str  # the discovered value's source
    ci_value: str
    ci_source: str  # the CI value's source ("manual", a source, or "" for no value)


Rank = Callable[[str], tuple[int, str]]


def ranking(attribute: str, precedence: Mapping[str, list[str]] | None = None) -> Rank:
    """A sort key of sources for `attribute`: listed ones by their place, unlisted ones after them
    (by name, so the order is stable)."""
    table = settings.TIKTING_DISCOVERY_PRECEDENCE if precedence is None else precedence
    order = list(table.get(attribute) or table.get("*") or [MANUAL])
    places = {source: i for i, source in enumerate(order)}

    def key(source: str) -> tuple[int, str]:
        return (places.get(source, len(order)), source)

    return key


def rankings(precedence: Mapping[str, list[str]] | None = None) -> dict[str, Rank]:
    """ranking() of every reconciled attribute, made once (a run decides many CIs)."""
    return {attribute: ranking(attribute, precedence) for attribute in RECONCILED}


def value_source(attribute: str, ci_value: str, sources: Mapping[str, Any]) -> str:
    """Whose value the CI holds: the source recorded as having written it while it is unchanged,
    else a person ("manual"); "" when the CI has no value."""
    if not ci_value:
        return ""
    recorded = sources.get(attribute)
    if isinstance(recorded, list | tuple) and len(recorded) == 2 and recorded[1] == ci_value:
        return str(recorded[0])
    return MANUAL


def decide(
    ci_values: Mapping[str, str],
    sources: Mapping[str, Any],
    sightings: Iterable[Sighting],
    *,
    stale_days: int | None = None,
    precedence: Mapping[str, list[str]] | None = None,
    ranks: Mapping[str, Rank] | None = None,
) -> list[Decision]:
    """The decisions for one CI, from its values (CI field → value), its attribute_sources and its
    devices' sightings: one per attribute some source offers a value for, except where the CI
    already holds that value on that source's authority (nothing to do). `ranks` (rankings())
    saves making the sort keys again for every CI."""
    seen = list(sightings)
    if not seen:
        return []
    ranks = ranks or rankings(precedence)
    days = settings.TIKTING_DISCOVERY_STALE_DAYS if stale_days is None else stale_days
    single = seen[0] if len(seen) == 1 else None
    fresh_after = None if single else max(s.last_seen_at for s in seen) - dt.timedelta(days=days)
    decisions = []
    for attribute, column in RECONCILED.items():
        rank = ranks[attribute]
        if single is not None:
            if not single.values.get(column):
                continue
            best = single
        else:
            offered = [s for s in seen if s.values.get(column)]
            if not offered:
                continue
            best = min(
                offered,
                key=lambda s: (fresh_after is not None and s.last_seen_at < fresh_after, rank(s.source)),
            )
        value = best.values[column]
        ci_value = ci_values.get(attribute) or ""
        ci_source = value_source(attribute, ci_value, sources)
        if value == ci_value:
            if ci_source == best.source:
                continue
            action = "keep"
        elif not ci_source or rank(best.source) <= rank(ci_source):
            action = "write"
        else:
            action = "drift"
        decisions.append(Decision(attribute, action, value, best.source, ci_value, ci_source))
    return decisions
