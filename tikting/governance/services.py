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

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mass_mail
from django.db import transaction
from django.utils import timezone

from tikting.accounts.models import Actor, Role, User
from tikting.core import audit, events
from tikting.core.bounds import check_long_text
from tikting.core.exceptions import ConflictError
from tikting.improvement import choices as IC
from tikting.improvement import permissions as P
from tikting.improvement import services as improvement_services
from tikting.improvement.models import Item
from tikting.lib.display import when

from .agenda import closed_since, freeze_added_since_circulation, freeze_agenda
from .models import (
    ASSESSMENT_KINDS,
    DECISION_KINDS,
    MeetingAction,
    Minute,
    MinuteKind,
    ReviewMeeting,
    ReviewStatus,
)

MEETING_FIELDS = frozenset({"title", "scheduled_for", "start_time", "duration_minutes", "chair", "notes"})
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


def _locked(meeting: ReviewMeeting, expected_version: int | None = None) -> ReviewMeeting:
    locked = ReviewMeeting.objects.select_for_update().get(pk=meeting.pk)
    if expected_version is not None and locked.version != expected_version:
        raise ConflictError(locked, expected_version)
    return locked


def _save_meeting(
    locked: ReviewMeeting, before: dict[str, Any], *, actor: Actor, message: str = ""
) -> ReviewMeeting:
    """Validate and save a changed review, and record what changed (the frozen agenda is kept on
    the review itself, not copied into the audit trail)."""
    locked.version += 1
    locked.full_clean()
    locked.save()
    diff = audit.diff(before, audit.snapshot(locked))
    for kept_elsewhere in ("updated_at", "agenda", "version", "circulated_to"):
        diff.pop(kept_elsewhere, None)
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
    start_time: dt.time | None = None,
    duration_minutes: int | None = None,
) -> ReviewMeeting:
    """Plan a register review. Title defaults to "Register review, <month>", the chair to the actor.

    Records an audit row; raises PermissionDeniedError unless the actor manages the register.
    """
    P.check(actor, P.can_manage, what="plan register reviews")
    scheduled_for = scheduled_for or timezone.localdate()
    meeting = ReviewMeeting(
        title=(title or "").strip() or default_title(scheduled_for),
        scheduled_for=scheduled_for,
        start_time=start_time,
        duration_minutes=duration_minutes or 60,
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
def update_review(
    meeting: ReviewMeeting, *, actor: Actor, expected_version: int | None = None, **changes: Any
) -> ReviewMeeting:
    """Change a review's title, date and time, chair or notes until it is closed. Audited;
    managers only. ConflictError when it changed since `expected_version`."""
    P.check(actor, P.can_manage, what="edit register reviews")
    unknown = sorted(set(changes) - MEETING_FIELDS)
    if unknown:
        raise ValidationError(dict.fromkeys(unknown, "This field cannot be set here."))
    if changes.get("duration_minutes") is None:
        changes.pop("duration_minutes", None)
    locked = _locked(meeting, expected_version)
    _check_open(locked, "edit its details or notes")
    before = audit.snapshot(locked)
    for name, value in changes.items():
        setattr(locked, name, value.strip() if isinstance(value, str) else value)
    if not locked.title:
        raise ValidationError({"title": "A review needs a title."})
    return _save_meeting(locked, before, actor=actor)


@transaction.atomic
def hold_review(meeting: ReviewMeeting, *, actor: Actor, notes: str | None = None) -> ReviewMeeting:
    """Mark a review as held (now). A circulated agenda stays the agenda of record; the items that
    reached the agenda since the circulation are kept beside it ("added_since_circulation"). A
    review held without circulating freezes its agenda as the register stands at this moment.
    The next agenda lists items closed since then."""
    P.check(actor, P.can_manage, what="hold register reviews")
    locked = _locked(meeting)
    if not locked.is_upcoming:
        raise ValidationError({"status": f"'{locked}' was already held on {when(locked.held_at, 'date')}."})
    before = audit.snapshot(locked)
    now = timezone.now()
    if locked.is_circulated and locked.agenda:
        locked.agenda = {
            **locked.agenda,
            "added_since_circulation": freeze_added_since_circulation(locked, now=now),
        }
    else:
        since, _last = closed_since(now)
        locked.agenda = freeze_agenda(now=now, since=since)
    locked.status = ReviewStatus.HELD
    locked.held_at = now
    if notes is not None:
        locked.notes = notes.strip()
    return _save_meeting(locked, before, actor=actor, message="Review held")


# --- Attendance and the circulation of the agenda ----------------------------------------------


def _names(users: list[User]) -> list[str]:
    return sorted(str(u) for u in users)


@transaction.atomic
def set_attendance(
    meeting: ReviewMeeting,
    *,
    actor: Actor,
    attendees: list[User],
    apologies: list[User],
    expected_version: int | None = None,
) -> ReviewMeeting:
    """Record who attends (or attended) and who sent apologies, until the review is closed.
    Nobody is on both lists. Audited with the names before and after; managers only;
    ConflictError when the review changed since `expected_version`."""
    P.check(actor, P.can_manage, what="record who attends register reviews")
    locked = _locked(meeting, expected_version)
    _check_open(locked, "change who attended")
    both = _names([u for u in attendees if u in set(apologies)])
    if both:
        raise ValidationError(
            {"apologies": f"{', '.join(both)}: listed as attending and as sending apologies; choose one."}
        )
    inactive = _names([u for u in [*attendees, *apologies] if not u.is_active])
    if inactive:
        raise ValidationError({"attendees": f"{', '.join(inactive)}: no longer an active user."})
    before = {
        "attendees": _names(list(locked.attendees.all())),
        "apologies": _names(list(locked.apologies.all())),
    }
    after = {"attendees": _names(attendees), "apologies": _names(apologies)}
    changes = {k: [before[k], after[k]] for k in before if before[k] != after[k]}
    locked.attendees.set(attendees)
    locked.apologies.set(apologies)
    locked.version += 1
    locked.save(update_fields=["version", "updated_at"])
    if changes:
        audit.record(locked, action="update", actor=actor, changes=changes, message="Attendance recorded")
    return locked


def _circulation_text(meeting: ReviewMeeting, agenda: dict[str, Any], link: str) -> str:
    lines = [
        f"The agenda of {meeting}, {when(meeting.scheduled_for, 'date')}"
        + (f" at {meeting.start_time:%H:%M}" if meeting.start_time else "")
        + (f", chaired by {meeting.chair}" if meeting.chair else "")
        + ".",
        "",
    ]
    for section in agenda["sections"]:
        if not section["count"]:
            continue
        lines.append(f"{section['title']} ({section['count']})")
        lines.extend(f"  {row['ref']} {row['title']}: {row['why']}" for row in section["items"])
        if section["count"] > len(section["items"]):
            lines.append(f"  … and {section['count'] - len(section['items'])} more")
        lines.append("")
    for notice in agenda.get("notices", []):
        if notice["rows"]:
            lines.append(f"{notice['title']} ({notice['count']})")
            lines.extend(f"  {row['name']}: {row['summary']}" for row in notice["rows"])
            lines.append("")
    if link:
        lines.append(f"The circulated agenda: {link}")
    return "\n".join(lines)


@transaction.atomic
def circulate_agenda(meeting: ReviewMeeting, *, actor: Actor, link: str = "") -> ReviewMeeting:
    """Freeze the agenda as the register stands now and circulate it to the attendees (and the
    chair) before the meeting: planned → agenda circulated. Records when and to whom (names and
    addresses as they are now) and sends each a plain e-mail with the agenda (Django's e-mail
    framework, settings.EMAIL_BACKEND); a failed send is recorded (`emailed` false, the error in
    the history), not raised: the circulation stands and the agenda is readable on its page.
    Items added to the register afterwards are shown as added since circulation, never merged.
    Managers only."""
    P.check(actor, P.can_manage, what="circulate review agendas")
    locked = _locked(meeting)
    if not locked.is_planned:
        done = (
            f"its agenda was circulated on {when(locked.circulated_at)}"
            if locked.circulated_at
            else f"it was held on {when(locked.held_at, 'date')}"
        )
        raise ValidationError({"status": f"'{locked}' cannot be circulated again: {done}."})
    recipients = list(locked.attendees.order_by("first_name", "last_name", "username"))
    if not recipients:
        raise ValidationError({"attendees": "Record the attendees first: the agenda is circulated to them."})
    if locked.chair is not None and locked.chair not in recipients:
        recipients.insert(0, locked.chair)
    before = audit.snapshot(locked)
    now = timezone.now()
    since, _last = closed_since(now)
    agenda = freeze_agenda(now=now, since=since)
    subject = f"Agenda: {locked}"
    body = _circulation_text(locked, agenda, link)
    sender = getattr(settings, "DEFAULT_FROM_EMAIL", "")
    with_address = [u for u in recipients if u.email]
    mail_error = ""
    try:
        sent = send_mass_mail([(subject, body, sender, [u.email]) for u in with_address], fail_silently=False)
    except OSError as exc:  # smtplib's errors are OSErrors: no mail server, refused, timed out
        sent, mail_error = 0, f"{type(exc).__name__}: {exc}"
    emailed = {u.pk for u in with_address} if sent == len(with_address) else set()
    locked.agenda = agenda
    locked.status = ReviewStatus.CIRCULATED
    locked.circulated_at = now
    locked.circulated_to = [
        {"id": u.pk, "name": str(u), "email": u.email, "emailed": u.pk in emailed} for u in recipients
    ]
    message = f"Agenda circulated to {len(recipients)} ({len(emailed)} e-mailed)"
    if mail_error:
        message += f"; e-mail failed: {mail_error}"
    return _save_meeting(locked, before, actor=actor, message=message)


@transaction.atomic
def close_review(meeting: ReviewMeeting, *, actor: Actor) -> ReviewMeeting:
    """Close a held review: its minutes and notes are final from now on; a later change to a
    minute is an amendment (amend_minute). Managers only."""
    P.check(actor, P.can_manage, what="close register reviews")
    locked = _locked(meeting)
    if locked.is_upcoming:
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


# --- Action items: register actions or new register items ----------------------------------------


@transaction.atomic
def record_meeting_action(
    meeting: ReviewMeeting,
    *,
    actor: Actor,
    title: str,
    owner: User | None,
    due_date: dt.date | None,
    item: Item | None = None,
) -> MeetingAction:
    """An action item of the meeting, with an owner and a due date, put into the register: an
    Action of `item` (improvement.services.add_action: its rules and history apply) or, without
    an item, a new register item owned by `owner` with `due_date` as its target date
    (improvement.services.create_item: it starts as New, to be assessed). Until the review is
    closed; managers only. ValidationError naming `title`, `owner`, `due_date` or `item`."""
    P.check(actor, P.can_manage, what="record action items of register reviews")
    locked = _locked(meeting)
    _check_open(locked, "record action items")
    title = (title or "").strip()
    errors: dict[str, str] = {}
    if not title:
        errors["title"] = "Say what is to be done."
    elif len(title) > 200:
        errors["title"] = f"At most 200 characters ({len(title)} given)."
    if owner is None:
        errors["owner"] = "Choose who owns the action."
    elif not owner.is_active:
        errors["owner"] = f"{owner} is no longer an active user."
    if due_date is None:
        errors["due_date"] = "Give the due date."
    elif due_date < locked.scheduled_for:
        errors["due_date"] = (
            f"{when(due_date)} is before the meeting ({when(locked.scheduled_for, 'date')}): "
            "give a date on or after it."
        )
    if errors or due_date is None:  # (due_date: said in errors; repeated for the type checker)
        raise ValidationError(errors)
    note = f"Action item of {locked}"
    try:
        if item is not None:
            action = improvement_services.add_action(
                item, actor=actor, title=title, owner=owner, due_date=due_date
            )
            target = item
        else:
            action = None
            target = improvement_services.create_item(
                actor=actor, title=title, owner=owner, target_date=due_date, description=note + "."
            )
    except ValidationError as exc:
        fields = {"target_date": "due_date", "__all__": "item"}
        raise ValidationError({fields.get(f, f): msgs for f, msgs in exc.message_dict.items()}) from exc
    entry = MeetingAction(
        meeting=locked,
        title=title,
        owner=owner,
        due_date=due_date,
        item=target,
        action=action,
        raised_item=item is None,
        item_ref=target.ref,
        actor=_user(actor),
    )
    entry.full_clean()
    entry.save()
    what = f"action on {target.ref}" if action else f"new register item {target.ref}"
    audit.record(
        entry,
        action="create",
        actor=actor,
        root=locked,
        changes={
            "title": [None, title],
            "owner": [None, str(owner)],
            "due_date": [None, due_date.isoformat() if due_date else None],
            "item": [None, target.ref],
        },
        message=f"Action item recorded: {what}",
    )
    return entry
