"""The manual channels: post-incident review and audit findings, staff feedback."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from tikting.accounts.models import Actor, Role
from tikting.core import audit
from tikting.core.exceptions import PermissionDeniedError
from tikting.core.itsm import Practice
from tikting.improvement.choices import SourceChannel
from tikting.records.registry import kind_for

from .. import permissions as P
from ..models import (
    Candidate,
    CandidateEvidence,
)
from .common import _user

# --- Manual channels ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ManualChannel:
    """A channel people submit through: who may, and from which records."""

    channel: str
    label: str
    role: str  # the lowest role that may submit
    kinds: tuple[str, ...] = ()  # record kinds it is raised from; () any or none
    record_required: bool = False
    practice: str = Practice.OTHER
    anonymous_allowed: bool = False


MANUAL_CHANNELS: dict[str, ManualChannel] = {
    c.channel: c
    for c in (
        ManualChannel(
            SourceChannel.POST_INCIDENT_REVIEW,
            "Post-incident review finding",
            Role.CONTRIBUTOR,
            kinds=("incident", "problem"),
            record_required=True,
            practice=Practice.INCIDENT,
        ),
        ManualChannel(
            SourceChannel.AUDIT_FINDING,
            "Audit finding",
            Role.CONTRIBUTOR,
            kinds=("audit-finding",),
            record_required=True,
            practice=Practice.OTHER,
        ),
        ManualChannel(
            SourceChannel.STAFF_FEEDBACK,
            "Staff feedback",
            Role.VIEWER,
            practice=Practice.OTHER,
            anonymous_allowed=True,
        ),
    )
}


def manual_channel(channel: str) -> ManualChannel:
    try:
        return MANUAL_CHANNELS[channel]
    except KeyError as exc:
        raise ValidationError(
            {"channel": f"'{channel}' is not a manual channel; choose from {', '.join(MANUAL_CHANNELS)}."}
        ) from exc


def record_key(record: models.Model) -> str:
    """The record's key as people know it (incident number, …), else #id."""
    kind = kind_for(record)
    if kind is None or kind.key_field == "id":
        return f"#{record.pk}"
    return str(getattr(record, kind.key_field, "") or f"#{record.pk}")


@transaction.atomic
def submit_candidate(
    *,
    actor: Actor,
    channel: str,
    title: str,
    description: str = "",
    record: models.Model | None = None,
    service: Any = None,
    practice: str = "",
    impact: int | None = None,
    effort: int | None = None,
    anonymous: bool = False,
) -> Candidate:
    """A finding or feedback submitted by a person: a candidate in the queue with the channel it came
    through, the record it was raised from (as its evidence) and the reporter. Staff feedback may be
    anonymous to peers (its reporter is shown to managers and administrators only)."""
    spec = manual_channel(channel)
    if actor is not None and not getattr(actor, "is_authenticated", False):
        raise PermissionDeniedError(f"Sign in to submit {spec.label.lower()}.")
    P.check(actor, P.can_report(actor, spec.role), f"submit {spec.label.lower()}")
    errors: dict[str, str] = {}
    title = (title or "").strip()
    if not title:
        errors["title"] = "A title is required."
    elif len(title) > 200:
        errors["title"] = f"At most 200 characters ({len(title)} given)."
    kind = kind_for(record) if record is not None else None
    if record is None and spec.record_required:
        errors["record"] = f"A {spec.label.lower()} is raised from a record: {' or '.join(spec.kinds)}."
    elif record is not None and (kind is None or (spec.kinds and kind.slug not in spec.kinds)):
        errors["record"] = (
            f"A {spec.label.lower()} is raised from a record: {' or '.join(spec.kinds) or 'any kind'}."
        )
    if practice and practice not in Practice.values:
        errors["practice"] = f"'{practice}' is not a practice."
    for name, value in (("impact", impact), ("effort", effort)):
        if value is not None and not 1 <= int(value) <= 5:
            errors[name] = "Rate it from 1 to 5."
    if anonymous and not spec.anonymous_allowed:
        errors["anonymous"] = (
            f"Only staff feedback can be anonymous; {spec.label.lower()} names its reporter."
        )
    if errors:
        raise ValidationError(errors)
    if service is None and record is not None:
        service = getattr(record, "service", None)
    today = timezone.localdate()
    candidate = Candidate(
        channel=spec.channel,
        title=title,
        explanation=(description or "").strip() or title,
        practice=practice or (kind.practice if kind and kind.practice in Practice.values else spec.practice),
        service=service,
        impact=impact or 3,
        effort=effort or 3,
        rating_reason="" if impact or effort else "Not rated by the reporter (3 is the middle of the scale).",
        magnitude=1,
        period_start=today,
        period_end=today,
        reporter=_user(actor),
        anonymous=bool(anonymous),
        last_seen_at=timezone.now(),
    )
    candidate.full_clean()
    candidate.save()
    if record is not None and kind is not None:
        CandidateEvidence.objects.create(
            candidate=candidate,
            content_type=ContentType.objects.get_for_model(record),
            object_id=str(record.pk),
            kind=kind.slug,
            key=record_key(record)[:120],
            role="reported_from",
        )
    changes = audit.diff({}, audit.snapshot(candidate))
    if candidate.anonymous:
        changes.pop("reporter", None)
    audit.record(candidate, action="create", actor=actor, changes=changes, message=f"Submitted: {spec.label}")
    audit.record_status(candidate, old="", new=candidate.status, actor=actor, reason="submitted")
    return candidate
