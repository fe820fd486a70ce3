"""What a detector hands to the intake queue: plain data, no database writes.

A detector (one module under `tikting/signals/detectors/`) reads the records and returns
`Proposal`s; the intake (`tikting/signals/services/`) turns them into candidates, suppresses
the ones already dismissed or merged unless their evidence grew materially, and records the run.
Detectors never write: the same proposals from the same records, every run (deterministic).

The contract every detector module keeps:

    NAME: str                      # "recurring_incidents", the --detector name, stable
    TITLE: str                     # "Recurring incidents", for pages
    CHANNEL: str                   # an improvement SourceChannel value ("sla_breach", …)
    THRESHOLDS: dict[str, float]   # documented defaults (docs/signals.md), overridable in settings
                                   # TIKTING_SIGNALS["<NAME>"] = {...}
    def detect(window: Window, *, thresholds: dict[str, float], progress: Progress) -> list[Proposal]
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# progress(done, total): total None while unknown. Detectors call it now and then; it may be a no-op.
Progress = Callable[[int, int | None], None]


def no_progress(done: int, total: int | None) -> None:
    return None


@dataclass(frozen=True)
class Window:
    """The records a run reads: opened (or, for changes, ended) in [start, end)."""

    start: dt.datetime
    end: dt.datetime


@dataclass(frozen=True)
class Evidence:
    """One record behind a proposal, addressed the way the records app addresses it."""

    kind: str  # the record registry's slug: "incident", "change", "problem", "survey", …
    pk: int
    key: str  # the record's key as it was imported (incident number, change number, …)
    role: str = ""  # what it shows: "member", "cause", "followed_by", "breach", …


@dataclass
class Proposal:
    """One improvement (or problem) candidate with the evidence that raised it.

    `fingerprint` names the pattern, not the run: the same pattern found again next month has the
    same fingerprint (e.g. "recurring_incidents:service=12:ci=34:cluster=<stable hash>"), so the
    intake can merge it into the open candidate or keep it suppressed after a dismissal.
    `magnitude` is the size of the evidence on one scale per detector (incidents in the group,
    breaches, hours a year); a suppressed candidate comes back when magnitude grows by the
    configured share (TIKTING_SIGNALS_REGROWTH, stated on the candidate).
    """

    detector: str
    fingerprint: str
    title: str
    explanation: str  # why it was raised: the rule and the figures that decided it, in words
    score: float  # how strongly the evidence points at an improvement; detectors document the scale
    magnitude: float
    period_start: dt.date
    period_end: dt.date
    evidence: list[Evidence] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)  # JSON-safe numbers and labels
    practice: str = "other"  # a core.itsm.Practice value
    service_id: int | None = None
    impact: int = 3  # 1-5, as the register rates it
    effort: int = 3  # 1-5
    rating_reason: str = ""  # why this impact and effort
    proposes: str = "improvement"  # or "problem": open a problem record rather than an item
