"""A detector that fails (the intake must record the run as failed and run the others)."""

from __future__ import annotations

from tikting.signals.proposals import Progress, Proposal, Window

NAME = "broken"
TITLE = "Broken (tests)"
CHANNEL = "knowledge"
THRESHOLDS: dict[str, float] = {}


def detect(window: Window, *, thresholds: dict[str, float], progress: Progress) -> list[Proposal]:
    raise ZeroDivisionError("a detector bug: division by zero")
