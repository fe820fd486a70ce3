"""Governance endpoints (review agenda, reviews and minutes, practice metrics), mounted at
/api/governance/ by tikting/api.py.

Handlers parse input, call the governance services with `actor=` the authenticated user and render.
Permission and rule errors are raised as PermissionDeniedError / ValidationError, which the API
root turns into 403 and 422 `{"detail": [{"field", "message"}]}` (the shapes listed below).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Literal

from django.core.exceptions import ValidationError
from django.db.models import Count
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Field, Query, Router, Schema, Status
from pydantic import Strict

from tikting.accounts.models import User
from tikting.cmdb.models import Service
from tikting.core.api import Date, ServiceBrief, StrictBody, UserBrief, errors
from tikting.core.exceptions import PermissionDeniedError
from tikting.improvement import choices as IC
from tikting.improvement import metrics as M
from tikting.improvement import permissions as P
from tikting.improvement.models import Item

from . import services as S
from .agenda import DEFAULT_LIMIT, SECTION_KEYS, build_agenda, closed_since
from .models import DECISION_KINDS, MeetingAction, Minute, MinuteKind, ReviewMeeting, ReviewStatus

router = Router(tags=["governance"])

MAX_ID = 2**63 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Time = Annotated[dt.time, Strict(False)]  # "09:30" (JSON has no time type)
KindValue = Literal[tuple(MinuteKind.values)]  # type: ignore[valid-type]
DecisionValue = Literal[tuple(str(k) for k in DECISION_KINDS)]  # type: ignore[valid-type]
SectionValue = Literal[SECTION_KEYS]  # type: ignore[valid-type]
PracticeValue = Literal[tuple(IC.Practice.values)]  # type: ignore[valid-type]


def _actor(request: HttpRequest):
    """The authenticated user: request.auth (token or session auth of the API root), else the session."""
    user = getattr(request, "auth", None)
    if not isinstance(user, User):
        user = getattr(request, "user", None)
    return user


def _require(allowed: bool, what: str) -> None:
    if not allowed:
        raise PermissionDeniedError(f"You may not {what}.")


# --- Schemas -------------------------------------------------------------------------------------


class AgendaItem(Schema):
    id: int
    ref: str
    title: str
    status: str
    practice: str
    service: ServiceBrief | None
    owner: UserBrief | None
    target_date: dt.date | None
    blocked: bool
    escalated_at: dt.datetime | None
    last_activity_at: dt.datetime
    revisit_date: dt.date | None
    outcome: str
    closed_at: dt.datetime | None
    url: str

    @staticmethod
    def resolve_url(obj: Item) -> str:
        return f"/register/{obj.pk}/"


class AgendaSection(Schema):
    key: SectionValue  # type: ignore[valid-type]
    title: str
    help: str
    count: int = Field(description="All items in the section")
    register_url: str = Field(description="The register list filtered to this section")
    items: list[AgendaItem] = Field(description="The first `limit` items")


class ReviewBrief(Schema):
    id: int
    title: str
    scheduled_for: dt.date
    start_time: dt.time | None = Field(
        description="In the server's time zone (TIKTING_TIME_ZONE); null: the day"
    )
    duration_minutes: int
    status: Literal[tuple(ReviewStatus.values)]  # type: ignore[valid-type]
    chair: UserBrief | None
    held_at: dt.datetime | None


class Recipient(Schema):
    id: int
    name: str = Field(description="As they were named when the agenda was circulated")
    email: str
    emailed: bool = Field(description="The e-mail with the agenda was handed to the mail server")


class ReviewOut(ReviewBrief):
    closed_at: dt.datetime | None = Field(description="Closed: the minutes are final, changes are amendments")
    circulated_at: dt.datetime | None = Field(description="When the frozen agenda was circulated")
    circulated_to: list[Recipient]
    notes: str
    minute_count: int
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime


class ItemBrief(Schema):
    id: int
    ref: str
    title: str
    status: str


class MinuteOut(Schema):
    id: int
    meeting_id: int
    item: ItemBrief
    kind: KindValue  # type: ignore[valid-type]
    text: str
    effect: str = Field(description="What the decision changed on the item; empty when nothing")
    amends_id: int | None = Field(description="The minute this one amends (amend, unaccept)")
    item_ref: str = Field(description="The item's reference when the minute was taken")
    item_title: str = Field(description="The item's title when the minute was taken")
    item_status: str = Field(description="The item's status when the minute was taken")
    item_owner: str = Field(description="The item's owner when the minute was taken")
    actor: UserBrief | None
    at: dt.datetime


class FrozenRow(Schema):
    id: int
    ref: str
    title: str
    status: str
    status_label: str
    owner: str
    service: str
    practice: str
    target_date: str
    why: str = Field(description="Why the item was on the agenda, in words")


class FrozenSection(Schema):
    key: str
    title: str
    help: str
    count: int
    items: list[FrozenRow]


class TrendPointOut(Schema):
    label: str
    value: str
    flagged: bool
    partial: str


class NoticeRowOut(Schema):
    name: str
    url: str
    summary: str
    trend: list[TrendPointOut]


class NoticeOut(Schema):
    key: str = Field(description="'capacity': teams whose improvement time was eaten by operations")
    title: str
    help: str
    count: int
    covers: str
    rows: list[NoticeRowOut]


class FrozenAgenda(Schema):
    generated_at: dt.datetime
    closed_since: dt.datetime
    sections: list[FrozenSection]
    notices: list[NoticeOut] = Field([], description="Sections other apps add (capacity flags)")
    added_since_circulation: list[FrozenSection] | None = Field(
        None, description="Held after circulating: items that reached the agenda since, kept beside it"
    )


class MeetingActionOut(Schema):
    id: int
    title: str
    owner: UserBrief | None
    due_date: dt.date
    item: ItemBrief | None = Field(description="The item it is on, or the item it raised")
    action_id: int | None = Field(description="The register action (null when it raised a new item)")
    raised_item: bool
    item_ref: str
    state: str = Field(
        description="open, overdue, done, cancelled (an action); open, closed (a raised item); gone"
    )
    state_label: str
    actor: UserBrief | None
    at: dt.datetime

    @staticmethod
    def resolve_state(obj: MeetingAction) -> str:
        return obj.state()[0]

    @staticmethod
    def resolve_state_label(obj: MeetingAction) -> str:
        return obj.state()[1]


class ReviewDetail(ReviewOut):
    attendees: list[UserBrief]
    apologies: list[UserBrief]
    minutes: list[MinuteOut]
    action_items: list[MeetingActionOut]
    agenda: FrozenAgenda | None = Field(
        description="The agenda as circulated (or, if never circulated, as held); null while planned"
    )

    @staticmethod
    def resolve_minutes(obj: ReviewMeeting) -> list[Minute]:
        return obj.minutes_list  # type: ignore[attr-defined]  # set by get_review, item and actor joined in

    @staticmethod
    def resolve_attendees(obj: ReviewMeeting) -> list[User]:
        return list(obj.attendees.order_by("first_name", "last_name", "username"))

    @staticmethod
    def resolve_apologies(obj: ReviewMeeting) -> list[User]:
        return list(obj.apologies.order_by("first_name", "last_name", "username"))

    @staticmethod
    def resolve_action_items(obj: ReviewMeeting) -> list[MeetingAction]:
        return list(obj.action_items.select_related("owner", "item", "action", "actor").order_by("at", "id"))


class AgendaOut(Schema):
    generated_at: dt.datetime
    closed_since: dt.datetime = Field(description="'closed' lists items closed since then")
    sections: list[AgendaSection]


class ReviewIn(StrictBody):
    title: str = Field("", max_length=200, description="Empty: 'Register review, <month>'")
    scheduled_for: Date | None = Field(None, description="Empty: today")
    start_time: Time | None = Field(None, description="HH:MM in the server's time zone; empty: the day")
    duration_minutes: int = Field(60, ge=5, le=600)
    chair_id: Id | None = Field(None, description="Empty: the caller")
    notes: str = ""


class AttendanceIn(StrictBody):
    attendees: list[Id] = Field(description="User ids of those attending")
    apologies: list[Id] = Field(description="User ids of those who sent apologies")
    expected_version: int | None = Field(None, description="The review's version as read (409 when stale)")


class MeetingActionIn(StrictBody):
    title: str = Field(description="What is to be done")
    owner_id: Id
    due_date: Date
    item_id: Id | None = Field(None, description="An action on this item; empty: a new register item")


class MinuteIn(StrictBody):
    item_id: Id
    kind: DecisionValue  # type: ignore[valid-type]
    text: str = Field(
        "", description="The minute line; required for accept, note, defer, reject, adjust, escalate"
    )
    revisit_date: Date | None = Field(None, description="Defer: when to revisit (future date)")
    owner_id: Id | None = Field(None, description="Assign (required) or accept (optional): the owner")


class MetricsQuery(Schema):
    practice: PracticeValue | None = None  # type: ignore[valid-type]
    service: Id | None = None
    start: Date | None = Field(None, description="Window start (inclusive, local date)")
    end: Date | None = Field(None, description="Window end (inclusive, local date)")


class Totals(Schema):
    total: int
    open: int
    closed: int
    rejected: int
    deferred: int


class OnTime(Schema):
    closed: int
    with_target_date: int = Field(description="Closed items with a target date")
    on_time: int
    late: int
    open_past_target: int = Field(description="Open items whose target date has passed: missed")
    missed: int = Field(description="late + open_past_target")
    without_target_date: int
    percent: float | None = Field(
        description="on_time / (with_target_date + open_past_target) × 100, unrounded; null when 0 / 0"
    )


class CycleTime(Schema):
    count: int
    mean_days: float | None
    median_days: float | None


class ClosedItemOutcome(Schema):
    pk: int
    ref: str
    title: str
    outcome: str
    benefit_category: str
    realised_delta: str | None
    closed_at: dt.datetime


class Outcomes(Schema):
    by_outcome: dict[str, int]
    by_benefit: dict[str, int]
    with_delta: int
    items: list[ClosedItemOutcome]


class SustainmentOut(Schema):
    holding: int
    sustained: int
    slipped: int
    not_watched: int
    slipped_share: float | None


class MonthRow(Schema):
    month: str = Field(description="YYYY-MM")
    created: int
    closed: int


class Flags(Schema):
    open: int
    stale: int
    overdue: int
    due_soon: int
    blocked: int
    escalated: int


class PracticeMetrics(Schema):
    totals: Totals
    by_status: dict[str, int]
    by_quadrant: dict[str, int]
    closed_on_time: OnTime
    cycle_time: CycleTime
    outcomes: Outcomes
    sustainment: SustainmentOut
    created_vs_closed: list[MonthRow]
    flags: Flags


# --- Routes --------------------------------------------------------------------------------------


@router.get("/agenda", response={200: AgendaOut, **errors(403, 422)}, summary="The review agenda")
def get_agenda(
    request: HttpRequest,
    limit: Annotated[int, Query(ge=1, le=200)] = DEFAULT_LIMIT,
    section: SectionValue | None = None,  # type: ignore[valid-type]
):
    """Sections generated from the register: count and first `limit` items of each."""
    user = _actor(request)
    _require(P.can_view(user), "read the review agenda")
    now = timezone.now()
    since, _ = closed_since(now)
    sections = build_agenda(user, now=now, limit=limit, only=section, since=since)
    return {"generated_at": now, "closed_since": since, "sections": sections}


def _reviews():
    return ReviewMeeting.objects.select_related("chair").annotate(minute_count=Count("minutes"))


@router.get("/reviews", response={200: list[ReviewOut], **errors(403)}, summary="List reviews")
def list_reviews(request: HttpRequest):
    _require(P.can_view(_actor(request)), "read register reviews")
    return _reviews().order_by("-scheduled_for", "-id")


def _user_or_error(pk: int | None, field: str) -> User | None:
    if pk is None:
        return None
    user = User.objects.filter(pk=pk, is_active=True).first()
    if user is None:
        raise ValidationError({field: f"No active user with id {pk}."})
    return user


@router.post("/reviews", response={201: ReviewOut, **errors(403, 422)}, summary="Plan a review")
def create_review(request: HttpRequest, payload: ReviewIn):
    actor = _actor(request)
    _require(P.can_manage(actor), "plan register reviews")
    meeting = S.create_review(
        actor=actor,
        title=payload.title,
        scheduled_for=payload.scheduled_for,
        chair=_user_or_error(payload.chair_id, "chair_id"),
        notes=payload.notes,
        start_time=payload.start_time,
        duration_minutes=payload.duration_minutes,
    )
    return Status(201, _reviews().get(pk=meeting.pk))


def _minutes():
    return Minute.objects.select_related("item", "actor")


@router.get("/reviews/{review_id}", response={200: ReviewDetail, **errors(403, 404)}, summary="Get a review")
def get_review(request: HttpRequest, review_id: Id):
    _require(P.can_view(_actor(request)), "read register reviews")
    return _review_detail(review_id)


@router.post(
    "/reviews/{review_id}/minutes",
    response={201: MinuteOut, **errors(403, 404, 422)},
    summary="Record a decision",
)
def create_minute(request: HttpRequest, review_id: Id, payload: MinuteIn):
    """accept / defer / reject assess a new or deferred item; assign sets its owner; other kinds are
    recorded for the owner to act on."""
    actor = _actor(request)
    _require(P.can_manage(actor), "record review minutes")
    meeting = get_object_or_404(ReviewMeeting, pk=review_id)
    item = Item.objects.visible_to(actor).filter(pk=payload.item_id).first()
    if item is None:
        raise ValidationError({"item_id": f"No item with id {payload.item_id}."})
    owner = _user_or_error(payload.owner_id, "owner_id")
    try:
        minute = S.record_minute(
            meeting,
            actor=actor,
            item=item,
            kind=payload.kind,
            text=payload.text,
            revisit_date=payload.revisit_date,
            owner=owner,
        )
    except ValidationError as exc:
        # The API names the owner `owner_id`.
        raise ValidationError(
            {("owner_id" if f == "owner" else f): msgs for f, msgs in exc.message_dict.items()}
        ) from exc
    return Status(201, _minutes().get(pk=minute.pk))


class MinuteTextIn(StrictBody):
    text: str = Field(description="The minute's words (edit) or what the amendment changes (amend)")


class UndoAcceptanceIn(StrictBody):
    reason: str = Field(description="Why the acceptance is undone (kept with the review and the item)")


def _review_detail(review_id: int) -> ReviewMeeting:
    meeting = get_object_or_404(_reviews(), pk=review_id)
    meeting.minutes_list = list(_minutes().filter(meeting=meeting).order_by("at", "id"))
    return meeting


@router.post(
    "/reviews/{review_id}/hold",
    response={200: ReviewDetail, **errors(403, 404, 422)},
    summary="Mark a review as held",
)
def hold_review(request: HttpRequest, review_id: Id):
    """The agenda is frozen as it stands now and kept with the review."""
    return _review_step(request, review_id, S.hold_review, "hold register reviews")


def _review_step(
    request: HttpRequest, review_id: int, step: Callable[..., ReviewMeeting], what: str
) -> ReviewMeeting:
    actor = _actor(request)
    _require(P.can_manage(actor), what)
    step(get_object_or_404(ReviewMeeting, pk=review_id), actor=actor)
    return _review_detail(review_id)


@router.post(
    "/reviews/{review_id}/close",
    response={200: ReviewDetail, **errors(403, 404, 422)},
    summary="Close a held review",
)
def close_review(request: HttpRequest, review_id: Id):
    """Its minutes are final from now on: later changes are amendments."""
    return _review_step(request, review_id, S.close_review, "close register reviews")


def _get_minute(review_id: int, minute_id: int) -> Minute:
    return get_object_or_404(
        Minute.objects.select_related("meeting", "item"), pk=minute_id, meeting_id=review_id
    )


@router.patch(
    "/reviews/{review_id}/minutes/{minute_id}",
    response={200: MinuteOut, **errors(403, 404, 422)},
    summary="Correct a minute",
)
def edit_minute(request: HttpRequest, review_id: Id, minute_id: Id, payload: MinuteTextIn):
    """Until the review is closed; after, record an amendment."""
    actor = _actor(request)
    _require(P.can_manage(actor), "edit review minutes")
    minute = S.edit_minute(_get_minute(review_id, minute_id), actor=actor, text=payload.text)
    return _minutes().get(pk=minute.pk)


@router.post(
    "/reviews/{review_id}/minutes/{minute_id}/amendments",
    response={201: MinuteOut, **errors(403, 404, 422)},
    summary="Amend a minute of a closed review",
)
def amend_minute(request: HttpRequest, review_id: Id, minute_id: Id, payload: MinuteTextIn):
    actor = _actor(request)
    _require(P.can_manage(actor), "amend review minutes")
    minute = S.amend_minute(_get_minute(review_id, minute_id), actor=actor, text=payload.text)
    return Status(201, _minutes().get(pk=minute.pk))


@router.post(
    "/reviews/{review_id}/minutes/{minute_id}/undo-acceptance",
    response={201: MinuteOut, **errors(403, 404, 422)},
    summary="Undo an acceptance",
)
def undo_acceptance(request: HttpRequest, review_id: Id, minute_id: Id, payload: UndoAcceptanceIn):
    """The item goes back to New (while still at step 1); the undoing is recorded as an
    amendment of the acceptance, with the reason."""
    actor = _actor(request)
    _require(P.can_manage(actor), "undo acceptances")
    minute = S.undo_acceptance(_get_minute(review_id, minute_id), actor=actor, reason=payload.reason)
    return Status(201, _minutes().get(pk=minute.pk))


def _users_or_error(ids: list[int], field: str) -> list[User]:
    users = list(User.objects.filter(pk__in=ids, is_active=True))
    missing = sorted(set(ids) - {u.pk for u in users})
    if missing:
        raise ValidationError({field: f"No active user with id {', '.join(map(str, missing))}."})
    return users


@router.put(
    "/reviews/{review_id}/attendance",
    response={200: ReviewDetail, **errors(403, 404, 409, 422)},
    summary="Record attendees and apologies",
)
def set_attendance(request: HttpRequest, review_id: Id, payload: AttendanceIn):
    """Replaces both lists; until the review is closed."""
    actor = _actor(request)
    _require(P.can_manage(actor), "record who attends register reviews")
    S.set_attendance(
        get_object_or_404(ReviewMeeting, pk=review_id),
        actor=actor,
        attendees=_users_or_error(payload.attendees, "attendees"),
        apologies=_users_or_error(payload.apologies, "apologies"),
        expected_version=payload.expected_version,
    )
    return _review_detail(review_id)


@router.post(
    "/reviews/{review_id}/circulate",
    response={200: ReviewDetail, **errors(403, 404, 422)},
    summary="Freeze and circulate the agenda",
)
def circulate_agenda(request: HttpRequest, review_id: Id):
    """planned → agenda circulated: the agenda is frozen now and sent to the attendees and the
    chair; items submitted later are listed as added since circulation when it is held."""
    actor = _actor(request)
    _require(P.can_manage(actor), "circulate review agendas")
    meeting = get_object_or_404(ReviewMeeting, pk=review_id)
    link = request.build_absolute_uri(f"/governance/reviews/{meeting.pk}/print/")
    S.circulate_agenda(meeting, actor=actor, link=link)
    return _review_detail(review_id)


@router.post(
    "/reviews/{review_id}/actions",
    response={201: MeetingActionOut, **errors(403, 404, 422)},
    summary="Record an action item",
)
def create_action_item(request: HttpRequest, review_id: Id, payload: MeetingActionIn):
    """With `item_id`: an action on that register item; without: a new register item (New, owned
    by the owner, the due date as its target date)."""
    actor = _actor(request)
    _require(P.can_manage(actor), "record action items of register reviews")
    meeting = get_object_or_404(ReviewMeeting, pk=review_id)
    item = None
    if payload.item_id is not None:
        item = Item.objects.visible_to(actor).filter(pk=payload.item_id).first()
        if item is None:
            raise ValidationError({"item_id": f"No item with id {payload.item_id}."})
    try:
        entry = S.record_meeting_action(
            meeting,
            actor=actor,
            title=payload.title,
            owner=_user_or_error(payload.owner_id, "owner_id"),
            due_date=payload.due_date,
            item=item,
        )
    except ValidationError as exc:
        names = {"owner": "owner_id", "item": "item_id"}
        raise ValidationError({names.get(f, f): msgs for f, msgs in exc.message_dict.items()}) from exc
    return Status(
        201, MeetingAction.objects.select_related("owner", "item", "action", "actor").get(pk=entry.pk)
    )


@router.get(
    "/practice-metrics",
    response={200: PracticeMetrics, **errors(403, 422)},
    summary="The practice's own metrics",
)
def practice_metrics(request: HttpRequest, filters: Query[MetricsQuery]):
    """Definitions in docs/metrics.md. Closure metrics use the window on the closure date, stock
    counts on the identification date; `flags` are as of now."""
    _require(P.can_view(_actor(request)), "read the practice metrics")
    if filters.service is not None and not Service.objects.filter(pk=filters.service).exists():
        raise ValidationError({"service": f"No service with id {filters.service}."})
    if filters.start and filters.end and filters.start > filters.end:
        raise ValidationError({"end": "The end of the window comes before its start."})
    result = M.practice_metrics(
        practice=filters.practice, service=filters.service, start=filters.start, end=filters.end
    )
    for row in result["outcomes"]["items"]:
        if row["realised_delta"] is not None:
            row["realised_delta"] = format(row["realised_delta"], "f")
    return result
