"""Bulk-load hooks: what replaces a table's per-row triggers while an importer bulk loads it.

An app that keeps something current with per-row triggers (a full-text index, the metrics' data
stamp, the rollup's dirty months) registers a `Rebuild` here from its AppConfig.ready(): the
trigger names per database vendor and one set-based statement that does their work for the whole
load. The importers' bulk loader (tikting.imports.bulk) drops those triggers for the load of a
table that was empty when the run started, creates them again after it and runs the rebuild once.

It lives in core so that the owner of a trigger registers it without knowing the importers, and
the importers use it without knowing the owners (docs/development.md, layers).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Rebuild", "rebuilds_for", "register_rebuild", "unregister_rebuild"]


@dataclass(frozen=True)
class Rebuild:
    """What replaces per-row triggers of `table` during a bulk load.

    `triggers`: {vendor: trigger names} dropped before the load and re-created after it (their
    definitions are read from the catalog); `run`: called once after the load with the vendor,
    to bring what the triggers maintain up to date in one statement (e.g. FTS5's
    ``INSERT INTO t_fts(t_fts) VALUES('rebuild')``). The loaded table was empty at the start of
    the run, so every row in it was written by the load."""

    table: str
    triggers: dict[str, tuple[str, ...]]
    run: Callable[[str], None]
    name: str = ""


_REBUILDS: list[Rebuild] = []


def register_rebuild(rebuild: Rebuild) -> None:
    """Declare a rebuild for bulk loads of `rebuild.table` (idempotent by table and name)."""
    _REBUILDS[:] = [r for r in _REBUILDS if (r.table, r.name) != (rebuild.table, rebuild.name)]
    _REBUILDS.append(rebuild)


def unregister_rebuild(table: str, name: str = "") -> None:
    _REBUILDS[:] = [r for r in _REBUILDS if (r.table, r.name) != (table, name)]


def rebuilds_for(table: str) -> list[Rebuild]:
    return [r for r in _REBUILDS if r.table == table]
