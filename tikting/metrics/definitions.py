"""The ITSM metrics, each defined once: key, label, unit, direction, record model, formula, edge cases.

The engine (engine.py) computes every metric from this registry; the CLI, the API and the metrics
page list it; docs/metrics.md ("ITSM metrics") spells out the same formulas. Keep them in step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.core.exceptions import ValidationError
from django.db.models import Model

__all__ = [
    "DATE_FIELDS",
    "DEFINITIONS",
    "SLICERS",
    "UNITS",
    "MetricDefinition",
    "get_definition",
]

# The slicers a series can be grouped by (periods, then the attributes).
PERIODS = ("month", "week")
ATTRIBUTES = ("priority", "service", "group", "category", "ci", "practice")
SLICERS = PERIODS + ATTRIBUTES

# Which date places a record in a period and in the from/to window: its opening (the default), its
# resolution or its closure. Not every record has each (MODEL_DATES).
DATE_FIELDS = ("opened", "resolved", "closed")
MODEL_DATES: dict[str, dict[str, str]] = {
    "incidents.Incident": {"opened": "opened_at", "resolved": "resolved_at", "closed": "closed_at"},
    "incidents.Interaction": {"opened": "opened_at", "closed": "closed_at"},
    "changes.Change": {"opened": "opened_at", "closed": "closed_at"},
    "surveys.SurveyResponse": {"opened": "responded_at"},
    # The day of a daily accuracy snapshot (the "snapshot" family reads each period's last day).
    "discovery.AccuracySnapshot": {"opened": "day"},
}

# Units a duration can be shown in, as minutes each (whole numbers: a conversion multiplies by one
# and divides by the other, so 4.25 h is 0.17708333333333334 d, as 4.25 / 24 is).
UNITS = ("minutes", "hours", "days")
MINUTES_PER: dict[str, int] = {"minutes": 1, "hours": 60, "days": 1440}
# Decimals a value is shown with on the page and in CLI tables (data outputs are unrounded).
UNIT_DECIMALS = {"minutes": 1}


@dataclass(frozen=True)
class MetricDefinition:
    key: str
    label: str
    unit: str  # "hours", "%", "incidents", "days", "score", "reassignments"
    direction: str  # "lower" or "higher" is better, or "neutral"
    model_label: str  # "incidents.Incident"
    practice: str  # the register practice the metric belongs to
    family: str  # how the engine computes it: duration, ratio, mean, backlog, snapshot
    value: str  # which figure of the family is the metric's value: mean, median, p90, percent, count, age
    formula: str
    edge_cases: tuple[str, ...] = ()
    date_field: str = "opened_at"  # the opening date: date_field "opened" (MODEL_DATES)
    sla: bool = False  # the result says which basis (SLA definitions or the source's flag) it used
    decimals: int = 2
    extras: tuple[str, ...] = field(default=())  # names of the extra counts each point carries

    @property
    def model(self) -> type[Model]:
        return apps.get_model(self.model_label)

    @property
    def is_duration(self) -> bool:
        """A time figure, which can be shown in minutes, hours or days."""
        return self.unit in MINUTES_PER

    @property
    def units(self) -> tuple[str, ...]:
        return UNITS if self.is_duration else (self.unit,)

    @property
    def date_fields(self) -> tuple[str, ...]:
        """The dates a series can be placed by: opened, and resolved / closed where the record has
        them. The backlog is counted at instants (period ends), so it is by opening only."""
        if self.family in ("backlog", "snapshot"):
            return ("opened",)
        return tuple(MODEL_DATES[self.model_label])

    def decimals_in(self, unit: str) -> int:
        """Decimals for display in `unit` (rounding is for display only)."""
        return UNIT_DECIMALS.get(unit, self.decimals)

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "unit": self.unit,
            "direction": self.direction,
            "record": self.model_label,
            "practice": self.practice,
            "formula": self.formula,
            "edge_cases": list(self.edge_cases),
            "date_field": self.date_field,
            "date_fields": list(self.date_fields),
            "units": list(self.units),
            "decimals": self.decimals,
        }


_TTR_EDGES = (
    "Time to resolve = resolved_at − opened_at, in hours (fractions count).",
    "Unresolved incidents (no resolved_at and an open status, or reopened and open again) are "
    "excluded and counted as `unresolved`.",
    "Reopened incidents are measured to their final resolution (resolved_at holds the last one).",
    "Resolved or closed incidents without resolved_at, or with resolved_at before opened_at, are "
    "excluded and counted as `missing_timestamps`; cancelled incidents are left out.",
    "Wall-clock time (24×7): business hours matter for SLA compliance, not for MTTR.",
)

_SLA_EDGES = (
    "Basis `definitions`: met flags computed by tikting.slas.verdicts.apply_slas from the SLA "
    "definitions (targets per priority; a service's own definition wins over the general one; "
    "24×7 or business hours in the site time zone).",
    "Basis `source`: the source's own flag (source_sla_met, ServiceNow's made_sla); resolution only.",
    "Default basis `auto`: definitions when any incident in scope has a computed flag, else source.",
    "Incidents without a flag (no matching SLA, no priority, still within target, no response "
    "timestamp) are excluded and counted as `not_evaluated`.",
    "An incident still open past its due time is breached.",
)

_ASSET_EDGES = (
    "Read from the daily accuracy snapshots (one row per day and CI class, taken after every "
    "discovery run and by the worker's daily schedule): a total, or a period of a series, is the "
    "snapshot of its last day with one (the window's date_to, the period's end), never a sum over days; "
    "`as_of` names that day. A period without a snapshot has no value.",
    "Filtered and sliced by CI class with `category`; the other filters and slicers do not apply.",
    "In scope: registered CIs (in service or in maintenance) of the classes in "
    "TIKTING_DISCOVERY_SCOPE_CLASSES; N = TIKTING_DISCOVERY_STALE_DAYS (docs/discovery.md).",
)


def _asset(
    key: str,
    label: str,
    unit: str,
    direction: str,
    formula: str,
    edge_cases: tuple[str, ...],
    extras: tuple[str, ...] = (),
) -> MetricDefinition:
    """An asset data accuracy metric: read from the daily snapshots (family "snapshot"), a share in
    % or a count, each point naming the snapshot day it is (`as_of`)."""
    share = unit == "%"
    return MetricDefinition(
        key,
        label,
        unit,
        direction,
        "discovery.AccuracySnapshot",
        "asset",
        "snapshot",
        "percent" if share else "count",
        formula,
        edge_cases,
        date_field="day",
        decimals=2 if share else 0,
        extras=(*extras, "as_of"),
    )


DEFINITIONS: dict[str, MetricDefinition] = {
    d.key: d
    for d in (
        MetricDefinition(
            "mttr",
            "MTTR (mean time to resolve)",
            "hours",
            "lower",
            "incidents.Incident",
            "incident",
            "duration",
            "mean",
            "AVG(resolved_at − opened_at) over resolved incidents, in hours",
            _TTR_EDGES,
            extras=("median", "p90", "unresolved", "missing_timestamps"),
        ),
        MetricDefinition(
            "mttr_median",
            "Median time to resolve",
            "hours",
            "lower",
            "incidents.Incident",
            "incident",
            "duration",
            "median",
            "PERCENTILE_CONT(0.5) of (resolved_at − opened_at) over resolved incidents, in hours "
            "(linear interpolation)",
            _TTR_EDGES,
            extras=("mean", "p90", "unresolved", "missing_timestamps"),
        ),
        MetricDefinition(
            "mttr_p90",
            "90th percentile time to resolve",
            "hours",
            "lower",
            "incidents.Incident",
            "incident",
            "duration",
            "p90",
            "PERCENTILE_CONT(0.9) of (resolved_at − opened_at) over resolved incidents, in hours "
            "(linear interpolation)",
            _TTR_EDGES,
            extras=("mean", "median", "unresolved", "missing_timestamps"),
        ),
        MetricDefinition(
            "fcr_rate",
            "First-contact resolution rate (interactions)",
            "%",
            "higher",
            "incidents.Interaction",
            "service_desk",
            "ratio",
            "percent",
            "interactions resolved at first contact / interactions with a known flag × 100",
            ("Interactions whose flag is unknown (null) are excluded and counted as `unknown`.",),
            extras=("resolved_first_contact", "unknown", "unresolved"),
        ),
        MetricDefinition(
            "incident_fcr_rate",
            "First-contact resolution rate (incidents)",
            "%",
            "higher",
            "incidents.Incident",
            "incident",
            "ratio",
            "percent",
            "incidents resolved at first contact / incidents with a known flag × 100",
            (
                "Incidents whose flag is unknown (null) are excluded and counted as `unknown` "
                "(BPIC 2014 keeps FCR on interactions only).",
            ),
            extras=("resolved_first_contact", "unknown", "unresolved"),
        ),
        MetricDefinition(
            "change_success_rate",
            "Change success rate",
            "%",
            "higher",
            "changes.Change",
            "change",
            "ratio",
            "percent",
            "successful changes / changes with a known outcome × 100",
            (
                "Changes without an outcome (not implemented yet, or the source has none) are "
                "excluded and counted as `no_outcome`.",
                "Failed, backed-out and caused-incident changes are unsuccessful; each is counted.",
                "`unplanned` counts unplanned changes in scope, whatever their outcome.",
            ),
            extras=(
                "successful",
                "failed",
                "backed_out",
                "caused_incident",
                "unplanned",
                "no_outcome",
                "unresolved",
            ),
        ),
        MetricDefinition(
            "change_incident_rate",
            "Changes causing incidents",
            "%",
            "lower",
            "changes.Change",
            "change",
            "ratio",
            "percent",
            "changes that caused an incident / changes (not cancelled) × 100",
            (
                "A change caused an incident when its outcome is `caused_incident` or an incident "
                "names it as its cause (`caused_by_change`).",
                "Needs no outcome field: it is the change-side measure of sources such as BPIC 2014, "
                "whose changes carry no outcome, and the DORA change failure rate where outcomes are "
                "not assessed.",
                "Cancelled changes are left out; open ones count (they may still cause incidents).",
            ),
            extras=("caused_incident", "cancelled", "unresolved"),
        ),
        MetricDefinition(
            "sla_response",
            "SLA compliance, response",
            "%",
            "higher",
            "incidents.Incident",
            "sla",
            "ratio",
            "percent",
            "incidents responded to by their response due time / incidents with a response verdict × 100",
            _SLA_EDGES,
            sla=True,
            extras=("met", "breached", "not_evaluated", "unresolved"),
        ),
        MetricDefinition(
            "sla_resolution",
            "SLA compliance, resolution",
            "%",
            "higher",
            "incidents.Incident",
            "sla",
            "ratio",
            "percent",
            "incidents resolved by their resolution due time / incidents with a resolution verdict × 100",
            _SLA_EDGES,
            sla=True,
            extras=("met", "breached", "not_evaluated", "unresolved"),
        ),
        MetricDefinition(
            "reopen_rate",
            "Reopen rate",
            "%",
            "lower",
            "incidents.Incident",
            "incident",
            "ratio",
            "percent",
            "incidents reopened at least once / incidents resolved at least once × 100",
            (
                "Resolved at least once = resolved_at or closed_at set, or reopen_count ≥ 1.",
                "Incidents never resolved (and never reopened) are excluded.",
            ),
            extras=("reopened", "reopens", "unresolved"),
        ),
        MetricDefinition(
            "reassignment_rate",
            "Reassignment rate",
            "%",
            "lower",
            "incidents.Incident",
            "incident",
            "ratio",
            "percent",
            "incidents reassigned at least once / incidents with a known reassignment count × 100",
            ("Incidents whose reassignment count is unknown (null) are excluded and counted as `unknown`.",),
            extras=("reassigned", "unknown", "unresolved"),
        ),
        MetricDefinition(
            "reassignment_mean",
            "Mean reassignments per incident",
            "reassignments",
            "lower",
            "incidents.Incident",
            "incident",
            "mean",
            "mean",
            "AVG(reassignment_count) over incidents with a known count",
            ("Incidents whose reassignment count is unknown (null) are excluded and counted as `unknown`.",),
            decimals=3,
            extras=("unknown", "unresolved"),
        ),
        MetricDefinition(
            "backlog",
            "Backlog (open incidents at period end)",
            "incidents",
            "lower",
            "incidents.Incident",
            "incident",
            "backlog",
            "count",
            "COUNT(incidents with opened_at < end AND (COALESCE(resolved_at, closed_at) IS NULL OR ≥ end))",
            (
                "`end` is the start of the next period (local time); without a period, the end of "
                "the date-to day, or now. An end still to come is taken as now, and the point is "
                "incomplete.",
                "An incident is open from opened_at to its final resolution (resolved_at, else "
                "closed_at); reopened incidents count as open in between.",
                "Resolved, closed or cancelled incidents with neither timestamp are left out.",
                "Date from/to choose the periods, not the incidents: older open incidents count.",
            ),
            decimals=0,
        ),
        MetricDefinition(
            "backlog_age",
            "Backlog age (mean age of open incidents)",
            "days",
            "lower",
            "incidents.Incident",
            "incident",
            "backlog",
            "age",
            "AVG(end − opened_at) over the incidents open at period end, in days",
            ("Same population as `backlog`; no open incident → null.",),
        ),
        MetricDefinition(
            "csat_mean",
            "CSAT (mean score)",
            "score",
            "higher",
            "surveys.SurveyResponse",
            "service_desk",
            "mean",
            "mean",
            "AVG(score) over survey responses (1–5)",
            ("Dated by responded_at; priority, group, category and CI come from the linked incident.",),
            date_field="responded_at",
            extras=("unresolved",),
        ),
        MetricDefinition(
            "csat_satisfied",
            "CSAT (% satisfied)",
            "%",
            "higher",
            "surveys.SurveyResponse",
            "service_desk",
            "ratio",
            "percent",
            "responses with score ≥ 4 / responses × 100",
            ("Dated by responded_at; priority, group, category and CI come from the linked incident.",),
            date_field="responded_at",
            extras=("satisfied", "unresolved"),
        ),
        _asset(
            "cmdb_coverage",
            "Discovery coverage",
            "%",
            "higher",
            "in-scope CIs seen by discovery within N days / in-scope CIs × 100",
            (
                *_ASSET_EDGES,
                "`stale` counts in-scope CIs seen before but not within N days, `never_seen` those "
                "never seen: together with `seen` they make `in_scope`.",
            ),
            ("seen", "in_scope", "stale", "never_seen"),
        ),
        _asset(
            "cmdb_accuracy",
            "CMDB accuracy",
            "%",
            "higher",
            "CIs seen within N days with no open drift on a key attribute / in-scope CIs seen within N "
            "days × 100",
            (
                *_ASSET_EDGES,
                "Key attributes: TIKTING_DISCOVERY_KEY_ATTRIBUTES. A drift is a CI value that differs "
                "from discovery where the CI's value comes from a higher-ranked source (a person); values "
                "discovery may overwrite are written, not drifted. A rejected drift (the CI is right) no "
                "longer counts against it.",
            ),
            ("accurate", "seen", "drifted"),
        ),
        _asset(
            "cmdb_unregistered",
            "Unregistered devices",
            "devices",
            "lower",
            "COUNT(CIs discovered and not registered yet), any class",
            (*_ASSET_EDGES[:2], "Counted by the class discovery guessed for them."),
        ),
        _asset(
            "cmdb_stale",
            "Stale CIs",
            "CIs",
            "lower",
            "COUNT(in-scope CIs last seen more than N days ago)",
            (*_ASSET_EDGES, "CIs never seen are not stale: they are `never_seen` (coverage)."),
            ("in_scope", "never_seen"),
        ),
        _asset(
            "cmdb_duplicates",
            "Duplicate candidates",
            "pairs",
            "lower",
            "COUNT(open duplicate candidates: pairs of CIs sharing an identity value)",
            (*_ASSET_EDGES[:2], "A pair counts in the class of its older CI."),
        ),
        _asset(
            "cmdb_completeness",
            "CMDB completeness",
            "%",
            "higher",
            "required attributes filled / required attributes of the in-scope CIs × 100",
            (
                *_ASSET_EDGES,
                "Required attributes per class: TIKTING_DISCOVERY_REQUIRED_ATTRIBUTES (owner and service "
                "count when set, the others when not empty).",
            ),
            ("filled", "required", "in_scope"),
        ),
    )
}


def get_definition(key: str) -> MetricDefinition:
    try:
        return DEFINITIONS[key]
    except KeyError as exc:
        raise ValidationError(
            {"metric": f"Unknown metric '{key}'; choose from {', '.join(DEFINITIONS)}."}
        ) from exc
