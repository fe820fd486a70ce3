"""Test helpers. Where the discovery sample files are: permissive ones in tests/fixtures/discovery
(copied, with attribution in tests/fixtures/README.md), all of them in ../shared/data/discovery
(read there: some are GPL / AGPL / NPSL; tests using them skip when it is absent). And a source's
lock held by someone else."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.db import connection, connections

from tikting.discovery.locks import key as lock_key
from tikting.discovery.locks import source_lock

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "discovery"
SHARED = ROOT.parent / "shared" / "data" / "discovery"

needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/discovery is absent")


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def shared_files(folder: str, pattern: str) -> list[Path]:
    """The shared samples of a folder (empty when ../shared/data is absent: the test then skips)."""
    return sorted((SHARED / folder).glob(pattern)) if SHARED.is_dir() else []


@contextmanager
def held_elsewhere(source_name: str) -> Iterator[None]:
    """A source's lock held by another session, as another process would hold it. PostgreSQL's
    advisory locks are re-entrant within one session: a second connection takes it. On SQLite
    the flock of another open file description is already another holder."""
    if connection.vendor != "postgresql":
        with source_lock(source_name):
            yield
        return
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [lock_key(source_name)])
        yield
        with other.cursor() as cursor:  # explicitly: a closed session's locks go a moment later
            cursor.execute("SELECT pg_advisory_unlock(%s)", [lock_key(source_name)])
    finally:
        other.close()
