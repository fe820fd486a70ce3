"""`tikting metrics list`, `tikting metrics show METRIC [--by …] [--filter FIELD=VALUE …]
[--format table|json|csv] [--basis auto|definitions|source]` and
`tikting metrics report [--source S …] [--format table|json|csv]` (tikting/metrics/report.py) and
`tikting metrics warm [METRIC …]` (tikting/metrics/engine.py)."""

from __future__ import annotations

import json
import time

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from tikting.metrics import cache, engine, report
from tikting.metrics.definitions import DEFINITIONS, SLICERS


class Command(BaseCommand):
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
            help=f"Repeatable. Fields: {', '.join(engine.FILTER_FIELDS)}.",
        )
        show.add_argument("--basis", choices=list(engine.BASES), default=None, help="SLA metrics only.")
        show.add_argument("--format", choices=["table", "json", "csv"], default="table")
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
        rep.add_argument("--format", choices=list(report.FORMATS), default="table")
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
        try:
            result = engine.compute(
                options["metric"],
                by=options["by"],
                filters=engine.parse_filters(options["filter"]),
                basis=options["basis"],
            )
        except ValidationError as exc:
            raise CommandError(_message(exc)) from exc
        fmt = options["format"]
        if fmt == "json":
            self.stdout.write(json.dumps(result.as_dict(), indent=2, default=str))
        elif fmt == "csv":
            self.stdout.write(result.to_csv(), ending="")
        else:
            self.stdout.write(_table(result))


def _message(exc: ValidationError) -> str:
    return "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())


def _fmt(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


def _table(result) -> str:
    d = result.definition
    head = f"{d.label} ({d.unit}; {d.direction} is better)\n{d.formula}"
    if result.basis:
        head += f"\nSLA basis: {result.basis}"
    if result.filters:
        head += "\nFilters: " + ", ".join(f"{k}={v}" for k, v in result.filters.items())
    columns = ["label", "value", "count", *d.extras]
    rows = [[_fmt(r[1]), _fmt(r[2]), _fmt(r[3]), *(_fmt(x) for x in r[4:])] for r in result.rows()]
    if result.by:
        t = result.total
        rows.append(["Total", _fmt(t.value), _fmt(t.count), *(_fmt(t.extra.get(x)) for x in d.extras)])
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
    return head + "\n\n" + "\n".join(lines)
