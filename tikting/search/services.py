"""Search across everything: every source asked for its candidates, one ranking over all of them.

`search(raw, kind=..., limit=...)` returns the ranked results and, per kind, how many candidates
it found (capped: "50+" means at least that many, the rest not looked at). Everyone signed in
reads the register, the records and the people list (docs/permissions.md), so the results are the
same for every role; the views check that the caller is signed in.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.utils import timezone

from . import ranking
from .query import Query, parse
from .sources import Candidate, Source, sources

PER_KIND = 50  # candidates asked of each kind (the most recent matches)
DEFAULT_LIMIT = 20
MAX_LIMIT = 100


@dataclass(frozen=True)
class Hit:
    candidate: Candidate
    source: Source
    score: float
    title: list[ranking.Segment]
    excerpt: list[ranking.Segment]


@dataclass(frozen=True)
class KindCount:
    key: str
    label: str
    count: int
    capped: bool  # there may be more than `count`: only the first PER_KIND were looked at


@dataclass(frozen=True)
class Results:
    query: Query
    kind: str  # "" for every kind
    kind_label: str  # its plural label ("Incidents"), "" for every kind
    hits: list[Hit]
    counts: list[KindCount]  # kinds with at least one candidate, in source order
    total: int
    capped: bool


def kind_keys() -> list[str]:
    return [source.key for source in sources()]


def _moment(when: dt.datetime | dt.date | None) -> float:
    """A sortable number for a result's date (0 for none): recent first among equal scores."""
    if when is None:
        return 0.0
    if isinstance(when, dt.datetime):
        return when.timestamp() if timezone.is_aware(when) else timezone.make_aware(when).timestamp()
    return dt.datetime.combine(when, dt.time.min, tzinfo=dt.UTC).timestamp()


def search(raw: str | None, *, kind: str = "", limit: int = DEFAULT_LIMIT) -> Results:
    """Ranked results for `raw`; ValidationError naming `q`, `kind` or `limit` for bad input."""
    query = parse(raw)
    every = sources()
    if kind and kind not in {s.key for s in every}:
        raise ValidationError(
            {"kind": f"Unknown kind '{kind}'; choose from {', '.join(s.key for s in every)}."}
        )
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError({"limit": f"Ask for 1 to {MAX_LIMIT} results (not {limit})."})
    scored: list[tuple[float, float, int, Candidate, Source]] = []
    counts: list[KindCount] = []
    for order, source in enumerate(every):
        found = source.find(query, PER_KIND)
        if found:
            counts.append(KindCount(source.key, source.label_plural, len(found), len(found) >= PER_KIND))
        if kind and source.key != kind:
            continue
        for candidate in found:
            points = ranking.score(query, ref=candidate.ref, title=candidate.title, text=candidate.text)
            scored.append((points, _moment(candidate.when), -order, candidate, source))
    scored.sort(key=lambda row: (row[0], row[1], row[2]), reverse=True)
    hits = [
        Hit(
            candidate=candidate,
            source=source,
            score=points,
            title=ranking.marked(candidate.title, query.words),
            excerpt=ranking.excerpt(candidate.text, query.words),
        )
        for points, _, _, candidate, source in scored[:limit]
    ]
    shown = [c for c in counts if not kind or c.key == kind]
    return Results(
        query=query,
        kind=kind,
        kind_label=next((s.label_plural for s in every if s.key == kind), ""),
        hits=hits,
        counts=counts,
        total=sum(c.count for c in shown),
        capped=any(c.capped for c in shown),
    )
