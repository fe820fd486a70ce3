"""Detector modules and helpers for the intake tests: real modules keeping the detector contract,
whose proposals a test sets (`SCRIPTED`), and one that fails."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from tikting.incidents.models import Incident
from tikting.signals.proposals import Evidence, Progress, Proposal, Window

NAME = "scripted"
TITLE = "Scripted (tests)"
CHANNEL = "sla_breach"
THRESHOLDS: dict[str, float] = {"limit": 10}

SCRIPTED: list[Proposal] = []
SEEN: dict[str, Any] = {}


def detect(window: Window, *, thresholds: dict[str, float], progress: Progress) -> list[Proposal]:
    SEEN["window"], SEEN["thresholds"] = window, dict(thresholds)
    progress(0, 1)
    progress(1, 1)
    return list(SCRIPTED)


def incident(number: str, **extra: Any) -> Incident:
    return Incident.objects.create(number=number, opened_at=timezone.now() - dt.timedelta(days=3), **extra)


def proposal(
    fingerprint: str = "scripted:service=1",
    *,
    magnitude: float = 4,
    incidents: list[Incident] | None = None,
    detector: str = NAME,
    **extra: Any,
) -> Proposal:
    today = timezone.localdate()
    data: dict[str, Any] = {
        "detector": detector,
        "fingerprint": fingerprint,
        "title": f"Breaches pile up ({magnitude:g})",
        "explanation": f"{magnitude:g} breaches in the window.",
        "score": magnitude * 1.5,
        "magnitude": magnitude,
        "period_start": today - dt.timedelta(days=30),
        "period_end": today,
        "evidence": [Evidence("incident", i.pk, i.number, "breach") for i in incidents or []],
        "figures": {"breaches": magnitude},
        "practice": "sla",
        "impact": 4,
        "effort": 2,
        "rating_reason": "Many breaches; a rota change.",
    }
    data.update(extra)
    return Proposal(**data)
