"""Where the discovery sample files are: permissive ones in tests/fixtures/discovery (copied, with
attribution in tests/fixtures/README.md), all of them in ../shared/data/discovery (read there:
some are GPL / AGPL / NPSL; tests using them skip when it is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "discovery"
SHARED = ROOT.parent / "shared" / "data" / "discovery"

needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/discovery is absent")


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def shared_files(folder: str, pattern: str) -> list[Path]:
    """The shared samples of a folder (empty when ../shared/data is absent: the test then skips)."""
    return sorted((SHARED / folder).glob(pattern)) if SHARED.is_dir() else []
