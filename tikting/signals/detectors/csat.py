"""CSAT: services, teams and categories whose satisfaction scores are low against their own history
or against the rest of the organisation, and the themes that recur in unhappy comments.

Reads the survey responses (score 1–5) given in the window. A response is about a service (its
own, else its ticket's), a team (the ticket's assignment group) and a category (the incident's
category, else the catalogue item of the request).

**Low scores.** For each service, team and category with at least ``min_responses`` responses in
the window, two comparisons of the mean score, each a one-sided z test on the difference of the
means (variances from the scores, at least 0.25 so that a run of equal scores does not make any
difference certain):

- *against its own history*: the ``history_days`` before the window (at least
  ``min_history_responses`` responses there): it fell by at least ``min_drop`` points with
  P ≤ ``drop_alpha``;
- *against the rest of the organisation* in the window: it is at least ``min_gap`` points below
  with P ≤ ``gap_alpha``, and not better than its own history (a group that was worse and is
  recovering is not raised on the gap alone).

Either raises one proposal for the group. Score: ``-log10`` of the smaller P (0–20); magnitude:
the dissatisfied responses (score ≤ ``low_score``). Baseline: the group's mean score (higher is
better). Evidence: its dissatisfied responses. Figures: both comparisons, and the group's themes.

**Themes.** Comments are lower-cased, split into words, stripped of common words (negations such as
*not* and *no* are kept: "did not help" matters) and cut into word pairs (bigrams), counted once
per comment. A bigram is a theme when it is in at least ``min_theme_comments`` comments of
dissatisfied responses (score ≤ ``low_score``) and at least ``theme_ratio`` times as frequent there,
per comment, as in comments of satisfied ones (score ≥ ``high_score``) — frequencies smoothed by
adding ½ to each count, so that a bigram never seen in a happy comment is not infinitely
telling. A bigram whose comments are mostly (80 %) those of a stronger theme is folded into it,
and the folded bigrams that chain onto it make its phrase ("knowledge article", "article not",
"not help": “knowledge article not help”). The ``max_themes`` strongest (by that ratio, then
count) become proposals of their own, with the comments that carry them as evidence; score:
``-log10`` of the binomial P of that many unhappy comments carrying it at its overall frequency
(0–20); magnitude: those comments. Each group proposal lists its own strongest three.
Thresholds and figures: docs/signals.md, "CSAT".
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, F, Q, Sum, Value
from django.db.models.functions import Coalesce, NullIf

from tikting.accounts.models import Team
from tikting.cmdb.models import Service
from tikting.core.itsm import Practice
from tikting.lib.display import when
from tikting.signals.proposals import Progress, Proposal, Window, no_progress
from tikting.surveys.models import SurveyResponse

from . import _common as C

NAME = "csat"
TITLE = "Customer satisfaction"
CHANNEL = "survey"
THRESHOLDS: dict[str, float] = {
    "min_responses": 10.0,  # responses a service, team or category needs in the window
    "history_days": 180.0,  # its own history: this many days before the window
    "min_history_responses": 10.0,  # responses the history needs to be compared with
    "min_drop": 0.3,  # the mean fell by at least this many points from its history ...
    "drop_alpha": 0.01,  # ... with P ≤ this (one-sided z test)
    "min_gap": 0.5,  # or: at least this many points below the rest of the organisation ...
    "gap_alpha": 0.01,  # ... with P ≤ this
    "low_score": 2.0,  # this score or lower: dissatisfied
    "high_score": 4.0,  # this score or higher: satisfied
    "min_theme_comments": 3.0,  # a theme is in at least this many dissatisfied comments ...
    "theme_ratio": 3.0,  # ... and this many times as frequent there as in satisfied ones
    "max_themes": 5.0,  # theme proposals per run (the strongest)
    "max_evidence": 500.0,  # responses listed per proposal (figures count all)
}
MIN_VARIANCE = 0.25
_STOP = (
    "a an and are as at be been but by did do does for from had has have he her his i if in is it "
    "its just me my of on or our she so that the their them then there they this to too us was we "
    "were what when which who will with would you your"
)
STOP_WORDS = frozenset(_STOP.split())
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
DIMENSIONS = ("service", "team", "category")
FOLD_SHARE = 0.8  # a bigram whose comments are this much a stronger theme's is part of that theme


@dataclass
class Theme:
    """A distinctive bigram, the responses carrying it, and the bigrams folded into it."""

    pair: str
    carriers: set[int]
    ratio: float
    related: list[str] = field(default_factory=list)

    @property
    def phrase(self) -> str:
        """The bigram extended by the folded ones that chain onto it ("knowledge article not help")."""
        words = self.pair.split()
        pending = list(self.related)
        changed = True
        while changed:
            changed = False
            for pair in list(pending):
                first, second = pair.split()
                if first == words[-1]:
                    words.append(second)
                elif second == words[0]:
                    words.insert(0, first)
                else:
                    continue
                pending.remove(pair)
                changed = True
        return " ".join(words)


@dataclass(frozen=True)
class Stats:
    n: int
    total: float
    squares: float

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        if self.n < 2:
            return MIN_VARIANCE
        return max(MIN_VARIANCE, (self.squares - self.total * self.total / self.n) / (self.n - 1))

    def minus(self, other: Stats) -> Stats:
        return Stats(self.n - other.n, self.total - other.total, self.squares - other.squares)


def lower_with_p(worse: Stats, better: Stats) -> float:
    """P of a difference of means at least this large in favour of `better` by chance (z test)."""
    if worse.n == 0 or better.n == 0:
        return 1.0
    z = (better.mean - worse.mean) / math.sqrt(worse.variance / worse.n + better.variance / better.n)
    return C.normal_sf(z)


def bigrams(comment: str) -> set[str]:
    """The word pairs of a comment, common words left out (negations kept)."""
    words = [w for w in _WORD.findall(comment.lower()) if w not in STOP_WORDS]
    return {f"{a} {b}" for a, b in zip(words, words[1:], strict=False)}


def detect(
    window: Window, *, thresholds: dict[str, float], progress: Progress = no_progress
) -> list[Proposal]:
    t = C.merged(THRESHOLDS, thresholds)
    progress(0, 3)
    history = Window(window.start - dt.timedelta(days=t["history_days"]), window.start)
    now = _stats(_responses(window))
    before = _stats(_responses(history))
    progress(1, 3)
    themes = Themes(window, t)
    progress(2, 3)
    proposals = _group_proposals(now, before, themes, t, window)
    proposals += themes.proposals()
    progress(3, 3)
    return sorted(proposals, key=lambda p: (-p.score, p.fingerprint))


# --- Reading --------------------------------------------------------------------------------------


def _responses(window: Window) -> Any:
    """The window's responses with the service, team and category they are about (g_service,
    g_team, g_category): an annotated QuerySet, typed Any as django-stubs cannot follow the names."""
    return SurveyResponse.objects.filter(
        responded_at__gte=window.start, responded_at__lt=window.end
    ).annotate(
        g_service=Coalesce("service", "incident__service", "service_request__service"),
        g_team=Coalesce("incident__assignment_group", "service_request__assignment_group"),
        g_category=Coalesce(
            NullIf(F("incident__category"), Value("")), "service_request__catalog_item__name"
        ),
    )


def _stats(responses: Any) -> dict[str, dict[Any, Stats]]:
    """{dimension: {value: Stats}} and {"all": {None: Stats}}, each one aggregate query."""
    squares = Sum(F("score") * F("score"))
    result: dict[str, dict[Any, Stats]] = {}
    for dimension in DIMENSIONS:
        rows = (
            responses.exclude(**{f"g_{dimension}": None})
            .values(f"g_{dimension}")
            .annotate(n=Count("pk"), total=Sum("score"), squares=squares)
            .order_by(f"g_{dimension}")
        )
        result[dimension] = {
            row[f"g_{dimension}"]: Stats(row["n"], float(row["total"]), float(row["squares"])) for row in rows
        }
    everything = responses.aggregate(n=Count("pk"), total=Sum("score"), squares=squares)
    result["all"] = {
        None: Stats(everything["n"], float(everything["total"] or 0), float(everything["squares"] or 0))
    }
    return result


# --- Themes ---------------------------------------------------------------------------------------


class Themes:
    """The bigrams of the window's comments, dissatisfied against satisfied."""

    def __init__(self, window: Window, t: dict[str, float]) -> None:
        self.t = t
        self.window = window
        self.low: Counter[str] = Counter()
        self.high: Counter[str] = Counter()
        self.low_comments = self.high_comments = 0
        # bigram -> the dissatisfied responses carrying it: (pk, key, service, team, category)
        self.carriers: dict[str, list[tuple[int, str, Any, Any, Any]]] = defaultdict(list)
        comments = (
            _responses(window)
            .exclude(comment="")
            .filter(Q(score__lte=t["low_score"]) | Q(score__gte=t["high_score"]))
            .order_by("responded_at", "pk")
            .values_list("pk", "external_key", "score", "comment", "g_service", "g_team", "g_category")
        )
        for pk, ext, score, comment, service, team, category in comments.iterator():
            pairs = bigrams(comment)
            if not pairs:
                continue
            if score <= t["low_score"]:
                self.low_comments += 1
                self.low.update(pairs)
                for pair in pairs:
                    self.carriers[pair].append((pk, C.record_key(ext, pk), service, team, category))
            else:
                self.high_comments += 1
                self.high.update(pairs)

    def p_value(self, pair: str) -> float:
        """P of this many dissatisfied comments carrying the bigram if it were as frequent in every
        comment as it is overall (binomial): the theme proposal's score is -log10 of it."""
        pooled = (self.low[pair] + self.high[pair]) / max(1, self.low_comments + self.high_comments)
        return C.binom_sf(self.low[pair], self.low_comments, pooled)

    def ratio(self, pair: str) -> float:
        low = (self.low[pair] + 0.5) / (self.low_comments + 1)
        high = (self.high[pair] + 0.5) / (self.high_comments + 1)
        return low / high

    def ranked(self, within: set[int] | None = None) -> list[Theme]:
        """The themes, strongest first (ratio, then comments); `within`: count only those responses
        (a group's). A bigram carried by mostly the same comments as a stronger theme (80 % of its
        comments) is folded into it: "knowledge article", "article not" and "not help" are one
        theme, shown as the phrase "knowledge article not help"."""
        found = []
        for pair in self.low:
            carriers = {c[0] for c in self.carriers[pair] if within is None or c[0] in within}
            if len(carriers) < self.t["min_theme_comments"]:
                continue
            ratio = self.ratio(pair)
            if ratio >= self.t["theme_ratio"]:
                found.append((pair, carriers, ratio))
        found.sort(key=lambda item: (-item[2], -len(item[1]), item[0]))
        themes: list[Theme] = []
        for pair, carriers, ratio in found:
            home = next(
                (th for th in themes if len(carriers & th.carriers) >= FOLD_SHARE * len(carriers)), None
            )
            if home is None:
                themes.append(Theme(pair, carriers, ratio))
            else:
                home.related.append(pair)
        return themes

    def proposals(self) -> list[Proposal]:
        first, last = C.period(self.window)
        out = []
        limit = int(self.t["max_evidence"])
        for theme in self.ranked()[: int(self.t["max_themes"])]:
            pair, count, ratio, phrase = theme.pair, len(theme.carriers), theme.ratio, theme.phrase
            carriers = self.carriers[pair]
            services = Counter(c[2] for c in carriers if c[2] is not None)
            service_id = min(services.items(), key=lambda item: (-item[1], item[0]))[0] if services else None
            high = self.high[pair]
            out.append(
                Proposal(
                    detector=NAME,
                    fingerprint=f"{NAME}:theme={pair}",
                    title=f"Unhappy customers keep saying “{phrase}”: {count} comments",
                    explanation=(
                        f"“{phrase}” (common words left out) is in {count} of the {self.low_comments} "
                        "comments of dissatisfied "
                        f"responses (score ≤ {self.t['low_score']:g}) given "
                        f"from {when(first)} to {when(last)}, and in "
                        f"{high} of the {self.high_comments} comments of satisfied ones (score ≥ "
                        f"{self.t['high_score']:g}): {ratio:.1f} times as frequent among the "
                        "unhappy. Rule: in "
                        f"at least {self.t['min_theme_comments']:g} dissatisfied comments and at least "
                        f"{self.t['theme_ratio']:g} times as frequent (counts smoothed by ½)."
                    ),
                    score=C.surprise(self.p_value(pair)),
                    magnitude=float(count),
                    period_start=first,
                    period_end=last,
                    evidence=C.evidence("survey", ((c[0], c[1]) for c in carriers[:limit]), "theme"),
                    figures={
                        "kind": "theme",
                        "theme": pair,
                        "phrase": phrase,
                        "folded": theme.related,
                        "p_value": self.p_value(pair),
                        "low_comments_with": count,
                        "low_comments": self.low_comments,
                        "high_comments_with": high,
                        "high_comments": self.high_comments,
                        "ratio": ratio,
                        "services": {str(k): v for k, v in sorted(services.items())},
                        "evidence_shown": min(len(carriers), limit),
                    },
                    practice=Practice.SERVICE_DESK,
                    service_id=service_id,
                    impact=C.rating(count, (3, 6, 12, 25)),
                    effort=2,
                    rating_reason=(
                        f"Impact {C.rating(count, (3, 6, 12, 25))}: {count} unhappy comments (1-5 at "
                        "3/6/12/25); effort 2: read the comments, find what they have in common, fix that."
                    ),
                )
            )
        return out


# --- Group proposals ------------------------------------------------------------------------------


def _group_proposals(
    now: dict[str, dict[Any, Stats]],
    before: dict[str, dict[Any, Stats]],
    themes: Themes,
    t: dict[str, float],
    window: Window,
) -> list[Proposal]:
    everyone = now["all"][None]
    raised = []
    for dimension in DIMENSIONS:
        for value, stats in now[dimension].items():
            if stats.n < t["min_responses"]:
                continue
            history = before[dimension].get(value)
            if history is not None and history.n < t["min_history_responses"]:
                history = None
            rest = everyone.minus(stats)
            drop_p = gap_p = 1.0
            dropped = gap = False
            if history is not None:
                drop_p = lower_with_p(stats, history)
                dropped = history.mean - stats.mean >= t["min_drop"] and drop_p <= t["drop_alpha"]
            if rest.n >= t["min_responses"]:
                gap_p = lower_with_p(stats, rest)
                gap = (
                    rest.mean - stats.mean >= t["min_gap"]
                    and gap_p <= t["gap_alpha"]
                    and (history is None or stats.mean <= history.mean)
                )
            if dropped or gap:
                raised.append(
                    (
                        dimension,
                        value,
                        stats,
                        history,
                        rest,
                        drop_p if dropped else 1.0,
                        gap_p if gap else 1.0,
                    )
                )
    if not raised:
        return []
    services = C.labels(Service, (v for d, v, *_ in raised if d == "service"))
    teams = C.labels(Team, (v for d, v, *_ in raised if d == "team"))
    return [_group_proposal(*item, services, teams, themes, t, window) for item in raised]


def _group_proposal(
    dimension: str,
    value: Any,
    stats: Stats,
    history: Stats | None,
    rest: Stats,
    drop_p: float,
    gap_p: float,
    services: dict[int, str],
    teams: dict[int, str],
    themes: Themes,
    t: dict[str, float],
    window: Window,
) -> Proposal:
    name = {"service": services, "team": teams}.get(dimension, {}).get(value, str(value))
    what = {
        "service": f"the service {name}",
        "team": f"the team {name}",
        "category": f"the category “{name}”",
    }[dimension]
    first, last = C.period(window)
    low = (
        _responses(window)
        .filter(**{f"g_{dimension}": value, "score__lte": t["low_score"]})
        .order_by("responded_at", "pk")
        .values_list("pk", "external_key")
    )
    low_rows = [(pk, C.record_key(ext, pk)) for pk, ext in low.iterator()]
    limit = int(t["max_evidence"])
    own = {pk for pk, _ in low_rows}
    group_themes = themes.ranked(within=own)[:3]
    reasons = []
    if drop_p < 1 and history is not None:
        reasons.append(
            f"its mean fell from {history.mean:.2f} ({history.n} responses in the {t['history_days']:g} days "
            f"before) to {stats.mean:.2f} (rule: at least {t['min_drop']:g} points with P ≤ "
            f"{t['drop_alpha']:g}; z test P = {C.fmt_p(drop_p)})"
        )
    if gap_p < 1:
        reasons.append(
            f"it is {rest.mean - stats.mean:.2f} points below the rest of the organisation's {rest.mean:.2f} "
            f"({rest.n} responses; rule: at least {t['min_gap']:g} points with P ≤ {t['gap_alpha']:g}, and "
            f"not better than its own history; z test P = {C.fmt_p(gap_p)})"
        )
    explanation = (
        f"Customers scored {what} {stats.mean:.2f} out of 5 on average in {stats.n} responses "
        f"from {when(first)} "
        f"to {when(last)}, {len(low_rows)} of them dissatisfied (score ≤ {t['low_score']:g}): "
        + "; ".join(reasons)
        + "."
    )
    if group_themes:
        explanation += (
            " Recurring in its unhappy comments: "
            + ", ".join(f"“{th.phrase}” ({len(th.carriers)})" for th in group_themes)
            + "."
        )
    p = min(drop_p, gap_p)
    impact = C.clamp_rating(C.rating(len(low_rows), (5, 10, 25, 50)))
    return Proposal(
        detector=NAME,
        fingerprint=f"{NAME}:{dimension}={value}",
        title=f"Low satisfaction with {what}: {stats.mean:.2f} of 5"[:200],
        explanation=explanation,
        score=C.surprise(p),
        magnitude=float(len(low_rows)),
        period_start=first,
        period_end=last,
        evidence=C.evidence("survey", low_rows[:limit], "low_score"),
        figures={
            "kind": dimension,
            dimension: name,
            f"{dimension}_id" if dimension != "category" else "category_value": value,
            "responses": stats.n,
            "mean": stats.mean,
            "dissatisfied": len(low_rows),
            "history_responses": history.n if history else 0,
            "history_mean": history.mean if history else None,
            "drop_p_value": drop_p if drop_p < 1 else None,
            "rest_responses": rest.n,
            "rest_mean": rest.mean if rest.n else None,
            "gap_p_value": gap_p if gap_p < 1 else None,
            "themes": [
                {"theme": th.pair, "phrase": th.phrase, "comments": len(th.carriers), "ratio": th.ratio}
                for th in group_themes
            ],
            **C.indicator(stats.mean, "score 1-5", False, f"Mean CSAT score for {what}"),
            "metric": "csat_mean",
            "evidence_shown": min(len(low_rows), limit),
        },
        practice=Practice.SERVICE_DESK,
        service_id=value if dimension == "service" else None,
        impact=impact,
        effort=3,
        rating_reason=(
            f"Impact {impact}: {len(low_rows)} dissatisfied responses (1-5 at 5/10/25/50); effort 3: "
            "find out with the people behind the scores what went wrong, then change it."
        ),
    )
