"""What every importer of ITSM records reports, and how it reports progress.

Importers stream their input (constant memory), are idempotent on (source, external key), keep
good rows and report bad ones by file, line and field, and can run as a dry run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from tikting.lib.archives import ArchiveRefused, ZipLimits
from tikting.lib.tabular import FileFormatError

# progress(advance, label): `advance` rows were read from the file or stage named `label`.
Progress = Callable[[int, str], None]


def no_progress(advance: int, label: str) -> None:
    return None


@dataclass
class RowError:
    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "field": self.field, "message": self.message}


@dataclass
class RowWarning(RowError):
    """A value that could not be read but does not lose its row (kept as read, e.g. in `raw`)."""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: warning: {self.message}"


@dataclass
class Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        return self.created + self.updated + self.unchanged + self.failed


@dataclass
class ImportReport:
    """Counts per record kind (registry slugs: incident, interaction, change, ci …), row errors (the
    row is not imported) and warnings (a value kept as read only, e.g. in `raw`: the row is)."""

    source: str
    dry_run: bool = False
    counts: dict[str, Counts] = field(default_factory=dict)
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0  # all errors; `errors` keeps the first MAX_ERRORS
    warnings: list[RowWarning] = field(default_factory=list)
    warning_count: int = 0  # all warnings; `warnings` keeps the first MAX_ERRORS
    notes: list[str] = field(default_factory=list)  # what the run did besides the rows (derived data)
    started: float = field(default_factory=time.monotonic)
    seconds: float = 0.0

    MAX_ERRORS = 1000

    def count(self, kind: str, outcome: str, n: int = 1) -> None:
        counts = self.counts.setdefault(kind, Counts())
        setattr(counts, outcome, getattr(counts, outcome) + n)

    def error(self, file: str, line: int, field_name: str, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < self.MAX_ERRORS:
            self.errors.append(RowError(file, line, field_name, message))

    def wrote(self, kind: str) -> bool:
        """Whether the run created or updated records of `kind`."""
        counts = self.counts.get(kind)
        return bool(counts and (counts.created or counts.updated))

    def warning(self, file: str, line: int, field_name: str, message: str) -> None:
        """A bad value that does not fail its row (the row is kept; `ok` stays true)."""
        self.warning_count += 1
        if len(self.warnings) < self.MAX_ERRORS:
            self.warnings.append(RowWarning(file, line, field_name, message))

    def note(self, text: str) -> None:
        """Say what the run did besides writing rows (e.g. SLA definitions applied)."""
        self.notes.append(text)

    def finish(self) -> ImportReport:
        self.seconds = time.monotonic() - self.started
        return self

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "dry_run": self.dry_run,
            "seconds": round(self.seconds, 2),
            "counts": {k: vars(v) for k, v in self.counts.items()},
            "error_count": self.error_count,
            "errors": [e.as_dict() for e in self.errors],
            "warning_count": self.warning_count,
            "warnings": [w.as_dict() for w in self.warnings],
            "notes": list(self.notes),
        }


def zip_limits() -> ZipLimits:
    """The limits every importer reads zip archives within (zip bombs): settings
    TIKTING_IMPORT_MAX_UNPACKED_BYTES and TIKTING_IMPORT_MAX_ZIP_RATIO, docs/deployment.md."""
    from django.conf import settings

    return ZipLimits(
        max_bytes=settings.TIKTING_IMPORT_MAX_UNPACKED_BYTES, max_ratio=settings.TIKTING_IMPORT_MAX_ZIP_RATIO
    )


# What stops a file being read to its end: the run imports nothing of it (discard_run).
UNREADABLE = (FileFormatError, ArchiveRefused)


def discard_run(report: ImportReport, name: str, exc: FileFormatError | ArchiveRefused) -> None:
    """Inside the run's transaction: roll it back and report why, as a `file` error (no counts)."""
    transaction.set_rollback(True)
    report.counts.clear()
    line = exc.line if isinstance(exc, FileFormatError) else 0
    report.error(name, line, "file", f"{exc} Nothing was imported.")


def apply_source_slas(source: str, report: ImportReport, progress: Progress = no_progress) -> int:
    """After an import of a data set wrote incidents (created or updated any): the SLA due times
    and met flags of every incident of its source (tikting.slas.verdicts.apply_slas, in bulk). Not
    called on a dry run. Returns the number of incidents evaluated (0 when none was written)."""
    if not report.wrote("incident"):
        return 0
    from tikting.incidents.models import Incident
    from tikting.slas.verdicts import apply_slas

    return apply_slas(Incident.objects.filter(source=source), progress=lambda n: progress(n, "sla"))
