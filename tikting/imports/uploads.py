"""Imports from the UI: upload a file, see the dry run's report (errors by line), then import it
with a progress bar and a result page (docs/import-records.md, "From the UI").

Both runs happen in the background worker (`tikting worker`, started by `make demo`), through the
same `import_records` as `tikting import` and the API, with the same source (the file's format),
so a file imported from the UI and again from the CLI is matched row for row. The uploaded file
is kept in TIKTING_IMPORT_UPLOAD_DIR until it is imported or discarded, then deleted.
"""

from __future__ import annotations

import io
import re
import time
import unicodedata
from pathlib import PurePath
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import FileSystemStorage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from tikting.accounts.models import Actor, Role, User
from tikting.core import audit
from tikting.core.exceptions import PermissionDeniedError
from tikting.jobs import services as jobs
from tikting.jobs.models import JobLaunch
from tikting.lib.tabular import format_for
from tikting.records.registry import KINDS, can_edit_records, get_kind

from .models import Upload

SUFFIXES = {".csv", ".json", ".jsonl", ".ndjson"}
PROGRESS_EVERY = 0.5  # seconds between two progress writes of a running import


def storage() -> FileSystemStorage:
    return FileSystemStorage(location=settings.TIKTING_IMPORT_UPLOAD_DIR)


def clean_name(name: str) -> str:
    """The file's own name, without folders, control characters or odd punctuation, at most 120
    characters: what the pages show and the errors name."""
    base = PurePath(name.replace("\\", "/")).name
    base = unicodedata.normalize("NFC", base)
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")
    base = re.sub(r"[^\w.\- ()]+", "_", base).strip(" ._") or "upload"
    if len(base) > 120:
        stem, dot, suffix = base.rpartition(".")
        base = (stem[: 119 - len(suffix)] + dot + suffix) if dot and len(suffix) < 10 else base[:120]
    return base


def kinds_for(user: Actor) -> list[Any]:
    """The record kinds `user` may import (those they may create and edit)."""
    return [kind for kind in KINDS.values() if can_edit_records(user, kind)]


def can_see(user: Actor, upload: Upload) -> bool:
    """The person who uploaded it, and improvement managers and administrators."""
    if not isinstance(user, User) or not user.is_authenticated:
        return False
    return upload.created_by_id == user.pk or user.has_role(Role.MANAGER)


def can_act(user: Actor, upload: Upload) -> bool:
    """Import or discard: whoever may see it and still may import records of its kind."""
    return can_see(user, upload) and can_edit_records(user, get_kind(upload.kind))


def _rows_in(stream: IO[bytes], fmt: str) -> int | None:
    """Rows in the file, for the progress bar: lines after the header (CSV; a quoted line break
    makes it an overestimate, the bar then ends early), non-empty lines (JSON Lines); None for a
    JSON array (not known until it is read)."""
    if fmt == "json":
        return None
    lines = empty = 0
    last = b"\n"
    for chunk in iter(lambda: stream.read(1 << 20), b""):
        lines += chunk.count(b"\n")
        empty += chunk.count(b"\n\n")
        last = chunk[-1:]
    lines += last != b"\n"
    stream.seek(0)
    return max(0, lines - 1) if fmt == "csv" else max(0, lines - empty)


@transaction.atomic
def create_upload(kind_slug: str, file: UploadedFile, *, actor: Actor) -> Upload:
    """Keep the file and queue its dry run. ValidationError names `kind` or `file`."""
    if kind_slug not in KINDS:
        raise ValidationError({"kind": f"Choose a kind of record to import: {', '.join(KINDS)}."})
    kind = get_kind(kind_slug)
    if not can_edit_records(actor, kind):
        raise PermissionDeniedError(f"You may not import {kind.label_plural.lower()}.")
    name = clean_name(file.name or "")
    suffix = PurePath(name).suffix.lower()
    if suffix not in SUFFIXES:
        raise ValidationError(
            {"file": f"'{name}' is not a CSV, JSON or JSON Lines file: name it .csv, .json or .jsonl."}
        )
    if file.size is None or file.size == 0:
        raise ValidationError({"file": f"'{name}' is empty."})
    if file.size > settings.TIKTING_MAX_UPLOAD_BYTES:
        limit = settings.TIKTING_MAX_UPLOAD_BYTES // (1024 * 1024)
        raise ValidationError(
            {"file": f"'{name}' is larger than {limit} MB: import it with `tikting import {kind.slug} FILE`."}
        )
    fmt = format_for(name)
    lines = _rows_in(file, fmt)  # type: ignore[arg-type]  # an UploadedFile reads bytes
    stored = storage().save(f"{kind.slug}-{timezone.now():%Y%m%d%H%M%S}{suffix}", file)
    upload = Upload.objects.create(
        kind=kind.slug,
        file_name=name,
        stored_as=stored,
        fmt=fmt,
        size=file.size,
        lines=lines,
        created_by=actor if isinstance(actor, User) else None,
    )
    audit.record(
        upload,
        action="create",
        actor=actor,
        message=f"Uploaded {name} to import as {kind.label_plural.lower()}",
    )
    _enqueue(upload, "check_upload", f"Check {name} ({kind.label_plural.lower()})", actor)
    return upload


def _enqueue(upload: Upload, task: str, label: str, actor: Actor) -> None:
    jobs.enqueue(
        f"tikting.imports.tasks.{task}", [upload.pk], origin=JobLaunch.Origin.MANUAL, label=label, actor=actor
    )


@transaction.atomic
def start_import(upload: Upload, *, actor: Actor) -> Upload:
    """Queue the import of a checked file (its good rows; the bad ones are reported again)."""
    upload = Upload.objects.select_for_update().get(pk=upload.pk)
    if not can_act(actor, upload):
        raise PermissionDeniedError("You may not import this file.")
    if upload.status != Upload.Status.CHECKED:
        raise ValidationError(
            {"status": f"This file is {upload.get_status_display().lower()}: it cannot be imported now."}
        )
    upload.status = Upload.Status.IMPORTING
    upload.rows_done = 0
    upload.save(update_fields=["status", "rows_done"])
    audit.record(upload, action="update", actor=actor, message=f"Import of {upload.file_name} started")
    _enqueue(upload, "import_upload", f"Import {upload.file_name} ({upload.kind})", actor)
    return upload


@transaction.atomic
def discard(upload: Upload, *, actor: Actor) -> Upload:
    upload = Upload.objects.select_for_update().get(pk=upload.pk)
    if not can_act(actor, upload):
        raise PermissionDeniedError("You may not discard this file.")
    if upload.status != Upload.Status.CHECKED:
        raise ValidationError(
            {"status": f"This file is {upload.get_status_display().lower()}: it cannot be discarded now."}
        )
    _remove_file(upload)
    upload.status = Upload.Status.DISCARDED
    upload.save(update_fields=["status", "stored_as"])
    audit.record(
        upload, action="update", actor=actor, message=f"{upload.file_name} discarded, nothing imported"
    )
    return upload


def _remove_file(upload: Upload) -> None:
    if upload.stored_as:
        storage().delete(upload.stored_as)
        upload.stored_as = ""


# --- In the worker ---------------------------------------------------------------------------------


def _run(upload: Upload, *, dry_run: bool) -> dict[str, Any]:
    from .records import import_records

    last = [time.monotonic()]
    done = [0]

    def progress(advance: int, label: str) -> None:
        done[0] += advance
        now = time.monotonic()
        if not dry_run and now - last[0] >= PROGRESS_EVERY:
            last[0] = now
            Upload.objects.filter(pk=upload.pk).update(rows_done=done[0])

    actor = upload.created_by
    with storage().open(upload.stored_as, "rb") as raw:
        stream = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        report = import_records(
            upload.kind,
            stream,
            fmt=upload.fmt,
            actor=actor,
            dry_run=dry_run,
            source=upload.fmt,
            progress=progress,
            file=upload.file_name,
        )
    return report.as_dict()


def run_check(upload_id: int) -> str:
    upload = Upload.objects.get(pk=upload_id)
    if upload.status != Upload.Status.CHECKING:
        return f"skipped: {upload.status}"
    upload.started_at = timezone.now()
    try:
        upload.check_report = _run(upload, dry_run=True)
        upload.status = Upload.Status.CHECKED
    except UnicodeDecodeError as exc:
        upload.status, upload.error = (
            Upload.Status.FAILED,
            f"The file is not UTF-8 text ({exc.reason} at byte {exc.start}).",
        )
        _remove_file(upload)
    except Exception as exc:  # noqa: BLE001 - recorded on the upload and shown, then raised for the job
        upload.status, upload.error = Upload.Status.FAILED, f"The check failed: {exc}"
        _remove_file(upload)
        upload.finished_at = timezone.now()
        upload.save()
        raise
    upload.finished_at = timezone.now()
    upload.save()
    return upload.status


def run_import(upload_id: int) -> str:
    upload = Upload.objects.get(pk=upload_id)
    if upload.status != Upload.Status.IMPORTING:
        return f"skipped: {upload.status}"
    upload.started_at = timezone.now()
    try:
        upload.report = _run(upload, dry_run=False)
        upload.status = Upload.Status.DONE
        upload.rows_done = sum(sum(c.values()) for c in upload.report["counts"].values())
    except Exception as exc:  # noqa: BLE001 - recorded on the upload and shown, then raised for the job
        upload.status, upload.error = Upload.Status.FAILED, f"The import stopped: {exc}"
        upload.finished_at = timezone.now()
        upload.save()
        raise
    _remove_file(upload)
    upload.finished_at = timezone.now()
    upload.save()
    return upload.status
