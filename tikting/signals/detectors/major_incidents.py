"""Major incidents without a completed post-incident review (PIR).

ITIL asks for a review of every major incident: what happened, why, what to change so it does not
happen again. This detector finds the major incidents resolved in the window that never got one,
per service, so the practice gap is raised once per service rather than once per incident.

- **Major**: priority `max_priority` or more urgent (1 = critical), or flagged major (the
  incident's `major` field).
- **Reviewed** (tikting models a PIR in two places, both count): the incident's own "post-incident
  review" field is filled in, or a post-incident review finding was submitted for the incident
  through the intake's manual channel (a candidate of channel post_incident_review raised from it).
- **Given time**: incidents resolved in the last `grace_days` days are left out of both counts
  (nobody reviews a major incident the hour it is resolved). Cancelled incidents are left out.
- **One proposal per service** with at least `min_missing` major incidents without a review
  (incidents without a service form one group). Fingerprint `major_incidents:service=<id|none>`;
  magnitude = the major incidents without a review; score = that number × the share of the
  service's major incidents without one (4 of 4 missing scores 4.0, 4 of 20 scores 0.8: the
  practice skipped systematically ranks above the odd miss). Evidence: the incidents without a
  review (role `no_review`), keyed by their number.
- **Baseline**: the share of major incidents without a review, in % (lower is better): accepting
  the candidate gives the item that indicator.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import BooleanField, Case, Q, Value, When
from django.utils import timezone

from tikting.cmdb.models import Service
from tikting.improvement.choices import SourceChannel
from tikting.incidents.models import Incident
from tikting.lib.display import when
from tikting.signals.models import CandidateEvidence
from tikting.signals.proposals import Evidence, Progress, Proposal, Window

NAME = "major_incidents"
TITLE = "Major incidents without a post-incident review"
CHANNEL = SourceChannel.POST_INCIDENT_REVIEW.value
THRESHOLDS: dict[str, float] = {
    "max_priority": 1,  # priority this urgent or more counts as major (1 = critical only)
    "grace_days": 5,  # days after resolution before a missing review counts
    "min_missing": 1,  # major incidents without a review a service needs to raise a candidate
}
LISTED = 10  # incident numbers named in the explanation


def reviewed_by_finding(incident_ids: list[int]) -> set[int]:
    """Of these incidents, those a post-incident review finding was submitted for (manual channel)."""
    found: set[int] = set()
    for start in range(0, len(incident_ids), 500):
        chunk = [str(pk) for pk in incident_ids[start : start + 500]]
        found.update(
            int(pk)
            for pk in CandidateEvidence.objects.filter(
                candidate__channel=CHANNEL, candidate__detector="", kind="incident", object_id__in=chunk
            ).values_list("object_id", flat=True)
        )
    return found


def _dates(window: Window) -> tuple[dt.date, dt.date]:
    last = max(window.end - dt.timedelta(microseconds=1), window.start)
    return timezone.localtime(window.start).date(), timezone.localtime(last).date()


def detect(window: Window, *, thresholds: dict[str, float], progress: Progress) -> list[Proposal]:
    t = {**THRESHOLDS, **thresholds}
    max_priority, grace_days, min_missing = (
        int(t["max_priority"]),
        float(t["grace_days"]),
        int(t["min_missing"]),
    )
    cutoff = min(window.end, timezone.now() - dt.timedelta(days=grace_days))
    majors = (
        Incident.objects.filter(Q(major=True) | Q(priority__lte=max_priority))
        .filter(resolved_at__gte=window.start, resolved_at__lt=cutoff)
        .exclude(status=Incident.Status.CANCELLED)
        .annotate(
            has_review=Case(
                When(post_incident_review="", then=Value(False)),
                default=Value(True),
                output_field=BooleanField(),
            )
        )
        .order_by("resolved_at", "pk")
        .values("pk", "number", "service_id", "priority", "major", "resolved_at", "has_review")
    )
    rows: list[dict[str, Any]] = [dict(row) for row in majors]
    progress(0, len(rows))
    unreviewed = [row["pk"] for row in rows if not row["has_review"]]
    by_finding = reviewed_by_finding(unreviewed)
    groups: dict[int | None, list[dict[str, Any]]] = {}
    for row in rows:
        row["reviewed"] = row["has_review"] or row["pk"] in by_finding
        groups.setdefault(row["service_id"], []).append(row)
    names = dict(Service.objects.filter(pk__in=[pk for pk in groups if pk]).values_list("pk", "name"))
    start, end = _dates(window)
    proposals = []
    for service_id, incidents in groups.items():
        missing = [row for row in incidents if not row["reviewed"]]
        if len(missing) < max(min_missing, 1):
            continue
        total = len(incidents)
        share = len(missing) / total
        service = names.get(service_id, "no service") if service_id else "no service"
        listed = ", ".join(row["number"] for row in missing[:LISTED])
        more = f" and {len(missing) - LISTED} more" if len(missing) > LISTED else ""
        critical = sum(1 for row in missing if row["priority"] == 1)
        impact = 5 if len(missing) >= 5 else 4 if critical else 3
        proposals.append(
            Proposal(
                detector=NAME,
                fingerprint=f"{NAME}:service={service_id or 'none'}",
                title=f"Post-incident reviews missing for {len(missing)} major incident(s) on {service}"[
                    :200
                ],
                explanation=(
                    f"{len(missing)} of {total} major incident(s) on {service} resolved "
                    f"between {when(start)} and "
                    f"{when(min(end, timezone.localtime(cutoff).date()))} have no post-incident review: "
                    f"{listed}{more}. "
                    f"A major incident is priority {max_priority} or more urgent, or flagged major; a review "
                    "counts when the incident's post-incident review is filled in or a post-incident review "
                    "finding was submitted for it. Incidents resolved in the last "
                    f"{grace_days:g} day(s) are not counted yet."
                ),
                score=len(missing) * share,
                magnitude=float(len(missing)),
                period_start=start,
                period_end=end,
                evidence=[
                    Evidence(kind="incident", pk=row["pk"], key=row["number"], role="no_review")
                    for row in missing
                ],
                figures={
                    "service": service,
                    "major_incidents": total,
                    "without_review": len(missing),
                    "critical_without_review": critical,
                    "share_without_review_percent": 100.0 * share,
                    "baseline": 100.0 * share,
                    "unit": "%",
                    "lower_is_better": True,
                    "indicator": f"Major incidents on {service} resolved without a post-incident review",
                    "max_priority": max_priority,
                    "grace_days": grace_days,
                },
                practice="incident",
                service_id=service_id,
                impact=impact,
                effort=2,
                rating_reason=(
                    f"Impact {impact}: "
                    + (
                        f"{len(missing)} unreviewed major incidents (5 or more rate 5)"
                        if impact == 5
                        else f"{critical} critical incident(s) among them"
                        if critical
                        else "major, not critical, incidents"
                    )
                    + "; a major incident nobody reviews tends to recur. Effort 2: a review is a meeting of "
                    "the people involved, and making it routine is one step in the major-incident procedure."
                ),
            )
        )
    progress(len(rows), len(rows))
    return proposals
