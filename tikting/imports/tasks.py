"""Background tasks of the imports started from the UI (tikting/imports/uploads.py)."""

from __future__ import annotations

from django_tasks import task

from . import uploads


@task()
def check_upload(upload_id: int) -> str:
    """The dry run of an uploaded file: its report, errors by line, nothing written."""
    return uploads.run_check(upload_id)


@task()
def import_upload(upload_id: int) -> str:
    """The import of a checked file, its progress written as it goes."""
    return uploads.run_import(upload_id)
