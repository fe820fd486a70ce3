"""`tikting metrics list`, `tikting metrics show METRIC [--by …] [--filter FIELD=VALUE …]
[--date-field opened|resolved|closed] [--from DATE] [--to DATE] [--unit minutes|hours|days]
[--format table|json|csv] [--precision N] [--basis auto|definitions|source]` and
`tikting metrics report [--source S …] [--format table|json|csv]` (tikting/metrics/report.py) and
`tikting metrics warm [METRIC …]` (tikting/metrics/engine.py)."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from tikting.core.commands import TiktingCommand
from tikting.metrics.definitions import DATE_FIELDS, DEFINITIONS, SLICERS, UNITS
from tikting.metrics.questions import BASES, FILTER_FIELDS, TIME_FIGURES
from tikting.metrics.results import FORMATS

if TYPE_CHECKING:
    from tikting.metrics.results import MetricResult

# The engine, the answer cache and the report are imported by the actions that compute: `list`
# and `--help` need only the definitions (bench/cli_startup.py).


class Command(TiktingCommand):
    help = "ITSM metrics computed from the records: list them, or show one as a total or a series."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("list", help="List the metrics with unit and formula.")
        show = sub.add_parser("show", help="Compute one metric.")
        show.add_argument("metric", choices=list(DEFINITIONS))
        show.add_argument("--by", choices=list(SLICERS), default=None)
        show.add_argument(
            "--filter",
            action="append",
            default=[],
            metavar="FIELD=VALUE",
            help=f"Repeatable. Fields: {', '.join(FILTER_FIELDS)}.",
        )
        show.add_argument(
            "--date-field",
            choices=list(DATE_FIELDS),
            default=None,
            help="Which date places a record in a period and in --from/--to: opened (default; a "
            "period's figure changes while its records are open), resolved or closed (complete "
            "once the period has ended).",
        )
        show.add_argument("--from", dest="date_from", metavar="YYYY-MM-DD", help="Window start (inclusive).")
        show.add_argument("--to", dest="date_to", metavar="YYYY-MM-DD", help="Window end (inclusive).")
        show.add_argument(
            "--unit", choices=list(UNITS), default=None, help="Durations only (default: the metric's own)."
        )
        show.add_argument("--basis", choices=list(BASES), default=None, help="SLA metrics only.")
        show.add_argument("--format", choices=list(FORMATS), default="table")
        show.add_argument(
            "--precision",
            type=int,
            default=None,
            metavar="N",
            help="Decimals in the table (default: the metric's). JSON and CSV are never rounded.",
        )
        rep = sub.add_parser(
            "report", help="Record counts and every metric per data set (source), for comparison."
        )
        rep.add_argument(
            "--source",
            action="append",
            default=[],
            metavar="S",
            help="Repeatable. Default: every source present in the incidents.",
        )
        rep.add_argument("--format", choices=list(FORMATS), default="table")
        warm = sub.add_parser(
            "warm",
            help="Compute the metrics page's default views now (after an import, nightly) so the "
            "first visitor does not wait; delete answers too old to be used.",
        )
        warm.add_argument("metric", nargs="*", help="Default: every metric.")

    def handle(self, *args, **options):
        if options["action"] == "list":
            width = max(len(k) for k in DEFINITIONS)
            for d in DEFINITIONS.values():
                self.stdout.write(f"{d.key:<{width}}  {d.unit:<13}  {d.label} — {d.formula}")
            return
        from tikting.metrics import cache, engine, report

        if options["action"] == "warm":
            unknown = [m for m in options["metric"] if m not in DEFINITIONS]
            if unknown:
                raise CommandError(f"metric: unknown {', '.join(unknown)}; see `tikting metrics list`.")
            started = time.perf_counter()
            purged = cache.purge()
            done = engine.warm(options["metric"] or None)
            seconds = time.perf_counter() - started
            self.stdout.write(f"{done} series ready, {purged} outdated answers deleted, {seconds:.1f} s.")
            return
        if options["action"] == "report":
            try:
                reports = report.build(options["source"] or None)
            except ValidationError as exc:
                raise CommandError(_message(exc)) from exc
            self.stdout.write(report.render(reports, options["format"]), ending="\n")
            return
        if options["precision"] is not None and not 0 <= options["precision"] <= 12:
            raise CommandError("--precision: give a number of decimals from 0 to 12.")
        try:
            filters = engine.parse_filters(options["filter"])
            for name in ("date_from", "date_to"):
                if options[name]:
                    if filters.get(name):
                        raise ValidationError({name: f"Give --{name[5:]} or --filter {name}=…, not both."})
                    filters[name] = options[name]
            result = engine.compute(
                options["metric"],
                by=options["by"],
                filters=filters,
                basis=options["basis"],
                date_field=options["date_field"],
                unit=options["unit"],
            )
        except ValidationError as exc:
            raise CommandError(_message(exc)) from exc
        fmt = options["format"]
        if fmt == "json":
            self.stdout.write(json.dumps(result.as_dict(), indent=2, default=str))
        elif fmt == "csv":
            self.stdout.write(result.to_csv(), ending="")
        else:
            self.stdout.write(_table(result, options["precision"]))


def _message(exc: ValidationError) -> str:
    return "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())


def _fmt(value: object, decimals: int = 2) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.{decimals}f}"
    return str(value)


def _table(result: MetricResult, precision: int | None = None) -> str:
    """The rows for reading: values rounded to `precision` (default: the metric's decimals)."""
    d = result.definition
    decimals = result.decimals if precision is None else precision
    head = f"{d.label} ({result.unit}; {d.direction} is better)\n{d.formula}"
    if result.basis:
        head += f"\nSLA basis: {result.basis}"
    head += f"\nDate: {result.date_field}"
    if result.filters:
        head += "\nFilters: " + ", ".join(f"{k}={v}" for k, v in result.filters.items())
    timed = TIME_FIGURES if d.family == "duration" else ()
    unit = result.unit
    columns = [
        "label",
        f"value ({unit})",
        "count",
        *(f"{x} ({unit})" if x in timed else x for x in d.extras),
        "incomplete",
    ]
    points = result.points if result.by else [result.total]
    if result.by:
        points = [*points, result.total]
    rows = [
        [
            p.label,
            _fmt(p.value, decimals),
            _fmt(p.count),
            *(_fmt(p.extra.get(x), decimals) for x in d.extras),
            ("yes: " + p.why_incomplete()) if p.incomplete else "",
        ]
        for p in points
    ]
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(columns)]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(columns, widths, strict=True))
        )
    ]
    for r in rows:
        lines.append(
            "  ".join(
                v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths, strict=True))
            )
        )
    incomplete = [p.label for p in points if p.incomplete]
    if incomplete:
        lines += [
            "",
            f"Incomplete ({', '.join(incomplete)}): records still open (unresolved), or the period has "
            "not ended; the figure will change. --date-field resolved gives figures that are complete "
            "once a period has ended.",
        ]
    return head + "\n\n" + "\n".join(lines)
