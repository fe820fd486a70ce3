"""`tikting signals run|export`: the detectors and the intake queue from the command line.

    tikting signals run                                   # every detector, the last 90 days
    tikting signals run --detector major_incidents --from 2026-01-01 --to 2026-06-30
    tikting signals export --format json --output candidates.json
    tikting signals export --detector major_incidents --status all --format jsonl

`run` records a DetectorRun per detector (duration, raised / merged / suppressed, or the error) and
exits with status 1 when any detector failed; the others still run. `export` writes each candidate
with its detector, score, explanation and the source keys of its evidence records (docs/signals.md).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import IO, Any, cast

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.management.base import CommandError, CommandParser
from django.utils.dateparse import parse_date

from tikting.core.commands import TiktingCommand
from tikting.signals import registry, services
from tikting.signals.filtersets import filter_candidates
from tikting.signals.models import Candidate
from tikting.signals.proposals import Progress

FORMATS = ("json", "jsonl")


def _date(value: str, flag: str) -> Any:
    day = parse_date(value) if value else None
    if value and day is None:
        raise CommandError(f"{flag}: '{value}' is not a date (YYYY-MM-DD).")
    return day


class Command(TiktingCommand):
    help = "Run the detectors (signals run) or export the intake queue's candidates (signals export)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="{run,export}")
        run = sub.add_parser(
            "run", help="Run the detectors and ingest their proposals into the intake queue."
        )
        run.add_argument("--detector", action="append", help="Only this detector (repeat for several).")
        run.add_argument("--from", dest="start", default="", help="First day of the window (YYYY-MM-DD).")
        run.add_argument(
            "--to", dest="end", default="", help="Last day of the window, inclusive (default: today)."
        )
        run.add_argument("--no-progress", action="store_true", help="No progress bar even on a terminal.")
        run.add_argument("--format", choices=("text", "json"), default="text", help="The summary's format.")

        export = sub.add_parser("export", help="Write the candidates with their evidence keys.")
        export.add_argument(
            "--detector", help="Only this detector's candidates ('manual': submitted by people)."
        )
        export.add_argument(
            "--status",
            default="all",
            help="new, open (new or deferred), accepted, merged, deferred, dismissed, all.",
        )
        export.add_argument("--format", choices=FORMATS, default="json", help="json (an array) or jsonl.")
        export.add_argument("--output", "-o", help="File to write (default: standard output).")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["action"] == "run":
                self.run(options)
            else:
                self.export(options)
        except (ImproperlyConfigured, ValidationError) as exc:
            raise CommandError(" ".join(getattr(exc, "messages", [str(exc)]))) from exc

    # -- run --

    def run(self, options: dict[str, Any]) -> None:
        names = options["detector"] or list(registry.detectors())
        detectors = [registry.get(name) for name in names]
        window = services.window_for(_date(options["start"], "--from"), _date(options["end"], "--to"))
        started = time.monotonic()
        with ExitStack() as stack:
            progress_for = self._progress(stack, options)
            runs = services.run_detectors(
                [d.name for d in detectors], window, trigger="cli", progress_for=progress_for
            )
        failed = [run for run in runs if run.status == "failed"]
        if options["format"] == "json":
            summary = [
                {
                    "detector": run.detector,
                    "status": run.status,
                    "seconds": run.duration_seconds,
                    "proposals": run.proposals,
                    "raised": run.raised,
                    "merged": run.merged,
                    "suppressed": run.suppressed,
                    "error": run.error,
                }
                for run in runs
            ]
            self.stdout.write(
                json.dumps({"window": [window.start.isoformat(), window.end.isoformat()], "runs": summary})
            )
        else:
            for run in runs:
                if run.status == "failed":
                    last = run.error.strip().splitlines()[-1] if run.error.strip() else "error"
                    self.stdout.write(f"{run.detector}: FAILED after {run.duration_seconds:.2f} s: {last}")
                else:
                    self.stdout.write(
                        f"{run.detector}: {run.raised} raised, {run.merged} merged, "
                        f"{run.suppressed} suppressed "
                        f"({run.proposals} proposals) in {run.duration_seconds:.2f} s"
                    )
            self.stdout.write(
                f"{len(runs)} detector(s) over {window.start:%Y-%m-%d %H:%M} to {window.end:%Y-%m-%d %H:%M} "
                f"in {time.monotonic() - started:.2f} s; {len(failed)} failed."
            )
        if failed:
            sys.exit(1)

    def _progress(self, stack: ExitStack, options: dict[str, Any]) -> Any:
        """A rich progress bar per detector on stderr when it is a terminal (the import commands' style)."""
        out = cast("IO[str]", getattr(self.stderr, "_out", self.stderr))
        if options["no_progress"] or not getattr(out, "isatty", lambda: False)():
            return None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as Bar

        bar = stack.enter_context(
            Bar(
                TextColumn("[bold]{task.description}[/]"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(file=out),
                transient=True,
            )
        )

        def progress_for(detector: registry.Detector) -> Progress:
            task = bar.add_task(detector.name, total=None)

            def update(done: int, total: int | None) -> None:
                bar.update(task, completed=done, total=total)

            return update

        return progress_for

    # -- export --

    def export(self, options: dict[str, Any]) -> None:
        qs = filter_candidates(
            Candidate.objects.all(), {"status": options["status"], "detector": options["detector"]}
        )
        rows = services.export_rows(qs.order_by("pk"))
        with ExitStack() as stack:
            out: IO[str] = (
                stack.enter_context(open(options["output"], "w", encoding="utf-8"))  # noqa: SIM115
                if options["output"]
                else cast("IO[str]", getattr(self.stdout, "_out", self.stdout))
            )
            count = self._write(out, rows, options["format"])
        if options["output"]:
            self.stderr.write(f"{count} candidate(s) written to {options['output']}.")

    @staticmethod
    def _write(out: IO[str], rows: Iterator[dict[str, Any]], fmt: str) -> int:
        count = 0
        if fmt == "jsonl":
            for row in rows:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
                count += 1
            return count
        out.write("[")
        for row in rows:
            out.write(("," if count else "") + "\n" + json.dumps(row, ensure_ascii=False))
            count += 1
        out.write("\n]\n")
        return count
