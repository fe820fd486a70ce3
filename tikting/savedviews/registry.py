"""The lists a view can be saved of, registered by the apps that own them (below them all here).

The register registers "register"; the records app one key per record kind ("records:incident").
Each says what it is called, where it lives, and which query parameters it understands, so a
saved query keeps only what the list reads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.http import QueryDict


@dataclass(frozen=True)
class SavedList:
    key: str
    label: str
    url: Any  # the list page (a lazy reverse: read with str())
    params: Callable[[], set[str]]  # the parameters the list reads (filters and sort)


_lists: dict[str, SavedList] = {}


def register_list(saved: SavedList) -> None:
    _lists[saved.key] = saved


def get(key: str) -> SavedList | None:
    return _lists.get(key)


def all_lists() -> dict[str, SavedList]:
    return dict(_lists)


def clean_query(saved: SavedList, query: str | QueryDict) -> str:
    """The query string with only the list's own parameters, empty values and the page dropped."""
    source = QueryDict(query) if isinstance(query, str) else query
    allowed = saved.params()
    kept = QueryDict(mutable=True)
    for name in sorted(source):
        if name in allowed and name != "page":
            values = [v.strip() for v in source.getlist(name) if v.strip()]
            if values:
                kept.setlist(name, values)
    return kept.urlencode()
