"""SLA breaches: where and when targets are missed, and whether the probable cause is process,
resource or tooling.

Reads the incidents opened in the window that have an SLA verdict (``resolution_met`` and
``response_met``, derived by tikting/slas/verdicts.py; an incident without one — no definition,
still pending — is left out) and looks at the two targets separately (``kind``: resolution,
response).

**Where.** A service (incidents without one form one group) is a hot spot when it has at least
``min_breaches`` breaches and a breach share that the rest of the organisation's share explains
with ``P(X ≥ k | Binomial(n, p_rest)) ≤ breach_alpha`` (``p_rest`` Laplace-smoothed, as the change
detector does). One proposal per hot spot and kind.

**When.** The breach share by weekday and by time of day the incident opened (night 0–6 h,
morning 7–11 h, afternoon 12–17 h, evening 18–23 h, in the site's time zone) is in the figures.

**Why: the probable cause.** Breached incidents of the hot spot are compared with those of the
same service that met the target. Each cause has rules; a rule passes when the breached figure is
at least its ratio times the met one, and above a floor:

- *process*: reassignments per incident (``process_reassign_ratio``, breached mean ≥ 1);
  reopened share (``process_reopen_ratio``, breached share ≥ 5 %); the share of the time to
  resolution spent in waiting states (activities whose type names a wait: pending, hold, await,
  wait, vendor, each lasting to the incident's next activity; mean, ``process_wait_ratio``,
  breached mean ≥ 10 %: a share, since a breached incident is open longer and would pile up more
  hours of everything);
- *resource*: the assignment group's queue when the incident opened (its incidents opened and not
  yet resolved; mean, ``resource_queue_ratio``, breached mean ≥ 5); the worst weekday or time of
  day (its breach share against the rest of the service's, ``resource_when_ratio``, with at least
  ``min_cell_incidents`` incidents and 5 breaches in it);
- *tooling*: one configuration item (a tool, an integration, a server …) carries at least
  ``tooling_ci_share`` of the breaches and a breach share ``tooling_ci_ratio`` times the rest of
  the service's (which needs at least ``min_cell_incidents`` other incidents to compare with).

The verdict is the cause whose best passing rule exceeds its threshold by the largest factor
(ratio ÷ threshold); causes that also pass are named; no rule passing gives "undetermined".
Every rule with its figures, threshold and result is in ``figures["causes"]`` and the winning
figures are in the explanation.

Score: ``-log10`` of the hot spot's binomial P (0–20, 2 = "1 in 100 by chance"); magnitude:
the breaches. Baseline: the service's compliance in % (higher is better). Evidence: the breached
incidents (``breach``), at most ``max_evidence``. Practice: process → incident management,
resource → service desk, tooling → problem management, undetermined → service level management.
Thresholds and figures on real data: docs/signals.md, "SLA breaches".
"""

from __future__ import annotations

import bisect
import datetime as dt
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q
from django.utils import timezone

from tikting.accounts.models import Team
from tikting.cmdb.models import ConfigurationItem, Service
from tikting.core.itsm import Practice
from tikting.incidents.models import Incident, IncidentActivity
from tikting.lib.display import when
from tikting.signals.proposals import Progress, Proposal, Window, no_progress

from . import _common as C

NAME = "sla_breaches"
TITLE = "SLA breaches"
CHANNEL = "sla_breach"
THRESHOLDS: dict[str, float] = {
    "min_breaches": 10.0,  # a hot spot has at least this many breaches ...
    "breach_alpha": 0.01,  # ... and a share the rest of the organisation explains with P ≤ this
    "process_reassign_ratio": 1.5,  # reassignments per breached incident ÷ per met incident
    "process_reopen_ratio": 2.0,  # reopened share, breached ÷ met
    "process_wait_ratio": 1.5,  # share of the time to resolution spent waiting, breached ÷ met
    "resource_queue_ratio": 1.3,  # the group's queue when the incident opened, breached ÷ met
    "resource_when_ratio": 1.5,  # breach share in the worst weekday or time of day ÷ the rest
    "min_cell_incidents": 10.0,  # incidents a weekday or time of day needs to be judged
    "tooling_ci_share": 0.25,  # one CI carries at least this share of the breaches ...
    "tooling_ci_ratio": 1.5,  # ... with a breach share this many times the rest of the service's
    "max_evidence": 500.0,  # breached incidents listed per proposal (figures count all)
}
KINDS = {"resolution": "resolution_met", "response": "response_met"}
WAITING_WORDS = ("pending", "hold", "await", "wait", "vendor")
BANDS = ((0, 6, "night"), (7, 11, "morning"), (12, 17, "afternoon"), (18, 23, "evening"))
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
PRACTICE = {
    "process": Practice.INCIDENT,
    "resource": Practice.SERVICE_DESK,
    "tooling": Practice.PROBLEM,
    "undetermined": Practice.SLA,
}
EFFORT = {
    "process": (3, "rework of routing, hand-offs and waiting rules in the incident process"),
    "resource": (4, "staffing, shifts or queue management for the group"),
    "tooling": (3, "a problem investigation of the configuration item"),
    "undetermined": (3, "an analysis of the breaches before any change"),
}
HIGH_CRITICALITY = Service.Criticality.HIGH
MIN_CELL_BREACHES = 5
FLOORS = {"reassignments": 1.0, "reopened": 5.0, "waiting": 10.0, "queue": 5.0}


@dataclass
class Row:
    pk: int
    key: str
    opened: dt.datetime
    team_id: int | None
    ci_id: int | None
    reassignments: int
    reopened: bool
    breached: bool
    hours: float | None  # opened to resolved (else closed); None while open
    queue: int = 0
    waiting_hours: float = 0.0

    @property
    def waiting_pct(self) -> float | None:
        """The share of its time to resolution the incident spent in waiting states, in %."""
        if not self.hours:
            return None
        return min(100.0, 100.0 * self.waiting_hours / self.hours)


def detect(
    window: Window, *, thresholds: dict[str, float], progress: Progress = no_progress
) -> list[Proposal]:
    t = C.merged(THRESHOLDS, thresholds)
    incidents = Incident.objects.filter(opened_at__gte=window.start, opened_at__lt=window.end).exclude(
        status=Incident.Status.CANCELLED
    )
    hot: list[tuple[str, int | None, int, int, int, int, float]] = []
    for kind, flag in KINDS.items():
        counts = list(
            incidents.filter(**{f"{flag}__isnull": False})
            .values("service_id")
            .annotate(n=Count("pk"), k=Count("pk", filter=Q(**{flag: False})))
            .order_by("service_id")
        )
        total_n, total_k = sum(c["n"] for c in counts), sum(c["k"] for c in counts)
        for c in counts:
            n, k = c["n"], c["k"]
            if k < t["min_breaches"] or total_n - n <= 0:
                continue
            rest_n, rest_k = total_n - n, total_k - k
            p = C.against_rest(k, n, rest_k, rest_n)
            if p <= t["breach_alpha"]:
                hot.append((kind, c["service_id"], n, k, rest_n, rest_k, p))
    progress(1, len(hot) + 1)
    services = {
        pk: (name, crit)
        for pk, name, crit in Service.objects.filter(pk__in=[h[1] for h in hot if h[1]]).values_list(
            "pk", "name", "criticality"
        )
    }
    queues = _Queues()
    hot_services = {h[1] for h in hot}
    in_hot = Q(service__in=hot_services - {None}) | (
        Q(service__isnull=True) if None in hot_services else Q(pk__in=[])
    )
    waits = waiting_hours(incidents.filter(in_hot)) if hot else {}
    proposals = []
    for done, (kind, service_id, n, k, rest_n, rest_k, p) in enumerate(hot, start=2):
        rows = _rows(incidents, KINDS[kind], service_id)
        queues.fill(rows, window)
        for row in rows:
            row.waiting_hours = waits.get(row.pk, 0.0)
        proposals.append(_proposal(kind, service_id, services, rows, n, k, rest_n, rest_k, p, t, window))
        progress(done, len(hot) + 1)
    return sorted(proposals, key=lambda x: (-x.score, x.fingerprint))


# --- Reading --------------------------------------------------------------------------------------


def _rows(incidents: Any, flag: str, service_id: int | None) -> list[Row]:
    fields = (
        "pk",
        "number",
        "external_key",
        "opened_at",
        "assignment_group_id",
        "ci_id",
        "reassignment_count",
        "reopen_count",
        "resolved_at",
        "closed_at",
        flag,
    )
    return [
        Row(
            pk=pk,
            key=C.record_key(ext, number),
            opened=opened,
            team_id=team,
            ci_id=ci,
            reassignments=reassigned or 0,
            reopened=(reopened or 0) > 0,
            breached=not met,
            hours=((resolved or closed) - opened).total_seconds() / 3600 if (resolved or closed) else None,
        )
        for pk, number, ext, opened, team, ci, reassigned, reopened, resolved, closed, met in (
            incidents.filter(service_id=service_id, **{f"{flag}__isnull": False})
            .order_by("opened_at", "pk")
            .values_list(*fields)
            .iterator()
        )
    ]


class _Queues:
    """Each assignment group's queue: its incidents opened and not yet resolved, at any instant."""

    def __init__(self) -> None:
        self.opened: dict[int, list[dt.datetime]] = {}
        self.resolved: dict[int, list[dt.datetime]] = {}

    def fill(self, rows: list[Row], window: Window) -> None:
        teams = {row.team_id for row in rows if row.team_id is not None} - set(self.opened)
        if teams:
            opened: dict[int, list[dt.datetime]] = defaultdict(list)
            resolved: dict[int, list[dt.datetime]] = defaultdict(list)
            for team, start, end, closed in (
                Incident.objects.filter(assignment_group__in=teams, opened_at__lt=window.end)
                .filter(
                    Q(resolved_at__isnull=True, closed_at__isnull=True)
                    | Q(resolved_at__gte=window.start)
                    | Q(resolved_at__isnull=True, closed_at__gte=window.start)
                )
                .values_list("assignment_group_id", "opened_at", "resolved_at", "closed_at")
                .iterator()
            ):
                finished = end or closed
                opened[team].append(start)
                if finished is not None:
                    resolved[team].append(finished)
            for team in teams:
                self.opened[team] = sorted(opened.get(team, []))
                self.resolved[team] = sorted(resolved.get(team, []))
        for row in rows:
            if row.team_id is None:
                continue
            before = bisect.bisect_left(self.opened[row.team_id], row.opened)  # opened before it
            done = bisect.bisect_right(self.resolved[row.team_id], row.opened)  # resolved by then
            row.queue = max(0, before - done)


def waiting_hours(incidents: Any) -> dict[int, float]:
    """{incident pk: hours spent in waiting states} over `incidents` (a QuerySet), for those with a
    waiting activity: from each waiting activity to the incident's next activity. One query."""
    # The few distinct activity types first (39 in BPIC 2014), then an exact match: cheaper than
    # five case-insensitive LIKEs on every activity row.
    types = [
        name
        for name in IncidentActivity.objects.values_list("activity_type", flat=True).distinct().order_by()
        if any(word in name.lower() for word in WAITING_WORDS)
    ]
    if not types:
        return {}
    with_waits = IncidentActivity.objects.filter(
        activity_type__in=types, incident__in=incidents.values("pk")
    ).values("incident_id")
    hours: dict[int, float] = defaultdict(float)
    previous: tuple[int, dt.datetime, bool] | None = None
    for incident, at, activity in (
        IncidentActivity.objects.filter(incident_id__in=with_waits)
        .order_by("incident_id", "at", "pk")
        .values_list("incident_id", "at", "activity_type")
        .iterator()
    ):
        if previous and previous[0] == incident and previous[2]:
            hours[incident] += (at - previous[1]).total_seconds() / 3600
        lowered = activity.lower()
        previous = (incident, at, any(word in lowered for word in WAITING_WORDS))
    return hours


# --- The probable cause ---------------------------------------------------------------------------


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def _rule(
    cause: str,
    rule: str,
    figure: float,
    against: float,
    threshold: float,
    floor: float,
    text: str,
    **extra: Any,
) -> dict[str, Any]:
    """One rule: `figure` (the breached side) against `against`; it passes at ratio ≥ threshold and
    figure ≥ floor (and above 0). Strength: how far the ratio is above its threshold."""
    ratio = figure / against if against > 0 else None
    passed = figure >= floor and (ratio is None or ratio >= threshold) and figure > 0
    # With nothing on the other side there is no ratio: the strength is how far above its floor.
    strength = ratio / threshold if ratio is not None else (figure / floor if floor else 1.0)
    return {
        "cause": cause,
        "rule": rule,
        "figure": figure,
        "against": against,
        "ratio": ratio,
        "threshold": threshold,
        "floor": floor,
        "passed": passed,
        "strength": strength,
        "text": text,
        **extra,
    }


def _ratio_text(rule: dict[str, Any]) -> str:
    ratio = "no comparison (none on the other side)" if rule["ratio"] is None else f"×{rule['ratio']:.2f}"
    verdict = "passes" if rule["passed"] else "does not pass"
    return f"{ratio}; rule ×{rule['threshold']:g} and at least {rule['floor']:g}: {verdict}"


def _cells(rows: list[Row]) -> dict[str, dict[str, dict[str, float]]]:
    """Breach share by weekday and by time of day the incident opened (site time zone)."""
    zone = timezone.get_current_timezone()
    tally: dict[str, dict[str, list[int]]] = {
        "weekday": defaultdict(lambda: [0, 0]),
        "time": defaultdict(lambda: [0, 0]),
    }
    for row in rows:
        local = row.opened.astimezone(zone)
        band = next(name for lo, hi, name in BANDS if lo <= local.hour <= hi)
        for dimension, cell in (("weekday", WEEKDAYS[local.weekday()]), ("time", band)):
            tally[dimension][cell][0] += 1
            tally[dimension][cell][1] += row.breached
    order = {"weekday": list(WEEKDAYS), "time": [name for *_, name in BANDS]}
    return {
        dimension: {
            cell: {
                "incidents": cells[cell][0],
                "breaches": cells[cell][1],
                "share_pct": C.percent(cells[cell][1], cells[cell][0]),
            }
            for cell in order[dimension]
            if cell in cells
        }
        for dimension, cells in tally.items()
    }


def causes(
    rows: list[Row],
    cells: dict[str, dict[str, dict[str, float]]],
    t: dict[str, float],
    names: Callable[[str, int], str],
) -> list[dict[str, Any]]:
    """Every rule of every cause, with its figures and whether it passes."""
    breached = [r for r in rows if r.breached]
    met = [r for r in rows if not r.breached]
    n, k = len(rows), len(breached)
    rules = []
    # Process
    b, m = _mean([r.reassignments for r in breached]), _mean([r.reassignments for r in met])
    rule = _rule("process", "reassignments", b, m, t["process_reassign_ratio"], FLOORS["reassignments"], "")
    rule["text"] = (
        f"breached incidents were reassigned {b:.2f} times on average against {m:.2f} for those that met "
        f"the target ({_ratio_text(rule)})"
    )
    rules.append(rule)
    b, m = C.percent(sum(r.reopened for r in breached), k), C.percent(sum(r.reopened for r in met), len(met))
    rule = _rule("process", "reopened", b, m, t["process_reopen_ratio"], FLOORS["reopened"], "")
    rule["text"] = f"{b:.1f} % of breached incidents were reopened against {m:.1f} % ({_ratio_text(rule)})"
    rules.append(rule)
    b = _mean([w for r in breached if (w := r.waiting_pct) is not None])
    m = _mean([w for r in met if (w := r.waiting_pct) is not None])
    rule = _rule("process", "waiting", b, m, t["process_wait_ratio"], FLOORS["waiting"], "")
    rule["text"] = (
        f"breached incidents spent {b:.1f} % of their time to resolution in waiting states (pending, on "
        f"hold, vendor …) against {m:.1f} % for those that met the target ({_ratio_text(rule)})"
    )
    rules.append(rule)
    # Resource
    b, m = _mean([r.queue for r in breached if r.team_id]), _mean([r.queue for r in met if r.team_id])
    rule = _rule("resource", "queue", b, m, t["resource_queue_ratio"], FLOORS["queue"], "")
    rule["text"] = (
        f"the assignment group had {b:.1f} incidents open on average when a breached incident arrived "
        f"against {m:.1f} for those that met the target ({_ratio_text(rule)})"
    )
    rules.append(rule)
    worst: dict[str, Any] | None = None
    for dimension, by_cell in cells.items():
        for cell, c in by_cell.items():
            if c["incidents"] < t["min_cell_incidents"] or c["breaches"] < MIN_CELL_BREACHES:
                continue
            rest_n, rest_k = n - c["incidents"], k - c["breaches"]
            rest_share = C.percent(rest_k, rest_n)
            candidate = _rule(
                "resource",
                "when",
                c["share_pct"],
                rest_share,
                t["resource_when_ratio"],
                0.0,
                "",
                cell=cell,
                dimension=dimension,
                incidents=c["incidents"],
                breaches=c["breaches"],
            )
            if worst is None or candidate["strength"] > worst["strength"]:
                worst = candidate
    if worst is not None:
        when = worst["cell"] if worst["dimension"] == "weekday" else f"the {worst['cell']}"
        worst["text"] = (
            f"incidents opened on {when} breached {worst['figure']:.1f} % of the time against "
            f"{worst['against']:.1f} % at other times ({_ratio_text(worst)}, with at least "
            f"{t['min_cell_incidents']:g} incidents and {MIN_CELL_BREACHES} breaches)"
        )
        rules.append(worst)
    # Tooling
    per_ci: Counter[int] = Counter(r.ci_id for r in breached if r.ci_id)
    if per_ci:
        ci, ci_k = min(per_ci.items(), key=lambda item: (-item[1], item[0]))
        ci_n = sum(1 for r in rows if r.ci_id == ci)
        share_of_breaches = ci_k / k
        b, m = C.percent(ci_k, ci_n), C.percent(k - ci_k, n - ci_n)
        rule = _rule(
            "tooling",
            "ci",
            b,
            m,
            t["tooling_ci_ratio"],
            0.0,
            "",
            ci_id=ci,
            ci=names("ci", ci),
            share_of_breaches_pct=100 * share_of_breaches,
            ci_incidents=ci_n,
            ci_breaches=ci_k,
        )
        judged = n - ci_n >= t["min_cell_incidents"]
        rule["passed"] = rule["passed"] and share_of_breaches >= t["tooling_ci_share"] and judged
        rule["text"] = (
            f"{names('ci', ci)} carries {100 * share_of_breaches:.0f} % of the breaches (rule: at least "
            f"{100 * t['tooling_ci_share']:.0f} %) and {b:.1f} % of its incidents breached against {m:.1f} % "
            f"for the service's other incidents ({_ratio_text(rule)})"
        )
        if not judged:
            rule["text"] += (
                f"; not judged: the service has {n - ci_n} other incidents (fewer than "
                f"{t['min_cell_incidents']:g}) to compare with"
            )
        rules.append(rule)
    return rules


def verdict(rules: list[dict[str, Any]]) -> tuple[str, list[str]]:
    """The cause whose best passing rule is furthest above its threshold, and the others that pass."""
    best: dict[str, float] = {}
    for rule in rules:
        if rule["passed"]:
            best[rule["cause"]] = max(best.get(rule["cause"], 0.0), rule["strength"])
    if not best:
        return "undetermined", []
    ranked = sorted(best, key=lambda cause: (-best[cause], cause))
    return ranked[0], ranked[1:]


# --- Proposals ------------------------------------------------------------------------------------


def _proposal(
    kind: str,
    service_id: int | None,
    services: dict[int, tuple[str, int]],
    rows: list[Row],
    n: int,
    k: int,
    rest_n: int,
    rest_k: int,
    p: float,
    t: dict[str, float],
    window: Window,
) -> Proposal:
    ci_names = C.labels(ConfigurationItem, (r.ci_id for r in rows if r.breached))
    team_names = C.labels(Team, (r.team_id for r in rows if r.breached))

    def names(what: str, pk: int) -> str:
        return (ci_names if what == "ci" else team_names).get(pk, "?")

    cells = _cells(rows)
    rules = causes(rows, cells, t, names)
    cause, also = verdict(rules)
    service, criticality = services.get(service_id, ("no service", 0)) if service_id else ("no service", 0)
    share, rest_share = C.percent(k, n), C.percent(rest_k, rest_n)
    first, last = C.period(window)
    breached = [r for r in rows if r.breached]
    limit = int(t["max_evidence"])
    evidence = C.evidence("incident", ((r.pk, r.key) for r in breached[:limit]), "breach")
    teams = Counter(r.team_id for r in breached if r.team_id)
    top_teams = [
        {"team_id": team, "team": names("team", team), "breaches": count}
        for team, count in sorted(teams.items(), key=lambda item: (-item[1], item[0]))[:3]
    ]
    decided = [r for r in rules if r["passed"] and r["cause"] == cause]
    decided.sort(key=lambda r: -r["strength"])
    explanation = (
        f"On {service}, {k} of {n} incidents ({share:.1f} %) opened "
        f"from {when(first)} to {when(last)} missed their "
        f"{kind} target, against {rest_k} of {rest_n} ({rest_share:.1f} %) elsewhere (rule: at least "
        f"{t['min_breaches']:g} breaches and a share the rest explains with P ≤ {t['breach_alpha']:g}; "
        f"binomial P = {C.fmt_p(p)}). "
    )
    if decided:
        explanation += f"Probable cause: {cause}: {decided[0]['text']}."
        if also:
            explanation += f" Rules of {', '.join(also)} pass too (figures['causes'])."
    else:
        explanation += (
            "Probable cause undetermined: no process, resource or tooling rule passes "
            "(each rule and its figures: figures['causes'])."
        )
    effort, effort_why = EFFORT[cause]
    impact = C.clamp_rating(C.rating(k, (10, 25, 50, 100)) + (1 if criticality >= HIGH_CRITICALITY else 0))
    label = {"resolution": "resolution", "response": "response"}[kind]
    return Proposal(
        detector=NAME,
        fingerprint=f"{NAME}:{kind}:service={service_id or '-'}",
        title=f"SLA {label} targets missed on {service}: {k} of {n} ({share:.0f} %), probably {cause}",
        explanation=explanation,
        score=C.surprise(p),
        magnitude=float(k),
        period_start=first,
        period_end=last,
        evidence=evidence,
        figures={
            "kind": kind,
            "service_id": service_id,
            "service": service,
            "incidents": n,
            "breaches": k,
            "share_pct": share,
            "rest_incidents": rest_n,
            "rest_breaches": rest_k,
            "rest_share_pct": rest_share,
            "p_value": p,
            "cause": cause,
            "also": also,
            "causes": [{key: value for key, value in r.items() if key != "strength"} for r in rules],
            "when": cells,
            "teams": top_teams,
            **C.indicator(100.0 - share, "%", False, f"SLA {label} compliance on {service}"),
            "metric": f"sla_{label}",
            "evidence_shown": len(evidence),
        },
        practice=PRACTICE[cause],
        service_id=service_id,
        impact=impact,
        effort=effort,
        rating_reason=(
            f"Impact {impact}: {k} breaches (1-5 at 10/25/50/100)"
            + (" on a service of high criticality (+1)" if criticality >= HIGH_CRITICALITY else "")
            + f"; effort {effort}: {effort_why}."
        ),
    )
