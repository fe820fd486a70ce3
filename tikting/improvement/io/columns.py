"""The register's file columns, and the value formats export writes and import reads back."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from django.utils import timezone

from tikting.lib import display

# The register's columns, in export order. quadrant and priority_score are derived from impact
# and effort: exported for reading, ignored on import.
EXPORT_FIELDS: tuple[str, ...] = (
    "ref",
    "external_id",
    "title",
    "description",
    "practice",
    "service",
    "justification",
    "justification_type",
    "vision",
    "expected_outcome",
    "impact",
    "effort",
    "quadrant",
    "priority_score",
    "rank",
    "owner",
    "target_date",
    "review_milestone",
    "status",
    "blocked",
    "blocker",
    "source_channel",
    "source_reference",
    "assessment_reason",
    "revisit_date",
    "outcome",
    "benefit_category",
    "realised_delta",
    "lessons",
    "identified_at",
    "closed_at",
    "parent",
)
# In CSV, an item's indicators (with their measurements) and its actions are one cell each,
# holding the same JSON as the nested lists of the JSON format.
CSV_FIELDS: tuple[str, ...] = (*EXPORT_FIELDS, "indicators", "actions")
DERIVED_FIELDS = frozenset({"quadrant", "priority_score"})
# Attributes an import may change besides the row's own values: derived, or implied by the status.
IMPLIED_ATTRS = ("quadrant", "priority_score", "due_soon_from", "closed_at", "blocked_since", "escalated_at")

CHUNK_SIZE = 500
REF_RE = re.compile(r"^(?:CI-)?0*(\d+)$", re.IGNORECASE)  # the ref column: CI-00012 or 12
PARENT_REF_RE = re.compile(r"^CI-0*(\d+)$", re.IGNORECASE)  # the parent column: a ref, else an external id


def _text(value: Any) -> Any:
    """A JSON/CSV-safe value: dates ISO 8601, decimals without trailing zeros, None kept."""
    if isinstance(value, dt.datetime):
        return timezone.localtime(value).isoformat() if timezone.is_aware(value) else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return display.number(value)
    return value


def _ref(pk: int | None) -> str:
    return f"CI-{pk:05d}" if pk else ""
