"""Import of the ServiceNow incident event log (UCI data set 498) as incidents.

    import_servicenow("/work/shared/data/uci_incident_event_log/incident_event_log.zip")

The file has one row per update of an incident (141,712 rows for 24,918 incidents). The import
collapses it to one incident per `number`, built from the incident's final row: the highest
`sys_mod_count`, ties going to the later line (docs/datasets.md §2). Mapping: docs/import-records.md.

Memory: pass 1 streams the file and keeps one dict, number → (sys_mod_count, line, final row as a
tuple of strings), i.e. ~25k rows of 36 short strings for the full file (not the 141k rows). Pass 2
streams the file again to write each row as an IncidentActivity (the incident's history), in
batches, keeping only a counter per incident. So memory grows with the number of incidents, not
with the number of rows.

Idempotent: incidents, stub problems/changes, CIs and activities are matched on (source,
external_key), source "servicenow-uci"; teams on their name. A second run reports them unchanged
(incidents whose mapped fields differ are updated). Everything runs in one transaction; a dry run
rolls it back. Bad rows are reported by line and field and skipped; good rows are kept.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import zipfile
from collections.abc import Callable, Collection, Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import IO, Any, TypeVar

from django.contrib.contenttypes.models import ContentType
from django.db import DatabaseError, connection, models, transaction
from django.utils import timezone

from tikting.accounts.models import Team
from tikting.changes.models import Change
from tikting.cmdb.models import ConfigurationItem
from tikting.core import audit
from tikting.core.middleware import current_request_id
from tikting.core.models import AuditEntry
from tikting.incidents.models import Incident, IncidentActivity
from tikting.lib.archives import open_member
from tikting.lib.tabular import FileFormatError, csv_file_error, not_utf8
from tikting.lib.untrusted import NUL, NUL_MESSAGE
from tikting.problems.models import Problem

from .base import UNREADABLE, ImportReport, Progress, apply_source_slas, discard_run, no_progress, zip_limits

__all__ = ["SOURCE", "import_servicenow", "map_row"]

SOURCE = "servicenow-uci"
NULL = "?"
BATCH = 2000
PROGRESS_EVERY = 2000

COLUMNS = (
    "number",
    "incident_state",
    "active",
    "reassignment_count",
    "reopen_count",
    "sys_mod_count",
    "made_sla",
    "caller_id",
    "opened_by",
    "opened_at",
    "sys_created_by",
    "sys_created_at",
    "sys_updated_by",
    "sys_updated_at",
    "contact_type",
    "location",
    "category",
    "subcategory",
    "u_symptom",
    "cmdb_ci",
    "impact",
    "urgency",
    "priority",
    "assignment_group",
    "assigned_to",
    "knowledge",
    "u_priority_confirmation",
    "notify",
    "problem_id",
    "rfc",
    "vendor",
    "caused_by",
    "closed_code",
    "resolved_by",
    "resolved_at",
    "closed_at",
)
# The columns the mapping needs; the others are only kept in `raw`.
REQUIRED = (
    "number",
    "incident_state",
    "sys_mod_count",
    "opened_at",
    "sys_updated_at",
    "priority",
    "impact",
    "urgency",
)

STATES = {
    "New": Incident.Status.NEW,
    "Active": Incident.Status.IN_PROGRESS,
    "Resolved": Incident.Status.RESOLVED,
    "Closed": Incident.Status.CLOSED,
}
CHANNELS = {
    "Phone": "phone",
    "Self service": "portal",
    "Email": "email",
    "IVR": "ivr",
    "Direct opening": "other",
}

# The incident fields the import sets (compared on re-import to count updated / unchanged).
FIELDS = (
    "number",
    "status",
    "opened_at",
    "resolved_at",
    "closed_at",
    "priority",
    "impact",
    "urgency",
    "category",
    "subcategory",
    "ci_id",
    "assignment_group_id",
    "reassignment_count",
    "reopen_count",
    "contact_channel",
    "closure_code",
    "problem_id",
    "related_change_id",
    "caused_by_change_id",
    "source_sla_met",
    "raw",
)


# The records created as stubs when an incident names one the file does not hold.
_Stub = TypeVar("_Stub", ConfigurationItem, Problem, Change)
_Numbered = TypeVar("_Numbered", Problem, Change)
# number → (line, mapped incident values, references): the incidents a run writes.
Planned = dict[str, tuple[int, dict[str, Any], dict[str, str]]]


class RowInvalid(Exception):
    def __init__(self, errors: dict[str, str]):
        super().__init__(errors)
        self.errors = errors


# --- Parsing values ---------------------------------------------------------------------------


@lru_cache(maxsize=1 << 16)
def parse_time(text: str) -> dt.datetime | None:
    """`d/m/YYYY HH:MM` (day first, no seconds), read as UTC; `?` → None. ValueError when bad."""
    if text == NULL or not text:
        return None
    try:
        day_part, time_part = text.split(" ")
        day, month, year = day_part.split("/")
        hour, minute = time_part.split(":")
        return dt.datetime(int(year), int(month), int(day), int(hour), int(minute), tzinfo=dt.UTC)
    except ValueError:
        raise ValueError(f"'{text}' is not a date-time like 29/2/2016 01:16.") from None


def _digit(text: str, low: int, high: int) -> int | None:
    """The leading digit of `2 - Medium`; `?` → None."""
    if text == NULL or not text:
        return None
    head = text.split(" ", 1)[0]
    if not head.isdigit() or not low <= int(head) <= high:
        raise ValueError(f"'{text}' does not start with a number from {low} to {high}.")
    return int(head)


def _count(text: str) -> int | None:
    if text == NULL or not text:
        return None
    if not text.isdigit():
        raise ValueError(f"'{text}' is not a whole number.")
    return int(text)


def _bool(text: str) -> bool | None:
    if text == "true":
        return True
    if text == "false":
        return False
    if text == NULL or not text:
        return None
    raise ValueError(f"'{text}' is not true or false.")


def _text(text: str) -> str:
    return "" if text == NULL else text


def _status(state: str, resolved_at: dt.datetime | None, closed_at: dt.datetime | None) -> str:
    if state in STATES:
        return STATES[state]
    if state.startswith("Awaiting"):
        return Incident.Status.ON_HOLD
    # "-100" (and anything unknown): the model has no "unknown" status; the timestamps decide,
    # the raw state stays in `raw`.
    if closed_at:
        return Incident.Status.CLOSED
    if resolved_at:
        return Incident.Status.RESOLVED
    return Incident.Status.IN_PROGRESS


def map_row(row: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The incident fields of one final row, and its references (group, ci, problem, rfc, caused_by).

    Raises RowInvalid({column: message}) naming every bad column.
    """
    errors: dict[str, str] = {}
    values: dict[str, Any] = {"number": row["number"]}

    def take(name: str, parse: Callable[..., Any], *args: int) -> Any:
        try:
            return parse(row.get(name, NULL), *args)
        except ValueError as exc:
            errors[name] = str(exc)
            return None

    opened_at = take("opened_at", parse_time)
    if opened_at is None and "opened_at" not in errors:
        errors["opened_at"] = "An incident needs opened_at."
    values["opened_at"] = opened_at
    values["resolved_at"] = take("resolved_at", parse_time)
    values["closed_at"] = take("closed_at", parse_time)
    values["priority"] = take("priority", _digit, 1, 4)
    values["impact"] = take("impact", _digit, 1, 3)
    values["urgency"] = take("urgency", _digit, 1, 3)
    values["reassignment_count"] = take("reassignment_count", _count)
    values["reopen_count"] = take("reopen_count", _count) or 0
    values["source_sla_met"] = take("made_sla", _bool)
    values["category"] = _text(row.get("category", NULL))[:100]
    values["subcategory"] = _text(row.get("subcategory", NULL))[:100]
    values["closure_code"] = _text(row.get("closed_code", NULL))[:100]
    channel = _text(row.get("contact_type", NULL))
    if channel and channel not in CHANNELS:
        errors["contact_type"] = f"'{channel}' is not one of: {', '.join(CHANNELS)}."
    values["contact_channel"] = CHANNELS.get(channel, "")
    values["status"] = _status(row.get("incident_state", ""), values["resolved_at"], values["closed_at"])
    if len(values["number"]) > 40:
        errors["number"] = "At most 40 characters."
    if errors:
        raise RowInvalid(errors)
    refs = {
        name: _text(row.get(name, NULL))
        for name in ("assignment_group", "cmdb_ci", "problem_id", "rfc", "caused_by")
    }
    for name in ("problem_id", "rfc", "caused_by"):
        if len(refs[name]) > 40:
            raise RowInvalid({name: "At most 40 characters."})
    return values, refs


# --- Reading the file -------------------------------------------------------------------------


@contextlib.contextmanager
def open_log(path: str | Path) -> Iterator[tuple[str, IO[str]]]:
    """(name for error messages, text stream) of the CSV, or of the first CSV inside a zip, read
    within the zip bomb limits (imports.base.zip_limits). FileFormatError when there is no CSV."""
    path = Path(path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if m.filename.lower().endswith(".csv")]
            if not members:
                raise FileFormatError(0, f"{path.name} holds no .csv file.")
            with open_member(archive, members[0], zip_limits(), path.name) as raw:
                yield (
                    f"{path.name}:{members[0].filename}",
                    io.TextIOWrapper(raw, encoding="utf-8-sig", newline=""),
                )
    else:
        with open(path, encoding="utf-8-sig", newline="") as stream:
            yield path.name, stream


def _rows(
    stream: IO[str], name: str, report: ImportReport, header: list[str]
) -> Iterator[tuple[int, list[str]]]:
    """(line, cells) of well-formed data rows; the checked header is put into `header`. Bad rows (a
    wrong cell count, a stray quote, a NUL character) are reported and skipped; FileFormatError
    when the file cannot be read on (not UTF-8, a quote never closed, a cell over the CSV limit)."""
    # strict: a stray quote fails its row and a quote never closed the file, instead of being text.
    reader = csv.reader(stream, strict=True)
    try:
        first = next(reader, None)
    except UnicodeDecodeError as exc:
        raise not_utf8(exc, 1) from exc
    except csv.Error as exc:
        raise FileFormatError(1, f"Not a CSV file: {exc}") from exc
    if first is None:
        report.error(name, 1, "file", "The file is empty.")
        return
    missing = [c for c in REQUIRED if c not in first]
    if missing:
        report.error(name, 1, "header", f"Missing column(s): {', '.join(missing)}.")
        return
    header[:] = first
    width = len(header)
    line = reader.line_num
    while True:
        start = line + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except UnicodeDecodeError as exc:
            raise not_utf8(exc, start) from exc
        except csv.Error as exc:
            line = reader.line_num
            csv_file_error(exc, start, line)
            report.error(name, start, "row", f"Unreadable CSV: {exc}.")
            continue
        line = reader.line_num
        if not cells:
            continue
        if len(cells) != width:
            report.error(name, start, "row", f"{len(cells)} cells, expected {width}.")
            continue
        if NUL in "".join(cells):
            column = next(header[i] for i, cell in enumerate(cells) if NUL in cell)
            report.error(name, start, column, NUL_MESSAGE)
            continue
        yield start, cells


# --- The import -------------------------------------------------------------------------------


def import_servicenow(
    path: str | Path, *, dry_run: bool = False, progress: Progress = no_progress
) -> ImportReport:
    """Import the ServiceNow incident event log (zip or CSV). Returns an ImportReport.

    Counts per kind: incident, activity, group, ci, problem, change. See the module docstring.
    """
    report = ImportReport(source=SOURCE, dry_run=dry_run)
    run = _Run(path, report, progress)
    with transaction.atomic():
        try:
            run.run()
        except UNREADABLE as exc:
            discard_run(report, run.name, exc)
        else:
            if dry_run:
                transaction.set_rollback(True)
            else:
                apply_source_slas(SOURCE, report, progress)
    report.errors.sort(key=lambda e: e.line)
    return report.finish()


class _Run:
    def __init__(self, path: str | Path, report: ImportReport, progress: Progress):
        self.path = path
        self.report = report
        self.progress = progress
        self.name = Path(path).name
        self.header: list[str] = []
        self.groups: set[str] = set()
        self.request_id = current_request_id() or ""

    def run(self) -> None:
        finals = self.read_finals()
        if not finals:
            return
        incidents = self.plan_incidents(finals)
        del finals
        teams = self.ensure_teams()
        cis = self.ensure_cis(
            dict.fromkeys(refs["cmdb_ci"] for _l, _v, refs in incidents.values() if refs["cmdb_ci"])
        )
        problems = self.ensure_stubs(Problem, "problem", self._first_opened(incidents, "problem_id"))
        changes = self.ensure_stubs(
            Change,
            "change",
            self._first_opened(incidents, "rfc", "caused_by"),
        )
        pks = self.write_incidents(incidents, teams, cis, problems, changes)
        del incidents
        self.write_activities(pks, teams)

    # -- pass 1: the final row of each incident --

    def read_finals(self) -> dict[str, tuple[int, int, tuple[str, ...]]]:
        finals: dict[str, tuple[int, int, tuple[str, ...]]] = {}
        report = self.report
        with open_log(self.path) as (name, stream):
            self.name = name
            rows = _rows(stream, name, report, self.header)
            n = 0
            first = True
            for line, cells in rows:
                if first:
                    i_number = self.header.index("number")
                    i_mod = self.header.index("sys_mod_count")
                    # assignment_group is an optional column: without it, incidents have no group
                    i_group = {name: i for i, name in enumerate(self.header)}.get("assignment_group")
                    first = False
                n += 1
                if n % PROGRESS_EVERY == 0:
                    self.progress(PROGRESS_EVERY, "rows read")
                number = cells[i_number]
                if not number or number == NULL:
                    report.error(name, line, "number", "A row needs the incident number.")
                    continue
                mod = cells[i_mod]
                if not mod.isdigit():
                    report.error(name, line, "sys_mod_count", f"'{mod}' is not a whole number.")
                    continue
                mod_count = int(mod)
                previous = finals.get(number)
                if previous is None or mod_count >= previous[0]:
                    finals[number] = (mod_count, line, tuple(cells))
                group = cells[i_group] if i_group is not None else NULL
                if group != NULL:
                    self.groups.add(group)
            self.progress(n % PROGRESS_EVERY, "rows read")
        self.rows_read = n
        return finals

    def plan_incidents(self, finals: dict[str, tuple[int, int, tuple[str, ...]]]) -> Planned:
        """number → (line, mapped values, references); bad final rows are reported and dropped."""
        planned: Planned = {}
        header = self.header
        for number, (_mod, line, cells) in finals.items():
            row = dict(zip(header, cells, strict=True))
            try:
                values, refs = map_row(row)
            except RowInvalid as exc:
                for field_name, message in exc.errors.items():
                    self.report.error(self.name, line, field_name, message)
                self.report.count("incident", "failed")
                continue
            values["raw"] = row
            planned[number] = (line, values, refs)
        return planned

    @staticmethod
    def _first_opened(incidents: Planned, *ref_names: str) -> dict[str, dt.datetime]:
        """Stub key → the earliest opened_at of the incidents naming it (the stub's opened_at)."""
        first: dict[str, dt.datetime] = {}
        for _line, values, refs in incidents.values():
            for name in ref_names:
                key = refs[name]
                if key and (key not in first or values["opened_at"] < first[key]):
                    first[key] = values["opened_at"]
        return first

    # -- references --

    def ensure_teams(self) -> dict[str, int]:
        teams = dict(Team.objects.filter(name__in=self.groups).values_list("name", "id"))
        new = [Team(name=name, source=SOURCE) for name in sorted(self.groups - set(teams))]
        if new:
            Team.objects.bulk_create(new, batch_size=BATCH)
            teams.update(Team.objects.filter(name__in=[t.name for t in new]).values_list("name", "id"))
        self.report.count("group", "created", len(new))
        self.report.count("group", "unchanged", len(self.groups) - len(new))
        return teams

    def ensure_cis(self, keys: Collection[str]) -> dict[str, int]:
        """CIs keyed by (source, external_key), created as stubs when missing."""
        if not keys:
            return {}
        existing = self._existing(ConfigurationItem, keys)
        new = [
            ConfigurationItem(
                name=key[:200],
                status=ConfigurationItem.Status.UNKNOWN,
                source=SOURCE,
                external_key=key,
                raw={"stub": True, "from": "servicenow incident log"},
            )
            for key in keys
            if key not in existing
        ]
        return self._create_stubs(ConfigurationItem, "ci", keys, existing, new)

    def ensure_stubs(
        self, model: type[_Numbered], kind: str, keys: Mapping[str, dt.datetime]
    ) -> dict[str, int]:
        """Problems or changes keyed by (source, external_key), created as stubs when missing (a
        number taken by another source is reported, not linked)."""
        if not keys:
            return {}
        existing = self._existing(model, keys)
        new = [
            model(
                number=key,
                title=f"{key} (stub: linked from the ServiceNow incident log)" if model is Problem else "",
                opened_at=opened_at,
                source=SOURCE,
                external_key=key,
                raw={"stub": True, "from": "servicenow incident log"},
            )
            for key, opened_at in keys.items()
            if key not in existing
        ]
        if new:
            taken = set(
                model.objects.filter(number__in=[o.number for o in new]).values_list("number", flat=True)
            )
            for obj in [o for o in new if o.number in taken]:
                self.report.error(
                    self.name, 0, kind, f"{obj.number} already exists from another source; not linked."
                )
                self.report.count(kind, "failed")
                new.remove(obj)
        return self._create_stubs(model, kind, keys, existing, new)

    @staticmethod
    def _existing(model: type[_Stub], keys: Collection[str]) -> dict[str, int]:
        return dict(
            model.objects.filter(source=SOURCE, external_key__in=list(keys)).values_list("external_key", "id")
        )

    def _create_stubs(
        self, model: type[_Stub], kind: str, keys: Collection[str], existing: dict[str, int], new: list[_Stub]
    ) -> dict[str, int]:
        """Insert the stubs, add their ids to `existing` (external key → id), count them."""
        if new:
            model.objects.bulk_create(new, batch_size=BATCH)
            existing.update(
                model.objects.filter(
                    source=SOURCE, external_key__in=[o.external_key for o in new]
                ).values_list("external_key", "id")
            )
        self.report.count(kind, "created", len(new))
        self.report.count(kind, "unchanged", len(keys) - len(new))
        return existing

    # -- incidents --

    def write_incidents(
        self,
        incidents: Planned,
        teams: dict[str, int],
        cis: dict[str, int],
        problems: dict[str, int],
        changes: dict[str, int],
    ) -> dict[str, int]:
        report = self.report
        existing = {
            row[0]: row[1:]
            for row in Incident.objects.filter(source=SOURCE, external_key__in=list(incidents))
            .values_list("external_key", "id", *FIELDS)
            .iterator(chunk_size=BATCH)
        }
        # Numbers taken by incidents of another source cannot be imported (number is unique).
        taken: set[str] = set()
        new_numbers = [n for n in incidents if n not in existing]
        for start in range(0, len(new_numbers), 5000):
            taken.update(
                Incident.objects.filter(number__in=new_numbers[start : start + 5000])
                .exclude(source=SOURCE)
                .values_list("number", flat=True)
            )
        pks: dict[str, int] = {}
        new: list[tuple[int, Incident]] = []
        changed: list[tuple[int, Incident, dict[str, list[Any]]]] = []
        for number, (line, values, refs) in incidents.items():
            values["assignment_group_id"] = teams.get(refs["assignment_group"])
            values["ci_id"] = cis.get(refs["cmdb_ci"])
            values["problem_id"] = problems.get(refs["problem_id"])
            values["related_change_id"] = changes.get(refs["rfc"])
            values["caused_by_change_id"] = changes.get(refs["caused_by"])
            if number in taken:
                report.error(self.name, line, "number", f"{number} already exists from another source.")
                report.count("incident", "failed")
                continue
            current = existing.get(number)
            if current is None:
                new.append((line, Incident(source=SOURCE, external_key=number, **values)))
                continue
            pk, old = current[0], dict(zip(FIELDS, current[1:], strict=True))
            diff = {k: [_plain(old[k]), _plain(values[k])] for k in FIELDS if old[k] != values[k]}
            pks[number] = pk
            if diff:
                changed.append((pk, Incident(pk=pk, source=SOURCE, external_key=number, **values), diff))
            else:
                report.count("incident", "unchanged")
        ct = ContentType.objects.get_for_model(Incident)
        for start in range(0, len(new), BATCH):
            part = new[start : start + BATCH]
            created = self._save_new(part)
            for obj in created:
                pks[obj.number] = obj.pk
            self._audit(ct, [(obj, "create", {}) for obj in created])
            report.count("incident", "created", len(created))
            self.progress(len(part), "incidents written")
        if changed:
            now = timezone.now()
            versions = dict(
                Incident.objects.filter(pk__in=[pk for pk, _o, _d in changed]).values_list("id", "version")
            )
            objs = []
            for pk, obj, _diff in changed:
                obj.version = versions[pk] + 1
                obj.updated_at = now
                objs.append(obj)
            update_fields = [f.removesuffix("_id") for f in FIELDS] + ["version", "updated_at"]
            Incident.objects.bulk_update(objs, update_fields, batch_size=500)
            self._audit(ct, [(obj, "update", diff) for _pk, obj, diff in changed])
            report.count("incident", "updated", len(changed))
            self.progress(len(changed), "incidents written")
        return pks

    def _save_new(self, part: list[tuple[int, Incident]]) -> list[Incident]:
        try:
            with transaction.atomic():
                # COPY / executemany, then the ids by key: bulk_create spent most of the PostgreSQL
                # import compiling and splitting the SQL (UNNEST or VALUES alike, 25 s of 45).
                objs = [obj for _line, obj in part]
                _insert_objects(Incident, objs)
                ids = dict(
                    Incident.objects.filter(
                        source=SOURCE, external_key__in=[o.external_key for o in objs]
                    ).values_list("external_key", "id")
                )
                for obj in objs:
                    obj.pk = ids[obj.external_key]
                    obj._state.adding = False
            return objs
        except DatabaseError:
            pass
        saved = []
        for line, obj in part:
            obj.pk = None
            obj._state.adding = True
            try:
                with transaction.atomic():
                    obj.save(force_insert=True)
            except DatabaseError as exc:
                self.report.error(self.name, line, "row", f"Not saved: {exc}")
                self.report.count("incident", "failed")
                continue
            saved.append(obj)
        return saved

    def _audit(self, ct: ContentType, entries: list[tuple[Incident, str, dict[str, Any]]]) -> None:
        ops = connection.ops
        now = ops.adapt_datetimefield_value(timezone.now())
        _insert(
            AuditEntry,
            audit.BULK_COLUMNS,
            [
                (
                    now,
                    None,
                    self.request_id,
                    action,
                    ct.pk,
                    str(obj.pk),
                    str(obj)[:200],
                    ct.pk,
                    str(obj.pk),
                    ops.adapt_json_value(changes, None),
                    f"Imported from {SOURCE}",
                )
                for obj, action, changes in entries
            ],
        )

    # -- pass 2: every row as an activity (the incident's history) --

    def write_activities(self, pks: dict[str, int], teams: dict[str, int]) -> None:
        if not pks:
            return
        known: set[str] = set(
            IncidentActivity.objects.filter(source=SOURCE).values_list("external_key", flat=True).iterator()
        )
        seen: dict[str, int] = {}
        batch: list[tuple[Any, ...]] = []
        ops = connection.ops
        now = ops.adapt_datetimefield_value(timezone.now())
        times: dict[str, Any] = {}
        report = self.report
        unchanged = 0
        with open_log(self.path) as (_name, stream):
            # Errors were reported in pass 1: this pass reports into a throwaway report.
            rows = _rows(stream, self.name, ImportReport(source=SOURCE), [])
            h = {name: i for i, name in enumerate(self.header)}
            i_number, i_state, i_at = h["number"], h["incident_state"], h["sys_updated_at"]
            i_mod, i_group, i_by = h["sys_mod_count"], h.get("assignment_group"), h.get("sys_updated_by")
            kept = [
                (name, h[name])
                for name in (
                    "sys_mod_count",
                    "active",
                    "sys_updated_by",
                    "assigned_to",
                    "reassignment_count",
                    "reopen_count",
                    "made_sla",
                    "priority",
                )
                if name in h
            ]
            for line, cells in rows:
                number = cells[i_number]
                pk = pks.get(number)
                if pk is None:
                    continue
                ordinal = seen.get(number, 0) + 1
                seen[number] = ordinal
                key = f"{number}/{ordinal}"
                if key in known:
                    unchanged += 1
                    continue
                text = cells[i_at]
                at = times.get(text)
                if at is None:
                    try:
                        parsed = parse_time(text)
                    except ValueError as exc:
                        report.error(self.name, line, "sys_updated_at", str(exc))
                        report.count("activity", "failed")
                        continue
                    if parsed is None:
                        report.error(self.name, line, "sys_updated_at", "An update needs its time.")
                        report.count("activity", "failed")
                        continue
                    at = times[text] = ops.adapt_datetimefield_value(parsed)
                raw: dict[str, str | int] = {name: cells[i] for name, i in kept}
                raw["line"] = line
                batch.append(
                    (
                        SOURCE,
                        key,
                        ops.adapt_json_value(raw, None),
                        now,
                        now,
                        1,
                        pk,
                        at,
                        cells[i_state][:100],
                        teams.get(cells[i_group]) if i_group is not None else None,
                        (f"update {cells[i_mod]}" + (f" by {cells[i_by]}" if i_by is not None else ""))[:300],
                    )
                )
                if len(batch) >= BATCH:
                    _insert(IncidentActivity, ACTIVITY_COLUMNS, batch)
                    report.count("activity", "created", len(batch))
                    self.progress(len(batch), "activities written")
                    batch = []
            if batch:
                _insert(IncidentActivity, ACTIVITY_COLUMNS, batch)
                report.count("activity", "created", len(batch))
                self.progress(len(batch), "activities written")
        if unchanged:
            report.count("activity", "unchanged", unchanged)


ACTIVITY_COLUMNS = (
    "source",
    "external_key",
    "raw",
    "created_at",
    "updated_at",
    "version",
    "incident_id",
    "at",
    "activity_type",
    "assignment_group_id",
    "note",
)


def _insert(model: type[models.Model], columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """INSERT rows of database-ready values with executemany.

    For the 141k activities (and the audit rows) of the full file: bulk_create spends most of its
    time compiling SQL and preparing each value through its field (measured: 2/3 of the import);
    here the values are adapted once by the caller (times are cached per distinct text).
    """
    if not rows:
        return
    quote = connection.ops.quote_name
    # (a concrete field always has a column)
    column = {f.attname: f.column for f in model._meta.concrete_fields if f.column is not None}
    table = quote(model._meta.db_table)
    names = ", ".join(quote(column[c]) for c in columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # executemany costs a round trip a row here (measured: 45 s for the file); COPY streams.
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        placeholders = ", ".join(["%s"] * len(columns))
        cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({placeholders})", rows)  # noqa: S608


def _insert_objects(model: type[models.Model], objs: list[Any]) -> None:
    """Insert unsaved model objects (no pk) through `_insert`, adapting their values once."""
    ops = connection.ops
    now = timezone.now()
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    stamps = {
        i for i, f in enumerate(fields) if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)
    }
    stamp = ops.adapt_datetimefield_value(now)
    converters: list[Any] = []
    for f in fields:
        if isinstance(f, models.DateTimeField):
            converters.append(ops.adapt_datetimefield_value)
        elif isinstance(f, models.JSONField):
            converters.append(lambda v, encoder=f.encoder: ops.adapt_json_value(v, encoder))
        else:
            converters.append(None)
    rows = []
    for obj in objs:
        values = []
        for i, (f, convert) in enumerate(zip(fields, converters, strict=True)):
            if i in stamps:
                setattr(obj, f.attname, now)
                values.append(stamp)
                continue
            value = getattr(obj, f.attname)
            values.append(convert(value) if convert is not None and value is not None else value)
        rows.append(tuple(values))
    _insert(model, tuple(f.attname for f in fields), rows)


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return "(raw row)"
    return value
