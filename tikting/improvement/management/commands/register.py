"""`tikting register export|import|housekeeping`: the register from the command line.

    tikting register export --format csv --status open --practice incident --output items.csv
    tikting register import items.csv --as manager --dry-run
    tikting register housekeeping --date 2025-06-30

Formats and matching rules: docs/import-formats.md. The work is done by
tikting.improvement.io (import/export) and tikting.improvement.services (housekeeping).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from contextlib import ExitStack
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser
from django.utils.dateparse import parse_date

from tikting.accounts.models import User
from tikting.core.commands import TiktingCommand
from tikting.core.exceptions import PermissionDeniedError
from tikting.improvement import io
from tikting.improvement import services as S
from tikting.improvement.filtersets import FILTER_FIELDS, filter_items
from tikting.improvement.models import Item


class Command(TiktingCommand):
    help = "Export, import and housekeep the Continual Improvement Register."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="{export,import,housekeeping}")

        export = sub.add_parser("export", help="Write register items as CSV, JSON or JSON Lines.")
        export.add_argument("--format", choices=io.FORMATS, help="csv (default), json (array) or jsonl.")
        export.add_argument("--output", "-o", help="File to write (default: standard output).")
        for name in FILTER_FIELDS:
            flag = "--" + name.replace("_", "-")
            export.add_argument(
                flag,
                dest=f"filter_{name}",
                action="append",
                metavar="VALUE",
                help=f"Filter on {name} (as the register list; repeat or comma-separate to OR)."
                + (" Usernames are accepted." if name == "owner" else "")
                + (" Service names are accepted." if name == "service" else ""),
            )

        imp = sub.add_parser("import", help="Create or update register items from a file.")
        imp.add_argument("file", help="CSV, JSON array or JSON Lines file ('-' for standard input).")
        imp.add_argument("--format", choices=io.FORMATS, help="Default: from the file name, else csv.")
        imp.add_argument("--dry-run", action="store_true", help="Validate and count, write nothing.")
        imp.add_argument("--as", dest="as_user", metavar="USERNAME", help="The acting user (audit trail).")
        imp.add_argument(
            "--create-services", action="store_true", help="Create services the file names but tikting lacks."
        )
        imp.add_argument("--json-summary", action="store_true", help="Print the summary as JSON.")
        imp.add_argument("--no-progress", action="store_true", help="No progress bar even on a terminal.")

        house = sub.add_parser("housekeeping", help="Daily: wake deferred items, check sustainment.")
        house.add_argument("--date", help="Run as of this day (YYYY-MM-DD), default today.")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "export":
            self.export(options)
        elif action == "import":
            self.import_(options)
        else:
            self.housekeeping(options)

    # -- export --

    def _filters(self, options: dict[str, Any]) -> dict[str, list[str]]:
        params: dict[str, list[str]] = {}
        for name in FILTER_FIELDS:
            values = options.get(f"filter_{name}") or []
            if not values:
                continue
            if name == "owner":
                values = [self._owner_id(v) for vs in values for v in vs.split(",")]
            elif name == "service":
                values = [self._service_id(v) for v in values]
            params[name] = values
        return params

    @staticmethod
    def _owner_id(value: str) -> str:
        value = value.strip()
        if value.isdigit() or value in {"none", "me"}:
            return value
        pk = User.objects.filter(username=value).values_list("pk", flat=True).first()
        if pk is None:
            raise CommandError(f"--owner: no user '{value}'.")
        return str(pk)

    @staticmethod
    def _service_id(value: str) -> str:
        from tikting.cmdb.models import Service

        value = value.strip()
        if value.isdigit():
            return value
        pk = Service.objects.filter(name__iexact=value).values_list("pk", flat=True).first()
        if pk is None:
            raise CommandError(f"--service: no service '{value}'.")
        return str(pk)

    def export(self, options: dict[str, Any]) -> None:
        output = options.get("output")
        fmt = io.format_for(output, options.get("format"))
        try:
            qs = filter_items(Item.objects.all(), self._filters(options))
        except ValidationError as exc:
            raise CommandError(
                "; ".join(f"--{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            ) from exc
        if output and output != "-":
            with open(output, "w", encoding="utf-8", newline="") as stream:
                count = io.export_items(stream, fmt=fmt, qs=qs)
            self.stderr.write(f"Exported {count} item(s) to {output}.")
        else:
            try:
                io.export_items(_Raw(self.stdout), fmt=fmt, qs=qs)
            except BrokenPipeError:
                # Piped into `head` or similar, which stopped reading: not an error worth a traceback.
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())

    # -- import --

    def import_(self, options: dict[str, Any]) -> None:
        path = options["file"]
        fmt = io.format_for(path if path != "-" else None, options.get("format"))
        actor = None
        if options.get("as_user"):
            actor = User.objects.filter(username=options["as_user"]).first()
            if actor is None:
                raise CommandError(f"--as: no user '{options['as_user']}'.")
        with ExitStack() as stack:
            if path == "-":
                stream = sys.stdin
                size = None
            else:
                try:
                    stream = stack.enter_context(open(path, encoding="utf-8-sig", newline=""))  # noqa: SIM115
                except OSError as exc:
                    raise CommandError(f"Cannot read {path}: {exc.strerror}.") from exc
                size = os.path.getsize(path)
            progress = None
            show_bar = (
                size
                and not options.get("no_progress")
                and not options.get("json_summary")
                and getattr(self.stderr._out, "isatty", lambda: False)()
            )
            if show_bar:
                from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

                bar = stack.enter_context(
                    Progress(
                        TextColumn("[bold]Importing[/] {task.fields[rows]} rows"),
                        BarColumn(),
                        TextColumn("{task.percentage:>3.0f}%"),
                        TimeRemainingColumn(),
                        transient=True,
                    )
                )
                task = bar.add_task("import", total=size, rows=0)
                raw_file = stream.buffer

                def progress(rows: int) -> None:
                    if rows % 200 == 0:
                        bar.update(task, completed=raw_file.tell(), rows=rows)

            try:
                result = io.import_items(
                    stream,
                    fmt=fmt,
                    actor=actor,
                    dry_run=options["dry_run"],
                    create_services=options["create_services"],
                    progress=progress,
                )
            except PermissionDeniedError as exc:
                raise CommandError(str(exc)) from exc
        self.report(result, as_json=options.get("json_summary", False))
        if result.failed:
            raise CommandError(f"{result.failed} row(s) failed; see above.", returncode=1)

    def report(self, result: io.ImportResult, *, as_json: bool) -> None:
        if as_json:
            self.stdout.write(json.dumps(result.as_dict(), indent=2))
            return
        for error in result.errors:
            self.stderr.write(str(error))
        prefix = "Dry run (nothing written): " if result.dry_run else ""
        summary = (
            f"{prefix}{result.created} created, {result.updated} updated, "
            f"{result.unchanged} unchanged, {result.failed} failed."
        )
        style = self.style.ERROR if result.failed else self.style.SUCCESS
        self.stdout.write(style(summary))

    # -- housekeeping --

    def housekeeping(self, options: dict[str, Any]) -> None:
        day: dt.date | None = None
        if options.get("date"):
            try:
                day = parse_date(options["date"])
            except ValueError:
                day = None
            if day is None:
                raise CommandError("--date: give a day as YYYY-MM-DD.")
        woken = S.wake_deferred(as_of=day)
        measured = S.take_computed_measurements(today=day)
        sustainment = S.check_sustainment(today=day)
        self.stdout.write(f"Deferred items back for assessment: {woken}")
        self.stdout.write(f"Measurements computed from records: {measured}")
        watched = sum(sustainment.values())
        detail = ", ".join(f"{k or 'none'} {v}" for k, v in sorted(sustainment.items())) or "none watched"
        self.stdout.write(f"Closed items under sustainment watch checked: {watched} ({detail})")


class _Raw:
    """Write straight to a command's stdout (OutputWrapper adds line endings and styles)."""

    def __init__(self, wrapper: Any):
        self._out = getattr(wrapper, "_out", wrapper)

    def write(self, text: str) -> int:
        return self._out.write(text)
