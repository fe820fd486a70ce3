"""Every operation that changes governance records: review meetings and their minutes.

A review is a record. It is planned, then held: holding freezes the agenda as it stood
(agenda.freeze_agenda), and every minute keeps the item as it was when it was taken. Its minutes
stay editable until the review is closed; after that a change is an amendment, written beside the
minute it amends. An acceptance is recorded with its minute line; a manager undoes one with a
reason (an amendment of kind "unaccept", the item back to New).

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
from tikting.core import audit, events
from tikting.core.bounds import check_long_text
from tikting.improvement import choices as IC
from tikting.improvement import permissions as P
from tikting.improvement import services as improvement_services
from tikting.improvement.models import Item
from tikting.lib.display import when

from .agenda import closed_since, freeze_agenda
from .models import ASSESSMENT_KINDS, DECISION_KINDS, Minute, MinuteKind, ReviewMeeting, ReviewStatus

MEETING_FIELDS = frozenset({"title", "scheduled_for", "chair", "notes"})
# Kinds whose minute is meaningless without words.
# An acceptance is a decision of record too: it says why the item is worth the work.
TEXT_REQUIRED = frozenset(
    {
        MinuteKind.NOTE,
        MinuteKind.ACCEPT,
        MinuteKind.DEFER,
        MinuteKind.REJECT,
        MinuteKind.ADJUST,
        MinuteKind.ESCALATE,
    }
)
# Errors of assess_item, renamed to the minute's fields.
ASSESS_FIELD_NAMES = {"reason": "text", "decision": "kind"}


def _user(actor: Actor) -> User | None:
    return actor if isinstance(actor, User) and actor.pk else None


def _check_open(meeting: ReviewMeeting, what: str) -> None:
    """A closed review is final: refuse `what`, and say how to change its record."""
    if meeting.is_closed:
        closed = f" on {when(meeting.closed_at, 'date')}" if meeting.closed_at else ""
        raise ValidationError(
            {
                "status": f"'{meeting}' was closed{closed}: its record is final, so you cannot {what}. "
                "Record an amendment to a minute instead."
            }
        )


def _locked(meeting: ReviewMeeting) -> ReviewMeeting:
    return ReviewMeeting.objects.select_for_update().get(pk=meeting.pk)


def _save_meeting(
    locked: ReviewMeeting, before: dict[str, Any], *, actor: Actor, message: str = ""
) -> ReviewMeeting:
    """Validate and save a changed review, and record what changed (the frozen agenda is kept on
    the review itself, not copied into the audit trail)."""
    locked.full_clean()
    locked.save()
    diff = audit.diff(before, audit.snapshot(locked))
    diff.pop("updated_at", None)
    diff.pop("agenda", None)
    audit.record(locked, action="update", actor=actor, changes=diff, message=message)
    return locked


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
    events.emit(
        events.Kind.AGENDA_READY,
        meeting,
        actor=actor,
        summary=f"{meeting.title} on {when(meeting.scheduled_for)}: the agenda is ready"[:300],
        key=f"agenda_ready:{meeting.pk}",
    )
    return meeting


@transaction.atomic
def update_review(meeting: ReviewMeeting, *, actor: Actor, **changes: Any) -> ReviewMeeting:
    """Change a review's title, date, chair or notes until it is closed. Audited; managers only."""
    P.check(actor, P.can_manage, what="edit register reviews")
    unknown = sorted(set(changes) - MEETING_FIELDS)
    if unknown:
        raise ValidationError(dict.fromkeys(unknown, "This field cannot be set here."))
    locked = _locked(meeting)
    _check_open(locked, "edit its details or notes")
    before = audit.snapshot(locked)
    for name, value in changes.items():
        setattr(locked, name, value.strip() if isinstance(value, str) else value)
    if not locked.title:
        raise ValidationError({"title": "A review needs a title."})
    return _save_meeting(locked, before, actor=actor)


@transaction.atomic
def hold_review(meeting: ReviewMeeting, *, actor: Actor, notes: str | None = None) -> ReviewMeeting:
    """Mark a review as held (now) and freeze its agenda as the register stands at this moment
    (what was on the table, kept with the review). The next agenda lists items closed since then."""
    P.check(actor, P.can_manage, what="hold register reviews")
    locked = _locked(meeting)
    if not locked.is_planned:
        raise ValidationError({"status": f"'{locked}' was already held on {when(locked.held_at, 'date')}."})
    before = audit.snapshot(locked)
    now = timezone.now()
    since, _last = closed_since(now)
    locked.agenda = freeze_agenda(now=now, since=since)
    locked.status = ReviewStatus.HELD
    locked.held_at = now
    if notes is not None:
        locked.notes = notes.strip()
    return _save_meeting(locked, before, actor=actor, message="Review held")


@transaction.atomic
def close_review(meeting: ReviewMeeting, *, actor: Actor) -> ReviewMeeting:
    """Close a held review: its minutes and notes are final from now on; a later change to a
    minute is an amendment (amend_minute). Managers only."""
    P.check(actor, P.can_manage, what="close register reviews")
    locked = _locked(meeting)
    if locked.is_planned:
        raise ValidationError({"status": f"'{locked}' has not been held yet: mark it as held first."})
    _check_open(locked, "close it again")
    before = audit.snapshot(locked)
    locked.status = ReviewStatus.CLOSED
    locked.closed_at = timezone.now()
    return _save_meeting(locked, before, actor=actor, message="Review closed")


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
    meeting = _locked(meeting)  # as it is now: it may have been closed since it was read
    _check_open(meeting, "record new minutes")
    text = (text or "").strip()
    check_long_text(text=text)
    errors: dict[str, str] = {}
    if kind not in DECISION_KINDS:
        errors["kind"] = f"Choose one of: {', '.join(DECISION_KINDS)}."
    elif kind in TEXT_REQUIRED and not text:
        errors["text"] = f"Say why: a '{MinuteKind(kind).label}' minute needs a minute line."
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
            effect += f" until {when(revisit_date)}"
    elif kind == MinuteKind.ASSIGN:
        item = improvement_services.update_item(item, actor=actor, owner=owner)
        effect = f"Owner: {owner}"

    return _write_minute(meeting, actor=actor, item=item, kind=kind, text=text, effect=effect)


def _write_minute(
    meeting: ReviewMeeting,
    *,
    actor: Actor,
    item: Item,
    kind: str,
    text: str,
    effect: str = "",
    amends: Minute | None = None,
) -> Minute:
    """A minute with the item as it stands now (the record reads that, not today's register),
    and its audit row on the item's timeline."""
    item.refresh_from_db()
    minute = Minute(
        meeting=meeting,
        item=item,
        kind=kind,
        text=text,
        effect=effect,
        amends=amends,
        actor=_user(actor),
        item_ref=item.ref,
        item_title=item.title,
        item_status=item.status,
        item_owner=str(item.owner) if item.owner else "",
    )
    minute.full_clean()
    minute.save()
    audit.record(
        minute,
        action="create",
        actor=actor,
        root=item,
        changes={"kind": [None, kind], "text": [None, text], "meeting": [None, meeting.pk]},
        message=f"Review minute ({meeting}): {MinuteKind(kind).label}",
    )
    _announce_minute(minute, actor=actor)
    return minute


def _announce_minute(minute: Minute, *, actor: Actor) -> None:
    """The item's owner and followers hear of a decision about it, and people @mentioned in its
    words are told; an edit tells only people not told of this minute before (the key)."""
    events.emit(
        events.Kind.MINUTED,
        minute.item,
        actor=actor,
        summary=f"{minute.item_ref} {minute.item_title}: {MinuteKind(minute.kind).label} ({minute.meeting})"[
            :300
        ],
        text=minute.text,
        key=f"minute:{minute.amends_id or minute.pk}",
        data={"minute": minute.pk, "meeting": minute.meeting_id},
    )


@transaction.atomic
def edit_minute(minute: Minute, *, actor: Actor, text: str) -> Minute:
    """Correct a minute's words while its review is not closed (held reviews are tidied up after
    the meeting). Audited; managers only. A closed review's minutes are amended instead."""
    P.check(actor, P.can_manage, what="edit review minutes")
    locked = Minute.objects.select_for_update().select_related("meeting", "item").get(pk=minute.pk)
    _check_open(locked.meeting, "edit its minutes")
    text = (text or "").strip()
    if locked.kind in TEXT_REQUIRED and not text:
        raise ValidationError({"text": f"A '{locked.get_kind_display()}' minute needs a minute line."})
    before = audit.snapshot(locked)
    locked.text = text
    locked.full_clean()
    locked.save()
    audit.record(
        locked,
        action="update",
        actor=actor,
        root=locked.item,
        changes=audit.diff(before, audit.snapshot(locked)),
        message=f"Review minute edited ({locked.meeting})",
    )
    if before.get("text") != locked.text:
        _announce_minute(locked, actor=actor)
    return locked


@transaction.atomic
def amend_minute(minute: Minute, *, actor: Actor, text: str) -> Minute:
    """Amend a minute of a closed review: the minute stays as it was, the amendment is recorded
    beside it (who, when, what). Managers only; while the review is open, edit_minute."""
    P.check(actor, P.can_manage, what="amend review minutes")
    locked = Minute.objects.select_related("meeting", "item").get(pk=minute.pk)
    if not locked.meeting.is_closed:
        raise ValidationError(
            {"status": f"'{locked.meeting}' is not closed: edit the minute itself instead of amending it."}
        )
    if locked.amends_id:
        raise ValidationError({"text": "Amend the original minute, not an amendment."})
    text = (text or "").strip()
    if not text:
        raise ValidationError({"text": "Say what the amendment changes."})
    return _write_minute(
        locked.meeting, actor=actor, item=locked.item, kind=MinuteKind.AMEND, text=text, amends=locked
    )


@transaction.atomic
def undo_acceptance(minute: Minute, *, actor: Actor, reason: str) -> Minute:
    """Undo the acceptance a review recorded: the item goes back to New (improvement.services.
    undo_acceptance, which refuses once the item has moved past step 1), and the review's record
    gets an amendment of kind "unaccept" with the reason, beside the acceptance. Managers only."""
    P.check(actor, P.can_manage, what="undo acceptances")
    locked = Minute.objects.select_related("meeting", "item").get(pk=minute.pk)
    if locked.kind != MinuteKind.ACCEPT:
        raise ValidationError({"kind": f"This minute is a '{locked.get_kind_display()}', not an acceptance."})
    if locked.amendments.filter(kind=MinuteKind.UNACCEPT).exists():
        raise ValidationError({"kind": "This acceptance was already undone."})
    reason = (reason or "").strip()
    item = improvement_services.undo_acceptance(locked.item, actor=actor, reason=reason)
    return _write_minute(
        locked.meeting,
        actor=actor,
        item=item,
        kind=MinuteKind.UNACCEPT,
        text=reason,
        effect="Back to New: to assess again",
        amends=locked,
    )
