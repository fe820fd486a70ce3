"""`tikting metrics report`: the computed figures of every data set (source), in one go.

For each source (the `source` of the records: `bpic2014`, `servicenow-uci`, `demo` …) the report
gives the number of records of every kind that carries a source, and the ITSM metrics of
definitions.py, each with the number of records behind it. Every metric figure comes from
`tikting.metrics.engine.compute(key, filters={"source": …})`, so the report and
`tikting metrics show` cannot disagree. The record counts are one grouped query per kind
(`GROUP BY source`), never a query per source.

Two readings are the report's own, stated in every output:

- **Change success rate** is shown as `n/a: no outcome data` when none of the source's changes has
  a recorded implementation outcome (successful, failed or backed out). A source whose only
  outcome is `caused_incident` (BPIC 2014 derives it from incident links: the data has no outcome
  field) would otherwise show 0 % over the changes that caused incidents, which is not a success
  rate. The engine's own value and counts are kept in the JSON/CSV output.
- **Backlog at the end** is the backlog as of the end of the day the source's last incident was
  opened (its snapshot end), not as of today, when an imported data set has long been closed.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zoneinfo
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Count, Max, Q
from django.utils import timezone

from tikting.records.registry import KINDS

from . import engine
from .definitions import DEFINITIONS
from .results import FORMATS

__all__ = ["Figure", "KindCount", "SourceReport", "build", "render"]

# Kinds counted besides the registry's: the incident activities (the incidents' event log).
EXTRA_KINDS = (("activity", "Incident activities", "incidents.IncidentActivity"),)


@dataclass
class KindCount:
    kind: str  # the registry slug (incident, interaction …)
    label: str
    count: int
    detail: dict[str, int] = field(default_factory=dict)  # incidents: open, resolved, closed, cancelled

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "label": self.label, "count": self.count, **self.detail}


@dataclass
class Figure:
    key: str  # the figure's name in the report (mttr_mean, sla_resolution …)
    metric: str  # the definition key the value comes from
    label: str
    value: float | int | None
    count: int  # the records behind it (the n of a mean, the denominator of a ratio)
    unit: str
    basis: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    note: str = ""  # why the value is n/a, or what it leaves out
    engine_value: float | int | None = None  # the engine's value when the report shows n/a instead

    @property
    def definition(self) -> str:
        return DEFINITIONS[self.metric].formula

    def as_dict(self) -> dict[str, Any]:
        row = {
            "key": self.key,
            "metric": self.metric,
            "label": self.label,
            "value": self.value,
            "count": self.count,
            "unit": self.unit,
            "basis": self.basis,
            "note": self.note,
            "definition": self.definition,
            **{k: v for k, v in self.extra.items() if k not in ("mean", "median", "p90")},
        }
        if self.engine_value is not None:
            row["engine_value"] = self.engine_value
        return row


@dataclass
class SourceReport:
    source: str
    records: list[KindCount]
    figures: list[Figure]
    backlog_as_of: str | None = None

    def figure(self, key: str) -> Figure:
        return next(f for f in self.figures if f.key == key)

    def records_of(self, kind: str) -> KindCount:
        return next(r for r in self.records if r.kind == kind)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "records": {r.kind: r.as_dict() for r in self.records},
            "figures": [f.as_dict() for f in self.figures],
            "backlog_as_of": self.backlog_as_of,
        }


# --- Record counts -------------------------------------------------------------------------------


def counted_kinds() -> list[tuple[str, str, Any]]:
    """(slug, plural label, model) of every record kind whose model carries `source`."""
    kinds = [(k.slug, k.label_plural, k.model) for k in KINDS.values()]
    for slug, label, model_label in EXTRA_KINDS:
        position = next((i + 1 for i, k in enumerate(kinds) if k[0] == "interaction"), len(kinds))
        kinds.insert(position, (slug, label, apps.get_model(model_label)))
    return [k for k in kinds if any(f.name == "source" for f in k[2]._meta.get_fields())]


_OPEN = Q(status__in=engine.OPEN_STATUSES)


def _incident_counts() -> dict[str, dict[str, Any]]:
    """Incidents per source, by status group, with the last opening (one grouped query)."""
    model = KINDS["incident"].model
    rows = (
        model._default_manager.order_by()
        .values("source")
        .annotate(
            count=Count("pk"),
            open=Count("pk", filter=_OPEN),
            resolved=Count("pk", filter=Q(status="resolved")),
            closed=Count("pk", filter=Q(status="closed")),
            cancelled=Count("pk", filter=Q(status="cancelled")),
            last_opened=Max("opened_at"),
        )
    )
    return {row.pop("source"): row for row in rows}


def record_counts() -> tuple[dict[str, list[KindCount]], dict[str, dt.datetime | None]]:
    """{source: [KindCount per kind]} for every source any counted kind carries, and the last
    incident opening per source. One query per kind, grouped by source."""
    per_kind: dict[str, dict[str, int]] = {}
    details: dict[str, dict[str, dict[str, int]]] = {}
    last_opened: dict[str, dt.datetime | None] = {}
    kinds = counted_kinds()
    for slug, _label, model in kinds:
        if slug == "incident":
            rows = _incident_counts()
            per_kind[slug] = {s: r["count"] for s, r in rows.items()}
            details[slug] = {
                s: {k: r[k] for k in ("open", "resolved", "closed", "cancelled")} for s, r in rows.items()
            }
            last_opened = {s: r["last_opened"] for s, r in rows.items()}
        else:
            grouped = model._default_manager.order_by().values_list("source").annotate(n=Count("pk"))
            per_kind[slug] = dict(grouped)
    sources = sorted({s for counts in per_kind.values() for s in counts})
    empty_detail = {"open": 0, "resolved": 0, "closed": 0, "cancelled": 0}
    result = {
        source: [
            KindCount(
                slug,
                label,
                per_kind[slug].get(source, 0),
                details[slug].get(source, dict(empty_detail)) if slug in details else {},
            )
            for slug, label, _model in kinds
        ]
        for source in sources
    }
    return result, last_opened


# --- Figures -------------------------------------------------------------------------------------


def _compute(key: str, source: str, **filters: Any) -> engine.MetricResult:
    return engine.compute(key, filters={"source": source, **filters})


def _figure(result: engine.MetricResult, key: str | None = None, label: str | None = None) -> Figure:
    d, total = result.definition, result.total
    return Figure(
        key or d.key,
        d.key,
        label or d.label,
        total.value,
        total.count,
        d.unit,
        result.basis,
        dict(total.extra),
    )


def _na(figure: Figure, reason: str) -> Figure:
    if figure.value is None and not figure.note:
        figure.note = f"n/a: {reason}"
    return figure


def source_figures(source: str, last_opened: dt.datetime | None) -> tuple[list[Figure], str | None]:
    """Every metric figure of one source, from the engine."""
    figures: list[Figure] = []

    mttr = _compute("mttr", source)
    extra = mttr.total.extra
    mean = _figure(mttr, "mttr_mean", "MTTR, mean")
    median = Figure(
        "mttr_median",
        "mttr_median",
        "MTTR, median",
        extra["median"],
        mttr.total.count,
        "hours",
        extra=dict(extra),
    )
    p90 = Figure(
        "mttr_p90", "mttr_p90", "MTTR, p90", extra["p90"], mttr.total.count, "hours", extra=dict(extra)
    )
    left_out = []
    if extra.get("unresolved"):
        left_out.append(f"{extra['unresolved']:,} unresolved")
    if extra.get("missing_timestamps"):
        left_out.append(f"{extra['missing_timestamps']:,} with missing timestamps")
    for f in (mean, median, p90):
        f.note = ("left out: " + ", ".join(left_out)) if left_out else ""
        figures.append(_na(f, "no resolved incidents"))

    rate = _figure(_compute("reassignment_rate", source), label="Reassignment rate")
    if rate.extra.get("unknown"):
        rate.note = f"left out: {rate.extra['unknown']:,} unknown"
    figures.append(_na(rate, "no reassignment counts"))
    figures.append(
        _na(
            _figure(_compute("reassignment_mean", source), label="Reassignments per incident"),
            "no reassignment counts",
        )
    )

    reopen = _figure(_compute("reopen_rate", source), label="Reopen rate")
    if reopen.value is not None:
        reopen.note = f"{reopen.extra['reopened']:,} reopened, {reopen.extra['reopens']:,} reopens"
    figures.append(_na(reopen, "no resolved incidents"))

    for key, label, reason in (
        ("fcr_rate", "First-contact resolution (interactions)", "no interactions with a first-contact flag"),
        (
            "incident_fcr_rate",
            "First-contact resolution (incidents)",
            "no incidents with a first-contact flag",
        ),
    ):
        figures.append(_na(_figure(_compute(key, source), label=label), reason))

    for key, label in (
        ("sla_resolution", "SLA compliance, resolution"),
        ("sla_response", "SLA compliance, response"),
    ):
        sla = _figure(_compute(key, source), label=label)
        flag = "source flag" if sla.basis == "source" else "SLA definitions"
        if sla.value is not None:
            sla.note = f"basis {sla.basis} ({flag})"
            if sla.extra.get("not_evaluated"):
                sla.note += f"; {sla.extra['not_evaluated']:,} not evaluated"
        else:
            sla.note = f"n/a: no verdicts (basis {sla.basis}: {flag}"
            if sla.extra.get("not_evaluated"):
                sla.note += f"; {sla.extra['not_evaluated']:,} not evaluated"
            sla.note += ")"
        figures.append(sla)

    change = _figure(_compute("change_success_rate", source), label="Change success rate")
    x = change.extra
    recorded = x.get("successful", 0) + x.get("failed", 0) + x.get("backed_out", 0)
    n_changes = change.count + x.get("no_outcome", 0)
    if not n_changes:
        change.engine_value, change.value, change.note = change.value, None, "n/a: no changes"
    elif not recorded:
        change.engine_value, change.value = change.value, None
        change.note = "n/a: no outcome data"
        if x.get("caused_incident"):
            change.note += f" (only caused_incident, on {x['caused_incident']:,} changes)"
    else:
        change.note = (
            f"{x['successful']:,} successful, {x['failed']:,} failed, {x['backed_out']:,} backed out, "
            f"{x['caused_incident']:,} caused incident; {x['no_outcome']:,} without outcome"
        )
    figures.append(change)
    caused = _figure(_compute("change_incident_rate", source), label="Changes causing incidents")
    if caused.value is not None:
        caused.note = f"{caused.extra['caused_incident']:,} of {caused.count:,} changes"
    figures.append(_na(caused, "no changes"))

    figures.append(
        _na(_figure(_compute("csat_mean", source), label="CSAT, mean score"), "no survey responses")
    )
    figures.append(
        _na(_figure(_compute("csat_satisfied", source), label="CSAT, % satisfied"), "no survey responses")
    )

    as_of = None
    if last_opened is not None:
        end_day = timezone.localtime(last_opened, zoneinfo.ZoneInfo(settings.TIME_ZONE)).date()
        backlog = _figure(_compute("backlog", source, opened_to=end_day), label="Backlog at the end")
        age = _figure(_compute("backlog_age", source, opened_to=end_day), label="Backlog age at the end")
        as_of = backlog.extra.get("as_of")
        backlog.note = f"as of {as_of} (end of the last opening day)"
        figures.append(backlog)
        figures.append(_na(age, "no open incidents"))
    return figures, as_of


def build(sources: list[str] | None = None) -> list[SourceReport]:
    """The report of the given sources, or of every source present in the incidents.

    Raises ValidationError naming any requested source that no record carries."""
    counts, last_opened = record_counts()
    if sources:
        unknown = [s for s in sources if s not in counts]
        if unknown:
            known = ", ".join(counts) or "none"
            names = ", ".join(f"'{s}'" for s in unknown)
            raise ValidationError(
                {"source": f"Unknown source {names}: no record carries it. Sources present: {known}."}
            )
        chosen = list(dict.fromkeys(sources))
    else:
        chosen = sorted(s for s in counts if last_opened.get(s) is not None)
    reports = []
    for source in chosen:
        figures, as_of = source_figures(source, last_opened.get(source))
        reports.append(SourceReport(source, counts[source], figures, as_of))
    return reports


# --- Output --------------------------------------------------------------------------------------


def _number(value: Any, unit: str = "", decimals: int = 2) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    text = f"{value:,.{decimals}f}"
    return {"%": f"{text} %", "hours": f"{text} h", "days": f"{text} d"}.get(unit, text)


def _value_text(f: Figure) -> str:
    decimals = DEFINITIONS[f.metric].decimals
    return _number(f.value, f.unit, decimals)


def _aligned(rows: list[list[str]], right: set[int], indent: str = "  ") -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for r in rows:
        cells = [
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        lines.append((indent + "  ".join(cells)).rstrip())
    return lines


def render_table(reports: list[SourceReport]) -> str:
    blocks = []
    for report in reports:
        lines = [f"Source: {report.source}", "", "  Records"]
        rows = []
        for r in report.records:
            detail = ", ".join(f"{k} {v:,}" for k, v in r.detail.items())
            rows.append([r.label, f"{r.count:,}", detail])
        lines += _aligned(rows, {1}, "    ")
        lines += ["", "  Figures"]
        rows = [["figure", "value", "records", "metric", "note"]]
        for f in report.figures:
            rows.append([f.label, _value_text(f), f"{f.count:,}", f.metric, f.note])
        lines += _aligned(rows, {1, 2}, "    ")
        blocks.append("\n".join(lines))
    if not blocks:
        return "No incidents: nothing to report."
    return "\n\n".join(blocks)


def render_json(reports: list[SourceReport]) -> str:
    return json.dumps({"sources": [r.as_dict() for r in reports]}, indent=2, default=str)


CSV_COLUMNS = ["source", "section", "key", "metric", "label", "value", "count", "unit", "basis", "note"]


def render_csv(reports: list[SourceReport]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for report in reports:
        for r in report.records:
            writer.writerow(
                [report.source, "records", r.kind, "", r.label, r.count, r.count, "records", "", ""]
            )
            for name, n in r.detail.items():
                writer.writerow(
                    [
                        report.source,
                        "records",
                        f"{r.kind}_{name}",
                        "",
                        f"{r.label}, {name}",
                        n,
                        n,
                        "records",
                        "",
                        "",
                    ]
                )
        for f in report.figures:
            value = "" if f.value is None else f.value
            writer.writerow(
                [
                    report.source,
                    "figures",
                    f.key,
                    f.metric,
                    f.label,
                    value,
                    f.count,
                    f.unit,
                    f.basis or "",
                    f.note,
                ]
            )
    return out.getvalue()


def render(reports: list[SourceReport], fmt: str = "table") -> str:
    if fmt not in FORMATS:
        raise ValidationError({"format": f"Choose from {', '.join(FORMATS)}."})
    return {"table": render_table, "json": render_json, "csv": render_csv}[fmt](reports)
