"""`tikting export KIND [--format csv|json|jsonl] [--output FILE] [--source LABEL]`: records of a kind.

The files read back with `tikting import KIND FILE` (docs/import-records.md).
"""

from __future__ import annotations

import os
import sys
from typing import IO, Any, cast

from django.core.management.base import CommandError, CommandParser

from tikting.core.commands import TiktingCommand
from tikting.records.registry import KINDS


class Command(TiktingCommand):
    help = "Write the records of one kind as CSV, JSON or JSON Lines."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("kind", metavar="KIND", help=f"One of: {', '.join(KINDS)}.")
        parser.add_argument("--format", choices=("csv", "json", "jsonl"), help="Default: suffix, else csv.")
        parser.add_argument("--output", "-o", help="File to write (default: standard output).")
        parser.add_argument("--source", help="Only records from this source.")

    def handle(self, *args: Any, **options: Any) -> None:
        from tikting.imports.records import export_records, format_for

        kind = options["kind"]
        if kind not in KINDS:
            raise CommandError(f"Unknown kind '{kind}': choose one of {', '.join(KINDS)}.")
        output = options.get("output")
        fmt = format_for(output, options.get("format"))
        qs = KINDS[kind].model._default_manager.all()
        if options.get("source"):
            if "source" not in {f.name for f in qs.model._meta.concrete_fields}:
                raise CommandError(f"--source: {kind} records have no source.")
            qs = qs.filter(source=options["source"])
        if output and output != "-":
            with open(output, "w", encoding="utf-8", newline="") as stream:
                count = export_records(kind, stream, fmt, qs=qs)
            self.stderr.write(f"Exported {count} {kind} record(s) to {output}.")
            return
        # the wrapped stream; typeshed does not count the wrapper (a TextIOBase) as an IO[str]
        out = cast("IO[str]", getattr(self.stdout, "_out", self.stdout))
        try:
            export_records(kind, out, fmt, qs=qs)
        except BrokenPipeError:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
