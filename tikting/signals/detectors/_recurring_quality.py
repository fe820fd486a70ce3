"""The yardstick of the recurring-incident detector on real data (bench/signals_recurring_quality.py
and its test).

The ServiceNow event log links incidents to problems (``problem_id``, imported as ``problem``):
380 incidents, 244 problems, 35 of them with two or more incidents. Those 35 are the known
recurring patterns the detector is judged on:

- **recovered**: a problem at least two of whose incidents are in one group that is not much
  larger than the problem, i.e. at most ``factor`` (3) times its linked incidents;
- **pair recall**: of the pairs of incidents linked to the same problem, the share in one such
  group (also given for groups of any size, to show what a giant group would "find");
- **mean share**: per problem, the largest share of its incidents found together in one such
  group, averaged over the problems;
- **coverage**: the share of all the window's incidents in some group (a detector that groups
  everything "finds" every problem and tells the improvement manager nothing);
- **precision floor**: of the pairs of grouped incidents that are both linked to a problem, the
  share linked to the same one; and of all the pairs of grouped incidents, the share known to
  belong together. The links are sparse (1.5 % of the incidents have one), so an incident that
  shares a cause with its group but was never linked counts against the detector: a floor, not
  a verdict.

The naive baseline: incidents with the same category, subcategory, symptom and CI (an empty one
equal to an empty one), each opened within 30 days of the previous one, form a group.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from django.db.models import Max, Min
from django.db.models.fields.json import KeyTextTransform

from tikting.incidents.models import Incident
from tikting.signals.proposals import Window

from . import recurring_incidents as detector

FACTOR = 3  # a group "not much larger than the problem": at most this many times its incidents
BASELINE_DAYS = 30.0


def whole_window() -> Window:
    """From the first incident opened to just after the last one."""
    span = Incident.objects.aggregate(lo=Min("opened_at"), hi=Max("opened_at"))
    if span["lo"] is None:
        now = dt.datetime.now(tz=dt.UTC)
        return Window(now, now)
    return Window(span["lo"], span["hi"] + dt.timedelta(seconds=1))


def problem_links(window: Window) -> dict[int, int]:
    """Incident (pk) → the problem it is linked to, for the incidents opened in the window."""
    rows = Incident.objects.filter(
        problem__isnull=False, opened_at__gte=window.start, opened_at__lt=window.end
    ).values_list("pk", "problem_id")
    return dict(rows.iterator())


def known_problems(links: dict[int, int]) -> dict[int, list[int]]:
    """Problem → its incidents, for the problems with two or more."""
    linked: dict[int, list[int]] = defaultdict(list)
    for pk, problem in links.items():
        linked[problem].append(pk)
    return {problem: pks for problem, pks in linked.items() if len(pks) >= 2}


def baseline_groups(window: Window, *, min_size: int, days: float = BASELINE_DAYS) -> list[list[int]]:
    """Same category, subcategory, symptom and CI, each within `days` of the previous one."""
    rows = (
        Incident.objects.filter(opened_at__gte=window.start, opened_at__lt=window.end)
        .exclude(status=Incident.Status.CANCELLED)
        .annotate(symptom=KeyTextTransform(detector.SYMPTOM_KEY, "raw"))
        .order_by("opened_at", "pk")
        .values_list("pk", "opened_at", "category", "subcategory", "symptom", "ci_id")
    )
    gap = dt.timedelta(days=days)
    runs: dict[tuple[object, ...], list[int]] = {}
    last: dict[tuple[object, ...], dt.datetime] = {}
    groups: list[list[int]] = []
    for pk, opened, category, subcategory, symptom, ci in rows.iterator(chunk_size=10_000):
        key = (category or "", subcategory or "", symptom or "", ci)
        if key in last and opened - last[key] <= gap:
            runs[key].append(pk)
        else:
            if len(runs.get(key, ())) >= min_size:
                groups.append(runs[key])
            runs[key] = [pk]
        last[key] = opened
    groups += [run for run in runs.values() if len(run) >= min_size]
    return groups


@dataclass(frozen=True)
class Score:
    label: str
    groups: int
    largest: int
    grouped: int  # incidents in some group
    incidents: int  # in the window
    problems: int  # known problems with two or more incidents
    recovered: int
    pairs: int  # same-problem incident pairs
    pairs_found: int  # in one group at most FACTOR times the problem
    pairs_any_size: int  # in one group of any size
    mean_share: float
    linked_pairs: int  # grouped pairs whose both incidents are linked to a problem
    linked_pairs_same: int  # ... to the same problem
    grouped_pairs: int  # every pair of incidents in one group

    @property
    def coverage(self) -> float:
        return self.grouped / self.incidents if self.incidents else 0.0

    @property
    def pair_recall(self) -> float:
        return self.pairs_found / self.pairs if self.pairs else 0.0

    @property
    def pair_recall_any_size(self) -> float:
        return self.pairs_any_size / self.pairs if self.pairs else 0.0

    @property
    def linked_precision(self) -> float:
        return self.linked_pairs_same / self.linked_pairs if self.linked_pairs else 0.0

    @property
    def known_pair_floor(self) -> float:
        return self.pairs_any_size / self.grouped_pairs if self.grouped_pairs else 0.0


def score(label: str, groups: Sequence[Sequence[int]], links: dict[int, int], incidents: int) -> Score:
    """How well `groups` (lists of incident pks) hold the known problems together (module docstring).
    `links`: every incident linked to a problem; those of one-incident problems count for precision."""
    problems = known_problems(links)
    group_of: dict[int, int] = {}
    for g, members in enumerate(groups):
        for pk in members:
            group_of[pk] = g
    sizes = [len(members) for members in groups]
    recovered = pairs = pairs_found = pairs_any = 0
    shares = 0.0
    for pks in problems.values():
        n = len(pks)
        pairs += n * (n - 1) // 2
        together = Counter(group_of[pk] for pk in pks if pk in group_of)
        best = 0
        for g, k in together.items():
            pairs_any += k * (k - 1) // 2
            if sizes[g] <= FACTOR * n:
                pairs_found += k * (k - 1) // 2
                best = max(best, k)
        if best >= 2:
            recovered += 1
            shares += best / n
    linked = same = grouped_pairs = 0
    for members in groups:
        grouped_pairs += len(members) * (len(members) - 1) // 2
        counts = Counter(links[pk] for pk in members if pk in links)
        k = sum(counts.values())
        linked += k * (k - 1) // 2
        same += sum(c * (c - 1) // 2 for c in counts.values())
    return Score(
        label=label,
        groups=len(groups),
        largest=max(sizes, default=0),
        grouped=sum(sizes),
        incidents=incidents,
        problems=len(problems),
        recovered=recovered,
        pairs=pairs,
        pairs_found=pairs_found,
        pairs_any_size=pairs_any,
        mean_share=shares / len(problems) if problems else 0.0,
        linked_pairs=linked,
        linked_pairs_same=same,
        grouped_pairs=grouped_pairs,
    )


@dataclass(frozen=True)
class Comparison:
    window: Window
    incidents: int
    baseline: Score
    detector: Score
    seconds: float  # find_groups()
    proposes: Counter[str]  # "problem", "improvement", "" (a problem has it in hand)
    sweep: list[tuple[dict[str, float], Score]]


SWEEP: list[dict[str, float]] = [
    {"min_group_size": 2},
    {"min_group_size": 5},
    {"burst_hours": 1},
    {"burst_hours": 6},
    {"burst_surprise": 2},
    {"burst_surprise": 6},
    {"burst_ratio": 1},
    {"burst_correction": 0},
]


def compare(thresholds: dict[str, float] | None = None, *, sweep: bool = False) -> Comparison:
    """The detector's groups and the baseline's over every incident, against the known problems."""
    t = {**detector.THRESHOLDS, **(thresholds or {})}
    window = whole_window()
    links = problem_links(window)
    started = time.perf_counter()
    found = detector.find_groups(window, thresholds=t)
    seconds = time.perf_counter() - started
    refs = detector.problems_of(found.groups)
    proposes = Counter(detector.judge(g, refs, t).proposes for g in found.groups)
    base = baseline_groups(window, min_size=int(t["min_group_size"]))
    label = f"baseline: same class and CI within {BASELINE_DAYS:g} days"
    runs = []
    for change in SWEEP if sweep else []:
        other = detector.find_groups(window, thresholds={**t, **change})
        runs.append((change, score("", [g.members for g in other.groups], links, other.incidents)))
    return Comparison(
        window=window,
        incidents=found.incidents,
        baseline=score(label, base, links, found.incidents),
        detector=score("detector (defaults)", [g.members for g in found.groups], links, found.incidents),
        seconds=seconds,
        proposes=proposes,
        sweep=runs,
    )


def import_servicenow(path: Path) -> float:
    """`tikting import servicenow` of the event log. Returns the seconds it took."""
    from tikting.imports.servicenow import import_servicenow as run_import

    started = time.perf_counter()
    report = run_import(path)
    if report.error_count:
        raise RuntimeError(f"ServiceNow import: {report.error_count} errors")
    return time.perf_counter() - started
