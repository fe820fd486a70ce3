"""Agenda notices: sections of the review agenda that are about something else than register items,
registered by the apps above governance (cadence registers the protected-capacity flags from its
AppConfig.ready). Governance imports none of them: it asks the registry.

A provider takes the moment the agenda is made and returns a Notice (or None when it has nothing
to say). Notices are plain values so that a frozen agenda keeps them as JSON (`as_json`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class TrendPoint:
    """One period of a row's trend: its label ("Oct"), the figure in words ("40 %", "—"), whether
    it is flagged, and why it is partial ("" when whole)."""

    label: str
    value: str
    flagged: bool = False
    partial: str = ""


@dataclass(frozen=True)
class NoticeRow:
    name: str
    url: str
    summary: str
    trend: list[TrendPoint] = field(default_factory=list)


@dataclass(frozen=True)
class Notice:
    key: str
    title: str
    help: str
    rows: list[NoticeRow]
    covers: str = ""  # what the figures cover and leave out, in words

    @property
    def count(self) -> int:
        return len(self.rows)


Provider = Callable[[dt.datetime], Notice | None]

_PROVIDERS: dict[str, Provider] = {}


def register_agenda_notice(key: str, provider: Provider) -> None:
    """Add a section to every review agenda (idempotent per key: the last registration wins)."""
    _PROVIDERS[key] = provider


def agenda_notices(now: dt.datetime) -> list[Notice]:
    """Every registered provider's notice at `now`, in the order they were registered."""
    notices = []
    for provider in _PROVIDERS.values():
        notice = provider(now)
        if notice is not None:
            notices.append(notice)
    return notices


def as_json(notices: list[Notice]) -> list[dict[str, Any]]:
    return [{**asdict(notice), "count": notice.count} for notice in notices]
