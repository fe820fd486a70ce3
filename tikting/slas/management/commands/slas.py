"""`tikting slas apply`: recompute the incidents' SLA due times and met flags.

    tikting slas apply                      # every incident
    tikting slas apply --open-only          # nightly: open incidents past due become breached
    tikting slas apply --source bpic2014    # the incidents of one source

Runs tikting.slas.verdicts.apply_slas (docs/metrics.md, "SLA compliance"); a progress bar on a
terminal. The same as a task: tikting.slas.tasks.apply_slas.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from typing import IO, Any, cast

from django.core.management.base import CommandParser
from django.db import transaction

from tikting.core.commands import TiktingCommand
from tikting.slas import services


class Command(TiktingCommand):
    help = "SLA management: `apply` recomputes the incidents' SLA due times and met flags."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="{apply}")
        apply = sub.add_parser("apply", help="Recompute SLA due times and met flags from the definitions.")
        apply.add_argument("--source", help="Only the incidents of this source (e.g. bpic2014, demo).")
        apply.add_argument(
            "--open-only", action="store_true", help="Only open incidents (new, in progress, on hold)."
        )
        apply.add_argument("--no-progress", action="store_true", help="No progress bar even on a terminal.")

    def handle(self, *args: Any, **options: Any) -> None:
        qs = services.incidents(source=options.get("source"), open_only=options["open_only"])
        started = time.monotonic()
        with ExitStack() as stack:
            progress = self._progress(stack, options, qs)
            with transaction.atomic():
                n = services.apply_slas(qs, progress=progress)
        scope = "open incident(s)" if options["open_only"] else "incident(s)"
        source = f" of source {options['source']}" if options.get("source") else ""
        self.stdout.write(f"SLAs applied to {n:,} {scope}{source} in {time.monotonic() - started:.1f} s.")

    def _progress(self, stack: ExitStack, options: dict[str, Any], qs):
        """A rich progress bar on stderr when it is a terminal (the import commands' style)."""
        # the wrapped stream; typeshed does not count the wrapper (a TextIOBase) as an IO[str]
        out = cast("IO[str]", getattr(self.stderr, "_out", self.stderr))
        if options["no_progress"] or not getattr(out, "isatty", lambda: False)():
            return None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        bar = stack.enter_context(
            Progress(
                TextColumn("[bold]Applying SLAs[/]"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(file=out),
                transient=True,
            )
        )
        task = bar.add_task("incidents", total=qs.count())
        return lambda n: bar.update(task, advance=n)
