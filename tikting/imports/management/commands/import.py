"""`tikting import`: ITSM records from the public data sets and from our own CSV / JSON files.

    tikting import servicenow incident_event_log.zip
    tikting import bpic2014 ../shared/data/bpic2014/
    tikting import incident incidents.csv --source legacy-itsm --dry-run
    tikting import change changes.jsonl --format jsonl --json

Every form takes --dry-run (everything is done, then rolled back), --no-progress, --json (the
summary as JSON for scripts). A progress bar is shown on a terminal. Rows that fail are printed
as FILE:LINE: FIELD: MESSAGE (the first 50, then a count) and the exit code is 1.
Formats and mappings: docs/import-records.md.
"""

from __future__ import annotations

import importlib
import json
import sys
import zipfile
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any, cast

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser

from tikting.core.commands import TiktingCommand
from tikting.core.exceptions import PermissionDeniedError
from tikting.imports.base import ImportReport, no_progress
from tikting.records.registry import KINDS

DATASETS = ("servicenow", "bpic2014")
SHOWN_ERRORS = 50


class Command(TiktingCommand):
    help = "Import ITSM records: `servicenow FILE`, `bpic2014 DIR`, or `<kind> FILE` (CSV, JSON, JSON Lines)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "kind",
            metavar="KIND",
            help=f"servicenow, bpic2014, or a record kind: {', '.join(KINDS)}.",
        )
        parser.add_argument("path", metavar="FILE", help="The file (or folder for bpic2014); '-' = stdin.")
        parser.add_argument("--format", choices=("csv", "json", "jsonl"), help="Default: from the suffix.")
        parser.add_argument("--source", help="Source label of records without one (default: the format).")
        parser.add_argument("--as", dest="as_user", metavar="USERNAME", help="The acting user (audit trail).")
        parser.add_argument("--dry-run", action="store_true", help="Validate and count, write nothing.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar even on a terminal.")
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print the summary as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        kind = options["kind"]
        if kind not in DATASETS and kind not in KINDS:
            raise CommandError(
                f"Unknown kind '{kind}': choose servicenow, bpic2014 or one of {', '.join(KINDS)}."
            )
        path = options["path"]
        if path != "-" and not Path(path).exists():
            raise CommandError(f"No such file or folder: {path}")
        with ExitStack() as stack:
            progress = self._progress(stack, options)
            try:
                if kind == "servicenow":
                    from tikting.imports.servicenow import import_servicenow

                    report = import_servicenow(path, dry_run=options["dry_run"], progress=progress)
                elif kind == "bpic2014":
                    report = self._bpic2014(path, options, progress)
                else:
                    report = self._records(kind, path, options, progress, stack)
            except PermissionDeniedError as exc:
                raise CommandError(str(exc)) from exc
            except ValidationError as exc:
                raise CommandError("; ".join(exc.messages)) from exc
            # Whatever stops a file being read is one line, never a traceback (the importers report
            # what they can by line; these come from opening the file).
            except zipfile.BadZipFile as exc:
                raise CommandError(f"{path}: not a readable zip archive ({exc}).") from exc
            except OSError as exc:
                raise CommandError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
        self.summary(report, as_json=options["as_json"])
        if not report.ok:
            raise CommandError(f"{report.error_count} error(s); see above.", returncode=1)

    # -- the importers --

    @staticmethod
    def _bpic2014(path: str, options: dict[str, Any], progress):
        try:
            module = importlib.import_module("tikting.imports.bpic2014")
        except ModuleNotFoundError as exc:
            if exc.name != "tikting.imports.bpic2014":
                raise
            raise CommandError(
                "The BPI Challenge 2014 importer (tikting.imports.bpic2014) is not installed in this "
                "version of tikting yet."
            ) from exc
        return module.import_bpic2014(path, dry_run=options["dry_run"], progress=progress)

    def _records(self, kind: str, path: str, options: dict[str, Any], progress, stack: ExitStack):
        from tikting.accounts.models import User
        from tikting.imports.records import format_for, import_records

        actor = None
        if options.get("as_user"):
            actor = User.objects.filter(username=options["as_user"]).first()
            if actor is None:
                raise CommandError(f"--as: no user '{options['as_user']}'.")
        fmt = format_for(path if path != "-" else None, options.get("format"))
        if path == "-":
            stream, name = sys.stdin, "<stdin>"
        else:
            try:
                stream = stack.enter_context(open(path, encoding="utf-8-sig", newline=""))  # noqa: SIM115
            except OSError as exc:
                raise CommandError(f"Cannot read {path}: {exc.strerror}.") from exc
            name = Path(path).name
        return import_records(
            kind,
            stream,
            fmt=fmt,
            actor=actor,
            dry_run=options["dry_run"],
            source=options.get("source") or fmt,
            progress=progress,
            file=name,
        )

    # -- output --

    def _progress(self, stack: ExitStack, options: dict[str, Any]):
        """A rich progress bar on stderr when it is a terminal (the register import's style)."""
        # the wrapped stream; typeshed does not count the wrapper (a TextIOBase) as an IO[str]
        out = cast("IO[str]", getattr(self.stderr, "_out", self.stderr))
        if options["no_progress"] or options["as_json"] or not getattr(out, "isatty", lambda: False)():
            return no_progress
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        bar = stack.enter_context(
            Progress(
                TextColumn("[bold]Importing[/] {task.description}: {task.completed:,.0f} rows"),
                BarColumn(),
                TimeElapsedColumn(),
                console=Console(file=out),
                transient=True,
            )
        )
        tasks: dict[str, Any] = {}

        def progress(advance: int, label: str) -> None:
            if label not in tasks:
                tasks[label] = bar.add_task(label, total=None)
            bar.update(tasks[label], advance=advance)

        return progress

    def summary(self, report: ImportReport, *, as_json: bool) -> None:
        if as_json:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
            return
        for error in report.errors[:SHOWN_ERRORS]:
            self.stderr.write(str(error))
        if report.error_count > SHOWN_ERRORS:
            self.stderr.write(f"… and {report.error_count - SHOWN_ERRORS} more error(s).")
        for warning in report.warnings[:SHOWN_ERRORS]:
            self.stderr.write(str(warning))
        if report.warning_count > SHOWN_ERRORS:
            self.stderr.write(f"… and {report.warning_count - SHOWN_ERRORS} more warning(s).")
        headers = ("kind", "created", "updated", "unchanged", "failed")
        rows = [
            (kind, *(f"{getattr(c, h):,}" for h in headers[1:])) for kind, c in sorted(report.counts.items())
        ]
        widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
        for cells in (headers, *rows):
            self.stdout.write(
                "  ".join(
                    v.ljust(w) if i == 0 else v.rjust(w)
                    for i, (v, w) in enumerate(zip(cells, widths, strict=True))
                )
            )
        for note in report.notes:
            self.stdout.write(note)
        prefix = "Dry run, nothing written. " if report.dry_run else ""
        warned = f", {report.warning_count:,} warning(s)" if report.warning_count else ""
        text = f"{prefix}{report.source}: {report.error_count:,} error(s){warned}, {report.seconds:.1f} s."
        self.stdout.write((self.style.ERROR if report.error_count else self.style.SUCCESS)(text))
