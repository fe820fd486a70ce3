"""`tikting discover`: discovery from the command line (docs/discovery.md).

    tikting discover import scan.xml inventories/*.json cmdb-export.csv   # format from the content
    tikting discover scan 192.0.2.0/28 --source dc1-scan                 # nmap, allowed ranges only
    tikting discover runs --format json                                  # the runs and their outcomes
    tikting discover agent-token create "Paris agents"                   # a secret for agents

The files of one source and format are one run (a folder of inventories is reconciled as a set);
each scan is one run; each under its source's lock. Problems in the input are printed as FILE:
PLACE: MESSAGE (the first 50 per run) and make the exit status 1; what could be read is still
reconciled. Anything that stops a run (a missing file, a range outside
TIKTING_DISCOVERY_ALLOWED_RANGES, nmap failing, a busy source) is one line and exit status 1.
"""

from __future__ import annotations

import json
import time
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any, cast

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.management.base import CommandError, CommandParser

from tikting.accounts.models import User
from tikting.core.commands import TiktingCommand
from tikting.core.exceptions import PermissionDeniedError
from tikting.discovery.agent_models import AgentToken
from tikting.discovery.models import DiscoveryRun

# The parsers, the reconciliation and nmap's runner (defusedxml, jsonschema_rs …) are imported by
# `import` and `scan` only: `runs`, `agent-token` and --help start without them.

SHOWN_ERRORS = 50
COUNTS = (
    "observed",
    "down",
    "unidentified",
    "confirmed",
    "updated",
    "created_unregistered",
    "duplicate_candidates",
    "drifts",
    "stale",
    "errors",
)


def run_summary(run: DiscoveryRun) -> dict[str, Any]:
    """A run as the JSON output gives it: times in ISO 8601, the duration in seconds, every count."""
    duration = run.duration
    return {
        "id": run.pk,
        "source": run.source_name,
        "format": run.format,
        "file": run.file_name,
        "range": run.scan_range,
        "status": run.status,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "seconds": duration.total_seconds() if duration is not None else None,
        **{name: getattr(run, name) for name in COUNTS},
    }


def run_line(run: DiscoveryRun) -> str:
    what = run.file_name or run.scan_range or "-"
    seconds = f"{run.duration.total_seconds():.2f} s" if run.duration is not None else "running"
    return (
        f"run {run.pk} {run.source_name} ({run.format}) {what}: {run.observed} observed, "
        f"{run.confirmed} confirmed, {run.updated} updated, {run.created_unregistered} new unregistered, "
        f"{run.duplicate_candidates} duplicate candidates, {run.drifts} drifts, {run.stale} stale, "
        f"{run.down} down, {run.unidentified} unidentified, {run.errors} errors in {seconds}"
    )


class Command(TiktingCommand):
    help = "Discovery: import files (format from content), scan allowed ranges with nmap, runs, agent tokens."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="{import,scan,runs,agent-token}")
        imp = sub.add_parser("import", help="Import discovery files (nmap XML, GLPI/FusionInventory, CSV).")
        imp.add_argument("files", nargs="+", metavar="FILE")
        imp.add_argument("--source", help="The runs' source name (default: the file's source, e.g. nmap).")
        imp.add_argument(
            "--register",
            action="store_true",
            help="The files are the CMDB to start from (an export): register the devices they bring.",
        )
        self._common(imp)

        scan = sub.add_parser("scan", help="Scan ranges inside TIKTING_DISCOVERY_ALLOWED_RANGES with nmap.")
        scan.add_argument("ranges", nargs="+", metavar="RANGE", help="An address or a CIDR network.")
        scan.add_argument("--source", default="nmap", help="The run's source name (default: nmap).")
        scan.add_argument("--no-dns", action="store_true", help="No reverse DNS lookups (nmap -n).")
        scan.add_argument("--no-os", action="store_true", help="No OS detection even as root.")
        scan.add_argument(
            "--ports", default="", help="TCP ports instead of the 100 most common (22,80,8000-8100)."
        )
        self._common(scan)

        listing = sub.add_parser("runs", help="The discovery runs, newest first, with their outcome counts.")
        listing.add_argument("--source", help="Only this source's runs.")
        listing.add_argument("--limit", type=int, default=20, help="How many (default 20; 0 = all).")
        listing.add_argument("--format", choices=("text", "json"), default="text")

        token = sub.add_parser(
            "agent-token", help="Secrets for agents (the agent endpoint's HTTP basic auth)."
        )
        token_sub = token.add_subparsers(dest="token_action", required=True, metavar="{create,list,revoke}")
        create = token_sub.add_parser("create", help="Create a token; the secret is shown once.")
        create.add_argument("name", help="Which agents use it (e.g. 'Paris workstations').")
        create.add_argument("--as", dest="as_user", metavar="USERNAME", help="The administrator creating it.")
        token_sub.add_parser("list", help="The tokens (never their secrets).")
        revoke = token_sub.add_parser(
            "revoke", help="Revoke a token: agents using it are refused from now on."
        )
        revoke.add_argument("token_id", type=int, metavar="ID")
        revoke.add_argument("--as", dest="as_user", metavar="USERNAME", help="The administrator revoking it.")

    @staticmethod
    def _common(parser: CommandParser) -> None:
        parser.add_argument("--as", dest="as_user", metavar="USERNAME", help="The acting user (audit trail).")
        parser.add_argument(
            "--format", choices=("text", "json"), default="text", help="The summary's format."
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar even on a terminal.")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        refused: tuple[type[Exception], ...] = (PermissionDeniedError,)
        try:
            if action in ("import", "scan"):
                from tikting.discovery.locks import SourceBusy
                from tikting.discovery.sources.scan import ScanFailed, ScanRefused

                refused += (ScanRefused, ScanFailed, SourceBusy)
                (self.import_files if action == "import" else self.scan)(options)
            elif action == "runs":
                self.list_runs(options)
            else:
                self.agent_token(options)
        except refused as exc:
            raise CommandError(str(exc), returncode=1) from exc
        except ImproperlyConfigured as exc:
            raise CommandError(f"Configuration: {exc}", returncode=1) from exc
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages), returncode=1) from exc

    # -- import --

    def import_files(self, options: dict[str, Any]) -> None:
        from tikting.discovery import runs

        paths = [Path(name) for name in options["files"]]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:  # before anything is imported: a typo costs nothing
            raise CommandError(f"No such file: {', '.join(missing)}", returncode=1)
        actor = self._actor(options)
        with ExitStack() as stack:
            advance = self._progress(stack, options, "import", len(paths))
            try:
                done = runs.import_files(
                    paths,
                    source_name=options["source"],
                    actor=actor,
                    register=options["register"],
                    progress=(lambda path: advance(100 / len(paths), path.name)) if advance else None,
                )
            except OSError as exc:
                raise CommandError(
                    f"Cannot read {exc.filename}: {exc.strerror or exc}.", returncode=1
                ) from exc
        self._report(done, options)

    # -- scan --

    def scan(self, options: dict[str, Any]) -> None:
        from tikting.discovery import runs

        actor = self._actor(options)
        with ExitStack() as stack:
            advance = self._progress(stack, options, "nmap", 1)
            run = runs.scan_ranges(
                options["ranges"],
                source_name=options["source"],
                actor=actor,
                dns=not options["no_dns"],
                os_detection=False if options["no_os"] else None,
                ports=options["ports"],
                progress=(lambda task, percent: advance(percent, task)) if advance else None,
            )
        self._report([run], options)

    # -- runs --

    def list_runs(self, options: dict[str, Any]) -> None:
        queryset = DiscoveryRun.objects.order_by("-started_at", "-id")
        if options["source"]:
            queryset = queryset.filter(source_name=options["source"])
        found = list(queryset[: options["limit"]] if options["limit"] > 0 else queryset)
        if options["format"] == "json":
            self.stdout.write(json.dumps([run_summary(run) for run in found], indent=2))
            return
        if not found:
            self.stdout.write("No discovery runs yet.")
        for run in found:
            self.stdout.write(f"{run.started_at:%Y-%m-%d %H:%M:%S} {run.status:<8} {run_line(run)}")

    # -- agent tokens --

    def agent_token(self, options: dict[str, Any]) -> None:
        from tikting.discovery.agent import tokens

        action = options["token_action"]
        if action == "list":
            for token in AgentToken.objects.order_by("name", "id"):
                state = f"revoked {token.revoked_at:%Y-%m-%d}" if token.revoked_at else "active"
                used = (
                    f"last used {token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never used"
                )
                self.stdout.write(f"{token.pk}\t{token.name}\t{token.key_hint}…\t{state}\t{used}")
            return
        actor = self._actor(options)
        if action == "create":
            token, secret = tokens.create_agent_token(name=options["name"], actor=actor)
            self.stdout.write(
                f"Agent token {token.pk} '{token.name}' created. Its secret, shown only now:\n{secret}"
            )
            self.stdout.write(
                "Point agents at the endpoint with it as the HTTP password (docs/discovery.md, 'Agents'):\n"
                "  fusioninventory-agent --server https://tikting.example/discovery/agent/ "
                f"--user {tokens.AGENT_USER} --password {secret}"
            )
            return
        found = AgentToken.objects.filter(pk=options["token_id"]).first()
        if found is None:
            raise CommandError(f"No agent token {options['token_id']}.", returncode=1)
        tokens.revoke_agent_token(found, actor=actor)
        self.stdout.write(f"Agent token {found.pk} '{found.name}' revoked.")

    # -- helpers --

    @staticmethod
    def _actor(options: dict[str, Any]) -> User | None:
        if not options.get("as_user"):
            return None
        user = User.objects.filter(username=options["as_user"]).first()
        if user is None:
            raise CommandError(f"--as: no user '{options['as_user']}'.", returncode=1)
        return user

    def _report(self, done: list[DiscoveryRun], options: dict[str, Any]) -> None:
        """Each run's line (or JSON), its problems on standard error as PLACE: MESSAGE (the place
        starts with the file's name), and exit status 1 when the input had problems."""
        if options["format"] == "json":
            summaries = []
            for run in done:
                summary = run_summary(run)
                summary["error_details"] = run.error_details
                summaries.append(summary)
            self.stdout.write(json.dumps(summaries, indent=2))
        else:
            for run in done:
                self.stdout.write(run_line(run))
                prefix = "" if run.file_name else f"{run.scan_range}: "
                for detail in run.error_details[:SHOWN_ERRORS]:
                    self.stderr.write(f"{prefix}{detail.get('where', '')}: {detail.get('message', '')}")
                if len(run.error_details) > SHOWN_ERRORS:
                    self.stderr.write(
                        f"… and {len(run.error_details) - SHOWN_ERRORS} more problem(s) in run {run.pk}."
                    )
        failed = sum(run.errors for run in done)
        if failed:
            raise CommandError(
                f"{failed} problem(s) in the input; what could be read was reconciled.", returncode=1
            )

    def _progress(self, stack: ExitStack, options: dict[str, Any], label: str, steps: int) -> Any:
        """A rich progress bar on standard error when it is a terminal (the other commands' style):
        advance(percent_or_step, description)."""
        out = cast("IO[str]", getattr(self.stderr, "_out", self.stderr))
        if options.get("no_progress") or not getattr(out, "isatty", lambda: False)():
            return None
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

        bar = stack.enter_context(
            Progress(
                TextColumn("[bold]{task.description}[/]"),
                BarColumn(),
                TaskProgressColumn(),
                TimeElapsedColumn(),
                console=Console(file=out),
                transient=True,
            )
        )
        task = bar.add_task(label, total=100)
        started = time.monotonic()

        def advance(percent: float, description: str) -> None:
            if steps > 1:
                bar.advance(task, percent)
            else:
                bar.update(task, completed=percent)
            bar.update(task, description=f"{label}: {description} ({time.monotonic() - started:.0f} s)")

        return advance
