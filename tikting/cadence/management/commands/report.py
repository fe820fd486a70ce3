"""`tikting report outcomes --period 2026-Q3 --format html|pdf [--output FILE]`: the outcomes
report as a file (docs/cadence.md). PDF through WeasyPrint, with no browser."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from tikting.cadence.outcomes import outcomes_report, render_report
from tikting.core.commands import TiktingCommand


class Command(TiktingCommand):
    help = "Write a report: outcomes (what improved in a quarter) as HTML or PDF."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("report", choices=["outcomes"])
        parser.add_argument("--period", required=True, help="A quarter, as 2026-Q3")
        parser.add_argument("--format", choices=["html", "pdf"], default="html")
        parser.add_argument("--output", "-o", help="File to write (default: standard output)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            context = outcomes_report(options["period"])
        except ValueError as exc:
            raise CommandError(f"--period: {exc}") from exc
        data = render_report(context, options["format"])
        output = options.get("output")
        if output:
            Path(output).write_bytes(data)
            self.stderr.write(f"{context['count']} outcomes for {context['period']} written to {output}.")
        elif options["format"] == "pdf":
            if sys.stdout.isatty():
                raise CommandError("A PDF on a terminal: give --output FILE (or redirect standard output).")
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        else:
            self.stdout.write(data.decode(), ending="")
