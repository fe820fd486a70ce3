"""Changes: where changes fail, are backed out, are made in a hurry, are followed by incidents, or
do not deliver what they were for — by team, service and change type.

Reads the changes that ended in the window (actual end, else the record's close time; cancelled
changes and changes not yet ended are left out) and sorts each into four kinds of trouble:

- ``failed``: outcome failed or backed out;
- ``incidents``: followed by incidents (below), or its outcome says it caused one;
- ``unplanned``: emergency change type, or flagged unplanned or unauthorised;
- ``pir``: its post-implementation review says the intended outcome was not delivered.

**Followed by incidents.** An incident follows a change when it opened after the change ended and
within ``follow_hours`` of that end, on a configuration item the change touched (its CI or one
of its affected CIs) as the incident's affected CI *or as the CI the resolver named as the cause*
(``caused_by_ci``). A change with no CI recorded is matched on its service instead, within
``service_follow_hours`` (``service_match``: 0 never, 1 only changes without a CI, 2 every
change). The CIs and services of a busy estate see incidents every day whether or not anything
changed, so those incidents count only when there are more of them than chance explains: with
``λ`` the number expected from the same CIs' (or service's) incidents in the ``background_days``
before the change started (or since the first incident on record, when that is later: a change
with less than a day of incident history before it is not judged), the count ``n`` must have
``P(X ≥ n | Poisson(λ)) ≤ follow_alpha``
(``service_alpha`` for a service). The test is made over the first ``burst_hours`` and over the
whole window, the smaller P kept and doubled (Bonferroni): five incidents in the hour after a
change stand out on a CI that has fifteen a week. An incident recorded as caused by the change
(``caused_by_change``) always follows it, unless it opened before the change started (such a link
points at the change made to fix it, not at a cause); ``use_recorded_links = 0`` ignores recorded
links and the ``caused_incident`` outcome (the quality bench judges the inference alone that way).

**Proposals.**

- One per group and kind whose share of troubled changes stands out against the rest of the
  organisation. The groups, coarsest first: a team; the team on one service; that with one change
  type (changes without a team: their service, then with one type; ``unplanned`` is not split by
  type, the type being the trouble). A group is proposed only when no coarser group holding it
  is: a team whose changes fail everywhere is one candidate, with the finer cells in
  ``figures["breakdown"]``. A group stands out with at least ``min_group_changes`` such changes
  and ``P(X ≥ k | Binomial(n, p_rest)) ≤ group_alpha``, with ``p_rest`` the rest's share
  (Laplace-smoothed: (k' + 1) / (n' + 2), so a rest with no trouble still leaves room for chance;
  a group that makes every change of the organisation has no rest to stand out from and is never
  proposed). The ``pir`` share is
  over the changes with a review. Score: ``-log10`` of that P (0–20, 2 = "1 in 100 by chance");
  magnitude: the troubled changes. Accepting one creates an indicator: the group's share in %
  (``figures["baseline"]``), lower is better.
- One per change followed by ``single_change_incidents`` or more incidents whose number chance
  explains with ``P(X ≥ n | Poisson(λ)) ≤ single_change_alpha`` (recorded ones included): a
  **problem** to investigate. Score: ``-log10`` of that P; magnitude: the incidents.

Evidence: the troubled changes (role = the kind, ``cause`` for ``incidents``) and, for
``incidents``, the incidents that followed them (``followed_by``); ``figures["followed_by"]`` maps
each change's key to its incidents' keys. At most ``max_evidence`` records per proposal (the
figures count all of them). Thresholds and figures on real data: docs/signals.md, "Changes".
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import F, Min, Q, QuerySet
from django.db.models.functions import Coalesce

from tikting.accounts.models import Team
from tikting.changes.models import Change
from tikting.cmdb.models import Service
from tikting.core.itsm import Practice
from tikting.incidents.models import Incident
from tikting.lib.display import when
from tikting.signals.proposals import Evidence, Progress, Proposal, Window, no_progress

from . import _common as C

NAME = "changes"
TITLE = "Changes"
CHANNEL = "change_review"
THRESHOLDS: dict[str, float] = {
    "follow_hours": 72.0,  # an incident on a touched CI this long after the change's end follows it
    "service_follow_hours": 24.0,  # the same on the change's service ...
    "service_match": 1.0,  # ... 0: never, 1: only for changes with no CI recorded, 2: for every change
    "burst_hours": 4.0,  # also tested: the first hours after the end alone (a burst)
    "background_days": 28.0,  # the usual incident rate: this many days before the change started
    "follow_alpha": 0.05,  # incidents on the CIs count when chance explains them with P ≤ this
    "service_alpha": 0.001,  # the same for the service (stricter: a service has many CIs)
    "use_recorded_links": 1.0,  # 1: recorded caused_by_change links and outcomes count; 0: inference only
    "min_group_changes": 3.0,  # a team/service/type group needs at least this many troubled changes
    "group_alpha": 0.05,  # ... and a share the rest of the organisation explains with P ≤ this
    "single_change_incidents": 1.0,  # a change followed by this many incidents ...
    "single_change_alpha": 0.001,  # ... that chance explains with P ≤ this: a problem candidate
    "max_evidence": 500.0,  # records listed per proposal (figures count all)
}

FAILED = "failed"
INCIDENTS = "incidents"
UNPLANNED = "unplanned"
PIR = "pir"
KINDS = (FAILED, INCIDENTS, UNPLANNED, PIR)
ROLE = {FAILED: "failed", INCIDENTS: "cause", UNPLANNED: "unplanned", PIR: "pir_not_delivered"}
EFFORT = {
    FAILED: (3, "testing and back-out planning for this kind of change"),
    INCIDENTS: (3, "risk assessment and testing of this kind of change"),
    UNPLANNED: (2, "planning discipline and the change authority's process"),
    PIR: (2, "the benefit case and its review with the change owners"),
}
INDICATOR = {
    FAILED: "fail or are backed out",
    INCIDENTS: "are followed by incidents",
    UNPLANNED: "are emergency, unplanned or unauthorised",
    PIR: "do not deliver their intended outcome",
}
HIGH_CRITICALITY = Service.Criticality.HIGH
CHUNK = 5000  # ids per IN (...) list
MIN_BACKGROUND_HOURS = 24.0  # a change with less incident history than this before it is not judged


@dataclass
class ChangeRow:
    pk: int
    key: str
    change_type: str
    team_id: int | None
    service_id: int | None
    ci_id: int | None
    started: dt.datetime | None
    ended: dt.datetime
    outcome: str
    unplanned: bool
    pir_done: bool
    pir_delivered: bool | None
    kinds: set[str] = field(default_factory=set)
    # incident pk -> how it was linked: "recorded", "ci", "service"
    followed: dict[int, str] = field(default_factory=dict)
    expected: float = 0.0  # incidents expected after it by chance (CIs and service)

    @property
    def start(self) -> dt.datetime:
        return self.started or self.ended


@dataclass
class Group:
    kind: str
    team_id: int | None
    service_id: int | str | None  # ANY: not split by service
    change_type: str | None  # ANY: not split by type
    members: list[ChangeRow] = field(default_factory=list)
    troubled: list[ChangeRow] = field(default_factory=list)


def detect(
    window: Window, *, thresholds: dict[str, float], progress: Progress = no_progress
) -> list[Proposal]:
    t = C.merged(THRESHOLDS, thresholds)
    progress(0, 4)
    changes = ended_changes(window)
    rows = change_rows(changes)
    progress(1, 4)
    incident_keys = follow(rows, changes, t, window)
    progress(2, 4)
    for row in rows:
        _classify(row, t)
    proposals = _group_proposals(rows, incident_keys, t, window)
    proposals += _single_proposals(rows, incident_keys, t, window)
    progress(4, 4)
    return sorted(proposals, key=lambda p: (-p.score, p.fingerprint))


# --- Reading --------------------------------------------------------------------------------------


def ended_changes(window: Window) -> QuerySet[Change]:
    """The changes that ended in the window: actual end, else the record's close time; not cancelled."""
    return (
        Change.objects.exclude(status=Change.Status.CANCELLED)
        .annotate(ended=Coalesce("actual_end", "closed_at"))
        .filter(ended__gte=window.start, ended__lt=window.end)
    )


def change_rows(changes: QuerySet[Change]) -> list[ChangeRow]:
    fields = (
        "pk",
        "number",
        "external_key",
        "change_type",
        "assignment_group_id",
        "service_id",
        "ci_id",
        "actual_start",
        "ended",
        "outcome",
        "unplanned",
        "unauthorized",
        "pir_done",
        "pir_delivered_outcome",
    )
    rows = []
    for (
        pk,
        number,
        ext,
        ctype,
        team,
        service,
        ci,
        start,
        ended,
        outcome,
        unplanned,
        unauth,
        pir,
        delivered,
    ) in changes.order_by("pk").values_list(*fields).iterator():
        rows.append(
            ChangeRow(
                pk=pk,
                key=C.record_key(ext, number),
                change_type=ctype,
                team_id=team,
                service_id=service,
                ci_id=ci,
                started=start,
                ended=ended,
                outcome=outcome,
                unplanned=bool(unplanned or unauth),
                pir_done=bool(pir),
                pir_delivered=delivered,
            )
        )
    return rows


class _Timeline:
    """Sorted opening times per key (CI or service), to count and list incidents in a time range."""

    def __init__(self) -> None:
        self.times: dict[int, list[dt.datetime]] = defaultdict(list)
        self.pks: dict[int, list[int]] = defaultdict(list)

    def add(self, key: int, at: dt.datetime, pk: int) -> None:
        self.times[key].append(at)
        self.pks[key].append(pk)

    def freeze(self) -> None:
        for key, times in self.times.items():
            order = sorted(range(len(times)), key=lambda i: (times[i], self.pks[key][i]))
            self.times[key] = [times[i] for i in order]
            self.pks[key] = [self.pks[key][i] for i in order]

    def _span(self, key: int, lo: dt.datetime, hi: dt.datetime, closed_low: bool) -> tuple[int, int]:
        times = self.times.get(key, [])
        first = bisect.bisect_left(times, lo) if closed_low else bisect.bisect_right(times, lo)
        return first, bisect.bisect_right(times, hi)

    def count_before(self, key: int, lo: dt.datetime, hi: dt.datetime) -> int:
        """Incidents opened in [lo, hi)."""
        times = self.times.get(key, [])
        return bisect.bisect_left(times, hi) - bisect.bisect_left(times, lo)

    def after(self, key: int, lo: dt.datetime, hi: dt.datetime) -> list[int]:
        """Incidents opened in (lo, hi]."""
        first, last = self._span(key, lo, hi, closed_low=False)
        return self.pks.get(key, [])[first:last]


def follow(
    rows: list[ChangeRow], changes: QuerySet[Change], t: dict[str, float], window: Window
) -> dict[int, str]:
    """Fill each row's `followed` and `expected`; returns {incident pk: key} of the incidents named."""
    hours = dt.timedelta(hours=t["follow_hours"])
    service_hours = dt.timedelta(hours=t["service_follow_hours"])
    background = dt.timedelta(days=t["background_days"])
    keys: dict[int, str] = {}
    by_pk = {row.pk: row for row in rows}

    # The CIs each change touched: its own CI and its affected CIs.
    touched: dict[int, set[int]] = defaultdict(set)
    for row in rows:
        if row.ci_id:
            touched[row.pk].add(row.ci_id)
    through = Change.affected_cis.through
    for change_id, ci_id in (
        through.objects.filter(change__in=changes.values("pk"))
        .values_list("change_id", "configurationitem_id")
        .iterator()
    ):
        touched[change_id].add(ci_id)

    starts = [row.start for row in rows]
    lo = (min(starts) if starts else window.start) - background
    hi = window.end + max(hours, service_hours)
    on_cis = _Timeline()
    recent = Incident.objects.filter(opened_at__gte=lo, opened_at__lt=hi)
    all_cis = sorted(set().union(*touched.values())) if touched else []
    seen: set[int] = set()
    # The CI ids in chunks (an IN list under SQLite's limit on parameters): a plain list is planned
    # far better than a subquery OR-ed over two columns (3 s → 0.2 s on PostgreSQL for BPIC 2014).
    for start in range(0, len(all_cis), CHUNK):
        chunk = all_cis[start : start + CHUNK]
        for pk, number, ext, opened, ci, cby in (
            recent.filter(Q(ci__in=chunk) | Q(caused_by_ci__in=chunk))
            .values_list("pk", "number", "external_key", "opened_at", "ci_id", "caused_by_ci_id")
            .iterator()
        ):
            if pk in seen:
                continue
            seen.add(pk)
            keys[pk] = C.record_key(ext, number)
            for ci_id in {ci, cby} - {None}:
                on_cis.add(ci_id, opened, pk)
    on_cis.freeze()

    on_services = _Timeline()
    services = {
        row.service_id for row in rows if row.service_id and _service_tier(t, bool(touched.get(row.pk)))
    }
    if services:
        for pk, number, ext, opened, service in (
            recent.filter(service__in=Service.objects.filter(changes__in=changes.values("pk")).values("pk"))
            .values_list("pk", "number", "external_key", "opened_at", "service_id")
            .iterator()
        ):
            if service in services:
                keys[pk] = C.record_key(ext, number)
                on_services.add(service, opened, pk)
        on_services.freeze()

    # The background can only count incidents the records hold: before the first incident there is
    # nothing to count, and a change whose background lies (mostly) before it cannot be judged.
    first = Incident.objects.aggregate(first=Min("opened_at"))["first"]
    for row in rows:
        seen_from = max(row.start - background, first) if first else row.start
        span = (row.start - seen_from).total_seconds() / 3600
        if span < MIN_BACKGROUND_HOURS:
            continue
        cis = sorted(touched.get(row.pk, ()))
        tiers = [(on_cis, cis, t["follow_hours"], t["follow_alpha"], "ci")]
        if row.service_id and _service_tier(t, bool(cis)):
            tiers.append(
                (on_services, [row.service_id], t["service_follow_hours"], t["service_alpha"], "service")
            )
        for timeline, keys_, tier_hours, alpha, link in tiers:
            if not keys_:
                continue
            after, expected, p = _excess(timeline, keys_, row, tier_hours, t["burst_hours"], seen_from, span)
            row.expected += expected
            if after and p <= alpha:
                for pk in after:
                    row.followed.setdefault(pk, link)

    if t["use_recorded_links"]:
        # A recorded cause counts unless the incident opened before the change started: such links
        # point at the change raised to fix the incident (BPIC 2014's Related Change, mostly).
        for pk, number, ext, change_id in (
            Incident.objects.filter(caused_by_change__in=changes.values("pk"))
            .filter(
                opened_at__gte=Coalesce(F("caused_by_change__actual_start"), F("caused_by_change__opened_at"))
            )
            .values_list("pk", "number", "external_key", "caused_by_change_id")
            .iterator()
        ):
            keys[pk] = C.record_key(ext, number)
            by_pk[change_id].followed[pk] = "recorded"
    return keys


def _service_tier(t: dict[str, float], has_cis: bool) -> bool:
    """Whether a change's service is searched too (service_match: 0 never, 1 without CIs, 2 always)."""
    if t["service_follow_hours"] <= 0:
        return False
    return t["service_match"] >= 2 or (t["service_match"] >= 1 and not has_cis)


def _excess(
    timeline: _Timeline,
    keys: list[int],
    row: ChangeRow,
    hours: float,
    burst_hours: float,
    seen_from: dt.datetime,
    span_hours: float,
) -> tuple[list[int], float, float]:
    """The incidents on `keys` (CIs or a service) after the change, the number expected by chance
    and the chance P of as many: tested over the first `burst_hours` and over the whole `hours`
    (a burst right after the change stands out even where the day's total does not), the smaller
    P kept and multiplied by the number of tests (Bonferroni). Counted per key: an incident on two
    touched CIs counts twice, before and after alike."""
    start, end = row.start, row.ended
    before = sum(timeline.count_before(key, seen_from, start) for key in keys)
    rate = before / span_hours  # incidents an hour, before the change
    horizons = sorted({h for h in (burst_hours, hours) if 0 < h <= hours})
    best: tuple[list[int], float, float] = ([], rate * hours, 1.0)
    for h in horizons:
        until = end + dt.timedelta(hours=h)
        after = [pk for key in keys for pk in timeline.after(key, end, until)]
        if not after:
            continue
        p = min(1.0, C.poisson_sf(len(after), rate * h) * len(horizons))
        if p < best[2] or (p == best[2] and len(after) > len(best[0])):  # a tie: the more incidents
            best = (after, rate * h, p)
    return best


def _classify(row: ChangeRow, t: dict[str, float]) -> None:
    if row.outcome in (Change.Outcome.FAILED, Change.Outcome.BACKED_OUT):
        row.kinds.add(FAILED)
    if row.followed or (t["use_recorded_links"] and row.outcome == Change.Outcome.CAUSED_INCIDENT):
        row.kinds.add(INCIDENTS)
    if row.change_type == Change.Type.EMERGENCY or row.unplanned:
        row.kinds.add(UNPLANNED)
    if row.pir_done and row.pir_delivered is False:
        row.kinds.add(PIR)


# --- Proposals ------------------------------------------------------------------------------------


ANY = "*"  # a dimension a group is not split by
GroupKey = tuple[str, int | None, int | str | None, str | None]  # kind, team, service | ANY, type | ANY


def _group_keys(kind: str, row: ChangeRow) -> list[GroupKey]:
    """The groups a change belongs to, coarsest first: its team, the team on its service, and that
    with its change type; without a team, its service and that with its type. `unplanned` is not
    split by type (the type is the trouble)."""
    keys: list[GroupKey] = []
    if row.team_id is not None:
        keys.append((kind, row.team_id, ANY, ANY))
    keys.append((kind, row.team_id, row.service_id, ANY))
    if kind != UNPLANNED:
        keys.append((kind, row.team_id, row.service_id, row.change_type))
    return keys


def _ancestors(key: GroupKey) -> list[GroupKey]:
    kind, team, service, ctype = key
    found: list[GroupKey] = []
    if team is not None and service != ANY:
        found.append((kind, team, ANY, ANY))
    if ctype != ANY:
        found.append((kind, team, service, ANY))
    return found


def _eligible(kind: str, row: ChangeRow) -> bool:
    return row.pir_done if kind == PIR else True


def _group_proposals(
    rows: list[ChangeRow], incident_keys: dict[int, str], t: dict[str, float], window: Window
) -> list[Proposal]:
    groups: dict[GroupKey, Group] = {}
    totals: dict[str, list[int]] = {kind: [0, 0] for kind in KINDS}  # kind -> [eligible, troubled]
    for row in rows:
        for kind in KINDS:
            if not _eligible(kind, row):
                continue
            totals[kind][0] += 1
            totals[kind][1] += kind in row.kinds
            for key in _group_keys(kind, row):
                group = groups.get(key)
                if group is None:
                    group = groups[key] = Group(kind, key[1], key[2], key[3])
                group.members.append(row)
                if kind in row.kinds:
                    group.troubled.append(row)
    standing_out: dict[GroupKey, tuple[Group, float, int, int]] = {}
    for key, group in groups.items():
        k, n = len(group.troubled), len(group.members)
        if k < t["min_group_changes"]:
            continue
        rest_n, rest_k = totals[group.kind][0] - n, totals[group.kind][1] - k
        if rest_n <= 0:
            continue  # nothing to stand out from
        p = C.against_rest(k, n, rest_k, rest_n)
        if p <= t["group_alpha"]:
            standing_out[key] = (group, p, rest_n, rest_k)
    # The coarsest group that stands out speaks for the finer ones inside it (in its breakdown).
    chosen = [
        item for key, item in standing_out.items() if not any(a in standing_out for a in _ancestors(key))
    ]
    if not chosen:
        return []
    teams = C.labels(Team, (g.team_id for g, *_ in chosen))
    services = _services(pk for g, *_ in chosen for pk in {g.service_id, *(r.service_id for r in g.members)})
    return [
        _group_proposal(group, p, rest_n, rest_k, teams, services, incident_keys, t, window)
        for group, p, rest_n, rest_k in chosen
    ]


def _services(pks: Iterable[int | str | None]) -> dict[int, tuple[str, int]]:
    wanted = {pk for pk in pks if isinstance(pk, int)}
    return {
        pk: (name, crit)
        for pk, name, crit in Service.objects.filter(pk__in=wanted).values_list("pk", "name", "criticality")
    }


def _describe(group: Group, teams: dict[int, str], services: dict[int, tuple[str, int]]) -> str:
    parts = []
    if group.change_type not in (None, ANY):
        parts.append(f"{Change.Type(group.change_type).label.lower()} changes")
    else:
        parts.append("changes")
    if group.team_id:
        parts.append(f"by {teams.get(group.team_id, '?')}")
    if isinstance(group.service_id, int):
        parts.append(f"on {services.get(group.service_id, ('?', 0))[0]}")
    elif group.service_id is None:
        parts.append("on no service")
    text = " ".join(parts)
    return text[0].upper() + text[1:]


def _group_proposal(
    group: Group,
    p: float,
    rest_n: int,
    rest_k: int,
    teams: dict[int, str],
    services: dict[int, tuple[str, int]],
    incident_keys: dict[int, str],
    t: dict[str, float],
    window: Window,
) -> Proposal:
    kind = group.kind
    k, n = len(group.troubled), len(group.members)
    rate, rest_rate = C.percent(k, n), C.percent(rest_k, rest_n)
    what = _describe(group, teams, services)
    first, last = C.period(window)
    troubled = sorted(group.troubled, key=lambda r: (r.ended, r.pk))
    limit = int(t["max_evidence"])
    evidence = C.evidence("change", ((r.pk, r.key) for r in troubled[:limit]), ROLE[kind])
    service_id = group.service_id if isinstance(group.service_id, int) else None
    touched = {r.service_id for r in group.members}
    if group.service_id == ANY and len(touched) == 1:
        service_id = next(iter(touched))  # a team level group whose changes are all on one service
    cells: dict[tuple[int | None, str], list[int]] = defaultdict(lambda: [0, 0])
    for row in group.members:
        cells[(row.service_id, row.change_type)][0] += 1
        cells[(row.service_id, row.change_type)][1] += kind in row.kinds
    figures: dict[str, Any] = {
        "kind": kind,
        "level": "+".join(
            name
            for name, value in (
                ("team", group.team_id),
                ("service", group.service_id),
                ("type", group.change_type),
            )
            if value != ANY and not (name == "team" and value is None)
        ),
        "team_id": group.team_id,
        "team": teams.get(group.team_id) if group.team_id else None,
        "service_id": group.service_id if group.service_id != ANY else None,
        "service": services[group.service_id][0] if group.service_id in services else None,
        "change_type": group.change_type if group.change_type != ANY else None,
        "breakdown": [
            {
                "service_id": svc,
                "service": services.get(svc, ("no service", 0))[0] if svc else "no service",
                "change_type": ctype,
                "changes": count,
                "troubled": bad,
            }
            for (svc, ctype), (count, bad) in sorted(
                cells.items(), key=lambda c: (-c[1][1], -c[1][0], str(c[0]))
            )
        ],
        "changes": n,
        "troubled": k,
        "share_pct": rate,
        "rest_changes": rest_n,
        "rest_troubled": rest_k,
        "rest_share_pct": rest_rate,
        "p_value": p,
        **C.indicator(rate, "%", True, f"{what}: share that {INDICATOR[kind]}"),
    }
    denominator = "reviewed changes" if kind == PIR else "changes"
    verb = {
        FAILED: "failed or were backed out",
        INCIDENTS: "were followed by incidents",
        UNPLANNED: "were emergency, unplanned or unauthorised changes",
        PIR: "did not deliver their intended outcome (post-implementation review)",
    }[kind]
    explanation = (
        f"{k} of {n} {denominator} ({rate:.1f} %) — {what[0].lower() + what[1:]} that ended "
        f"from {when(first)} "
        f"to {when(last)} — "
        f"{verb}, against {rest_k} of {rest_n} ({rest_rate:.1f} %) for the rest of the organisation. "
        f"Rule: at least {t['min_group_changes']:g} such changes and a share the rest's rate explains "
        f"with P ≤ {t['group_alpha']:g} (binomial; here P = {C.fmt_p(p)})."
    )
    if kind == INCIDENTS:
        followed: dict[str, list[str]] = {}
        incidents: dict[int, str] = {}
        how: dict[str, int] = defaultdict(int)
        for row in troubled:
            for pk, link in sorted(row.followed.items()):
                if pk not in incidents:
                    how[link] += 1
                incidents[pk] = incident_keys[pk]
                followed.setdefault(row.key, []).append(incident_keys[pk])
        room = max(0, limit - len(evidence))
        evidence += C.evidence("incident", sorted(incidents.items())[:room], "followed_by")
        figures.update(
            incidents=len(incidents),
            incidents_by_link=dict(sorted(how.items())),
            followed_by=_capped(followed, limit),
            metric="change_incident_rate",
        )
        explanation += (
            f" {len(incidents)} incidents followed them "
            f'({_how_text(how)}; the follow rule: docs/signals.md, "Changes").'
            if incidents
            else " Their outcome records that they caused an incident."
        )
    figures["evidence_shown"] = len(evidence)
    criticality = max((services.get(r.service_id, ("", 0))[1] for r in troubled if r.service_id), default=0)
    impact = C.clamp_rating(C.rating(k, (3, 6, 12, 25)) + (1 if criticality >= HIGH_CRITICALITY else 0))
    effort, effort_why = EFFORT[kind]
    reason = (
        f"Impact {impact}: {k} troubled changes (1-5 at 3/6/12/25 changes)"
        + (" touching a service of high criticality (+1)" if criticality >= HIGH_CRITICALITY else "")
        + f"; effort {effort}: {effort_why}."
    )
    fingerprint = (
        f"{NAME}:{kind}:team={group.team_id or '-'}:service={group.service_id or '-'}"
        f":type={group.change_type or '-'}"
    )
    return Proposal(
        detector=NAME,
        fingerprint=fingerprint,
        title=f"{what}: {k} of {n} {verb.split(' (')[0]}",
        explanation=explanation,
        score=C.surprise(p),
        magnitude=float(k),
        period_start=first,
        period_end=last,
        evidence=evidence,
        figures=figures,
        practice=Practice.CHANGE,
        service_id=service_id,
        impact=impact,
        effort=effort,
        rating_reason=reason,
    )


def _how_text(how: dict[str, int]) -> str:
    words = {
        "recorded": "recorded as caused by the change",
        "ci": "on a CI it touched",
        "service": "on its service",
    }
    return ", ".join(f"{count} {words[link]}" for link, count in sorted(how.items()))


def _capped(followed: dict[str, list[str]], limit: int) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    room = limit
    for change, incidents in followed.items():
        if room <= 0:
            break
        out[change] = incidents[:room]
        room -= len(out[change])
    return out


def _single_proposals(
    rows: list[ChangeRow], incident_keys: dict[int, str], t: dict[str, float], window: Window
) -> list[Proposal]:
    big = [
        row
        for row in rows
        if len(row.followed) >= t["single_change_incidents"]
        and C.poisson_sf(len(row.followed), row.expected) <= t["single_change_alpha"]
    ]
    if not big:
        return []
    services = _services(row.service_id for row in big)
    first, last = C.period(window)
    proposals = []
    limit = int(t["max_evidence"])
    for row in big:
        n = len(row.followed)
        incidents = f"{n} incident" + ("s" if n != 1 else "")
        p = C.poisson_sf(n, row.expected)
        how: dict[str, int] = defaultdict(int)
        for link in row.followed.values():
            how[link] += 1
        followed = sorted(row.followed)
        evidence: list[Evidence] = [Evidence("change", row.pk, row.key, "cause")]
        evidence += C.evidence(
            "incident", ((pk, incident_keys[pk]) for pk in followed[: limit - 1]), "followed_by"
        )
        criticality = services.get(row.service_id, ("", 0))[1] if row.service_id else 0
        impact = C.clamp_rating(C.rating(n, (3, 6, 12, 25)) + (1 if criticality >= HIGH_CRITICALITY else 0))
        service = services[row.service_id][0] if row.service_id in services else None
        proposals.append(
            Proposal(
                detector=NAME,
                fingerprint=f"{NAME}:change={row.pk}:followed",
                title=f"Change {row.key} was followed by {incidents}",
                explanation=(
                    f"Change {row.key} ({Change.Type(row.change_type).label.lower()}"
                    + (f", {service}" if service else "")
                    + f") ended {when(row.ended)} and was followed by {incidents} "
                    f"({_how_text(how)}); {row.expected:.2f} were expected from the same CIs and service "
                    f"before it (Poisson P = {C.fmt_p(p)}). Rule: {t['single_change_incidents']:g} or more "
                    "incidents following one change propose a problem investigation."
                ),
                score=C.surprise(p),
                magnitude=float(n),
                period_start=first,
                period_end=last,
                evidence=evidence,
                figures={
                    "kind": "single_change",
                    "change": row.key,
                    "change_type": row.change_type,
                    "service_id": row.service_id,
                    "service": service,
                    "ended": row.ended.isoformat(),
                    "incidents": n,
                    "incidents_by_link": dict(sorted(how.items())),
                    "expected": row.expected,
                    "p_value": p,
                    "followed_by": {row.key: [incident_keys[pk] for pk in followed[: limit - 1]]},
                    "evidence_shown": len(evidence),
                },
                practice=Practice.CHANGE,
                service_id=row.service_id,
                impact=impact,
                effort=2,
                rating_reason=(
                    f"Impact {impact}: {n} incidents followed the change (1-5 at 3/6/12/25)"
                    + (" on a service of high criticality (+1)" if criticality >= HIGH_CRITICALITY else "")
                    + "; effort 2: a problem investigation of one change."
                ),
                proposes="problem",
            )
        )
    return proposals
