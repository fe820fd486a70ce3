"""Candidates as data for others to check (`tikting signals export`, the API)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db import models

from tikting.accounts.models import Actor

from .. import permissions as P
from ..models import (
    Candidate,
)

# --- Export ---------------------------------------------------------------------------------------


def export_rows(candidates: models.QuerySet[Candidate], *, viewer: Actor = None) -> Iterator[dict[str, Any]]:
    """Each candidate as plain data for others to check: its detector, score, explanation, figures
    and the source keys of its evidence records (e.g. incident numbers as they were imported)."""
    qs = candidates.select_related("service", "item", "reporter").prefetch_related("evidence")
    for candidate in qs.iterator(chunk_size=500):
        evidence = list(candidate.evidence.all())
        see_reporter = viewer is None or P.can_see_reporter(viewer, candidate)
        yield {
            "id": candidate.pk,
            "ref": candidate.ref,
            "detector": candidate.detector,
            "channel": candidate.channel,
            "fingerprint": candidate.fingerprint,
            "status": candidate.status,
            "title": candidate.title,
            "score": candidate.score,
            "magnitude": candidate.magnitude,
            "explanation": candidate.explanation,
            "period_start": candidate.period_start.isoformat() if candidate.period_start else None,
            "period_end": candidate.period_end.isoformat() if candidate.period_end else None,
            "figures": candidate.figures,
            "practice": candidate.practice,
            "service": candidate.service.name if candidate.service else None,
            "impact": candidate.impact,
            "effort": candidate.effort,
            "rating_reason": candidate.rating_reason,
            "proposes": candidate.proposes,
            "item": candidate.item.ref if candidate.item else None,
            "reporter": (candidate.reporter.username if candidate.reporter and see_reporter else None),
            "anonymous": candidate.anonymous,
            "created_at": candidate.created_at.isoformat(),
            "source_keys": [e.key for e in evidence],
            "evidence": [
                {"kind": e.kind, "id": int(e.object_id), "key": e.key, "role": e.role} for e in evidence
            ],
        }
