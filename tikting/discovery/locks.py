"""One run per discovery source at a time: a lock held across the scan or the upload and its
reconciliation, so two runs of one source never overlap (two scans of one network, an agent
sending twice at once), whoever starts them (the CLI, the agent endpoint, the worker).

PostgreSQL: a session-level advisory lock (pg_try_advisory_lock) keyed by the source's name, so
it holds across processes and machines sharing the database. SQLite (one machine): an exclusive
flock on a file per source in TIKTING_VAR_DIR/locks. Neither waits: a busy source raises
SourceBusy at once, naming the source.
"""

from __future__ import annotations

import fcntl
import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connection

__all__ = ["SourceBusy", "key", "source_lock"]


class SourceBusy(RuntimeError):
    """Another run of the same source holds its lock."""

    def __init__(self, source_name: str) -> None:
        self.source_name = source_name
        super().__init__(
            f"Another discovery run of source '{source_name}' is in progress: try again when it has finished."
        )


def key(source_name: str) -> int:
    """A stable signed 64-bit key for the source (advisory locks take a bigint)."""
    digest = hashlib.sha256(f"tikting.discovery:{source_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def source_lock(source_name: str) -> Iterator[None]:
    """Hold the source's lock for the body; SourceBusy when another run holds it."""
    if connection.vendor == "postgresql":
        lock_id = key(source_name)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [lock_id])
            (taken,) = cursor.fetchone()
        if not taken:
            raise SourceBusy(source_name)
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [lock_id])
        return
    folder = Path(settings.VAR_DIR) / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^A-Za-z0-9_.-]", "_", source_name)[:80] or "_"
    path = folder / f"discovery-{slug}-{key(source_name) & 0xFFFFFFFF:08x}.lock"
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SourceBusy(source_name) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
