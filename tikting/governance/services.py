"""Every operation that changes governance records: review meetings and their minutes.

Each runs in a transaction, takes the acting user as keyword-only `actor` (None: the system),
checks that the actor is an improvement manager (permissions.can_manage), validates (raising
ValidationError naming the fields) and writes an audit row (tikting.core.audit.record).

Decision taken: a minute of kind accept / defer / reject on a new (or deferred) item *takes
effect*: it calls improvement.services.assess_item with the minute's text as the reason, so the
review's decision and the item's assessment cannot disagree. A minute of kind assign sets the
item's owner (improvement.services.update_item). Every other kind (note, continue, adjust,
escalate, close) is a decision recorded for the item's owner to act on: it changes nothing on
the item, so it neither closes it nor resets its staleness.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from tikting.accounts.models import Actor, Role, User
from tikting.core import audit
from tikting.improvement import choices as IC
from tikting.improvement import permissions as P
from tikting.improvement import services as improvement_services
from tikting.improvement.models import Item

from .models import ASSESSMENT_KINDS, Minute, MinuteKind, ReviewMeeting, ReviewStatus

MEETING_FIELDS = frozenset({"title", "scheduled_for", "chair", "notes"})
# Kinds whose minute is meaningless without words.
TEXT_REQUIRED = frozenset(
    {MinuteKind.NOTE, MinuteKind.DEFER, MinuteKind.REJECT, MinuteKind.ADJUST, MinuteKind.ESCALATE}
)
# Errors of assess_item, renamed to the minute's fields.
ASSESS_FIELD_NAMES = {"reason": "text", "decision": "kind"}


def _user(actor: Actor) -> User | None:
    return actor if isinstance(actor, User) and actor.pk else None


def default_title(day: dt.date | None = None) -> str:
    day = day or timezone.localdate()
    return f"Register review, {day:%B %Y}"


# --- Review meetings ----------------------------------------------------------------------------


@transaction.atomic
def create_review(
    *,
    actor: Actor,
    title: str = "",
    scheduled_for: dt.date | None = None,
    chair: User | None = None,
    notes: str = "",
) -> ReviewMeeting:
    """Plan a register review. Title defaults to "Register review, <month>", the chair to the actor.

    Records an audit row; raises PermissionDeniedError unless the actor manages the register.
    """
    P.check(actor, P.can_manage, what="plan register reviews")
    scheduled_for = scheduled_for or timezone.localdate()
    meeting = ReviewMeeting(
        title=(title or "").strip() or default_title(scheduled_for),
        scheduled_for=scheduled_for,
        chair=chair if chair is not None else _user(actor),
        notes=(notes or "").strip(),
        created_by=_user(actor),
    )
    meeting.full_clean()
    meeting.save()
    audit.record(meeting, action="create", actor=actor, changes=audit.diff({}, audit.snapshot(meeting)))
    return meeting


@transaction.atomic
def update_review(meeting: ReviewMeeting, *, actor: Actor, **changes: Any) -> ReviewMeeting:
    """Change a review's title, date, chair or notes. Audited; managers only."""
    P.check(actor, P.can_manage, what="edit register reviews")
    unknown = sorted(set(changes) - MEETING_FIELDS)
    if unknown:
        raise ValidationError(dict.fromkeys(unknown, "This field cannot be set here."))
    locked = ReviewMeeting.objects.select_for_update().get(pk=meeting.pk)
    before = audit.snapshot(locked)
    for name, value in changes.items():
        setattr(locked, name, value.strip() if isinstance(value, str) else value)
    if not locked.title:
        raise ValidationError({"title": "A review needs a title."})
    locked.full_clean()
    locked.save()
    diff = audit.diff(before, audit.snapshot(locked))
    diff.pop("updated_at", None)
    audit.record(locked, action="update", actor=actor, changes=diff)
    return locked


@transaction.atomic
def hold_review(meeting: ReviewMeeting, *, actor: Actor, notes: str | None = None) -> ReviewMeeting:
    """Mark a review as held (now). The next agenda lists items closed since this moment."""
    P.check(actor, P.can_manage, what="hold register reviews")
    locked = ReviewMeeting.objects.select_for_update().get(pk=meeting.pk)
    if locked.status == ReviewStatus.HELD:
        raise ValidationError({"status": f"'{locked}' was already held on {locked.held_at:%Y-%m-%d}."})
    before = audit.snapshot(locked)
    locked.status = ReviewStatus.HELD
    locked.held_at = timezone.now()
    if notes is not None:
        locked.notes = notes.strip()
    locked.save()
    diff = audit.diff(before, audit.snapshot(locked))
    diff.pop("updated_at", None)
    audit.record(locked, action="update", actor=actor, changes=diff, message="Review held")
    return locked


# --- Minutes ------------------------------------------------------------------------------------


@transaction.atomic
def record_minute(
    meeting: ReviewMeeting,
    *,
    actor: Actor,
    item: Item,
    kind: str,
    text: str = "",
    revisit_date: dt.date | None = None,
    owner: User | None = None,
) -> Minute:
    """Record a review's decision about one item, and let it take effect where it is an assessment
    (accept / defer / reject: improvement.services.assess_item) or an owner assignment (assign).

    Writes the minute and an audit row on the item's timeline (root = item). Raises
    PermissionDeniedError unless the actor manages the register; ValidationError naming `kind`,
    `text`, `revisit_date` or `owner` when the decision cannot be recorded (nothing is written then).
    """
    P.check(actor, P.can_manage, what="record review minutes")
    text = (text or "").strip()
    errors: dict[str, str] = {}
    if kind not in MinuteKind.values:
        errors["kind"] = f"Choose one of: {', '.join(MinuteKind.values)}."
    elif kind in TEXT_REQUIRED and not text:
        errors["text"] = f"Say why: a '{MinuteKind(kind).label}' minute needs text."
    if kind in ASSESSMENT_KINDS and item.status not in {IC.Status.NEW, IC.Status.DEFERRED}:
        errors["kind"] = (
            f"{item.ref} is {item.get_status_display()}: accept, defer and reject are assessment "
            "decisions for new or deferred items. Record continue, adjust, close or a note instead."
        )
    if kind == MinuteKind.ASSIGN:
        if owner is None:
            errors["owner"] = "Choose the new owner."
        elif not owner.has_role(Role.OWNER):
            errors["owner"] = f"{owner} is not an improvement owner."
        if not item.is_open:
            errors["kind"] = f"{item.ref} is {item.get_status_display()}: only open items get an owner."
    if errors:
        raise ValidationError(errors)

    effect = ""
    if kind in ASSESSMENT_KINDS:
        try:
            item = improvement_services.assess_item(
                item, actor=actor, decision=kind, reason=text, revisit_date=revisit_date, owner=owner
            )
        except ValidationError as exc:
            raise ValidationError(
                {ASSESS_FIELD_NAMES.get(f, f): msgs for f, msgs in exc.message_dict.items()}
            ) from exc
        effect = f"Assessed: {item.get_status_display()}"
        if kind == MinuteKind.DEFER:
            effect += f" until {revisit_date:%Y-%m-%d}"
    elif kind == MinuteKind.ASSIGN:
        item = improvement_services.update_item(item, actor=actor, owner=owner)
        effect = f"Owner: {owner}"

    minute = Minute.objects.create(
        meeting=meeting, item=item, kind=kind, text=text, effect=effect, actor=_user(actor)
    )
    audit.record(
        minute,
        action="create",
        actor=actor,
        root=item,
        changes={"kind": [None, kind], "text": [None, text], "meeting": [None, meeting.pk]},
        message=f"Review minute ({meeting}): {MinuteKind(kind).label}",
    )
    return minute
