"""Cadence endpoints (sprints, their board, time logs, reviews; capacity), mounted at
/api/cadence/ by tikting/api.py. Handlers parse input, call the cadence services with `actor=`
the authenticated user and render; PermissionDeniedError, ValidationError and ConflictError become
403, 422 and 409 at the API root (docs/api.md)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal, get_args

from django.db.models import Sum
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Field, Query, Router, Schema, Status

from tikting.accounts.models import Team, User
from tikting.accounts.requests import api_actor
from tikting.core.api import Date, DecimalIn, StrictBody, errors
from tikting.core.exceptions import PermissionDeniedError
from tikting.improvement.models import Item

from . import permissions as P
from . import services as S
from .capacity import capacity
from .models import Column, Decision, Disposition, Sprint, SprintItem

router = Router(tags=["cadence"])

MAX_ID = 2**63 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
ColumnValue = Literal["todo", "doing", "done"]
DecisionValue = Literal["continue", "adjust", "close"]
WhereValue = Literal["", "register", "next_sprint"]
# Written out for the type checker; the same values as the models' choices.
assert set(get_args(ColumnValue)) == set(Column.values)
assert set(get_args(DecisionValue)) == set(Decision.values)
assert set(get_args(WhereValue)) == {"", Disposition.REGISTER, Disposition.NEXT_SPRINT}


def _require(allowed: bool, what: str) -> None:
    if not allowed:
        raise PermissionDeniedError(f"You may not {what}.")


class CardOut(Schema):
    id: int
    item_id: int
    item_ref: str
    item_title: str
    column: str
    position: int
    planned_hours: Decimal
    hours_logged: Decimal
    decision: str
    disposition: str
    result: dict[str, Any]
    version: int


class SprintOut(Schema):
    id: int
    team_id: int
    team: str
    name: str
    goal: str
    start: Date
    end: Date
    status: str
    over_scope_reason: str
    what_changed: str
    version: int


class SprintDetailOut(SprintOut):
    cards: list[CardOut]


class SprintIn(StrictBody):
    team_id: Id
    name: str
    goal: str
    start: Date
    end: Date


class AddItemIn(StrictBody):
    item_id: Id
    planned_hours: DecimalIn = Decimal(0)
    over_scope_reason: str = ""


class VersionIn(StrictBody):
    expected_version: int | None = None


class MoveIn(StrictBody):
    column: ColumnValue
    position: Annotated[int, Field(ge=1)] | None = None
    expected_version: int | None = None


class TimeIn(StrictBody):
    hours: DecimalIn
    day: Date | None = None
    note: str = ""
    user_id: Id | None = None


class TimeOut(Schema):
    id: int
    card_id: int
    user_id: int
    logged_by_id: int | None
    day: Date
    hours: Decimal
    note: str


class DecisionIn(StrictBody):
    card_id: Id
    decision: DecisionValue
    disposition: WhereValue = ""
    note: str = ""


class ReviewIn(StrictBody):
    what_changed: str
    decisions: list[DecisionIn]
    next_sprint_id: Id | None = None
    expected_version: int | None = None


class MonthOut(Schema):
    month: Date
    planned_hours: Decimal
    logged_hours: Decimal
    kept: Decimal | None
    partial: str
    flagged: bool


class TeamCapacityOut(Schema):
    team_id: int
    team: str
    flagged: bool
    months: list[MonthOut]


def _sprint_out(sprint: Sprint) -> dict[str, Any]:
    return {
        "id": sprint.pk,
        "team_id": sprint.team_id,
        "team": sprint.team.name,
        "name": sprint.name,
        "goal": sprint.goal,
        "start": sprint.start,
        "end": sprint.end,
        "status": sprint.status,
        "over_scope_reason": sprint.over_scope_reason,
        "what_changed": sprint.what_changed,
        "version": sprint.version,
    }


def _detail(sprint_id: int) -> dict[str, Any]:
    sprint = get_object_or_404(Sprint.objects.select_related("team"), pk=sprint_id)
    cards = (
        sprint.cards.select_related("item")
        .annotate(logged=Sum("time_logs__hours"))
        .order_by("column", "position")
    )
    return {
        **_sprint_out(sprint),
        "cards": [
            {
                "id": c.pk,
                "item_id": c.item_id,
                "item_ref": c.item.ref,
                "item_title": c.item.title,
                "column": c.column,
                "position": c.position,
                "planned_hours": c.planned_hours,
                "hours_logged": c.logged or Decimal(0),  # type: ignore[attr-defined]
                "decision": c.decision,
                "disposition": c.disposition,
                "result": c.result,
                "version": c.version,
            }
            for c in cards
        ],
    }


@router.get("/sprints", response={200: list[SprintOut], **errors(403)}, summary="Sprints, newest first")
def list_sprints(request: HttpRequest, team_id: Id | None = None) -> list[dict[str, Any]]:
    _require(P.can_view(api_actor(request)), "read improvement sprints")
    sprints = Sprint.objects.select_related("team").order_by("-start", "-id")
    if team_id:
        sprints = sprints.filter(team_id=team_id)
    return [_sprint_out(s) for s in sprints]


@router.post("/sprints", response={201: SprintDetailOut, **errors(403, 422)}, summary="Plan a sprint")
def create_sprint(request: HttpRequest, payload: SprintIn) -> Status:
    actor = api_actor(request)
    _require(P.can_plan(actor), "plan improvement sprints")
    team = get_object_or_404(Team, pk=payload.team_id)
    sprint = S.create_sprint(
        actor=actor, team=team, name=payload.name, goal=payload.goal, start=payload.start, end=payload.end
    )
    return Status(201, _detail(sprint.pk))


@router.get(
    "/sprints/{sprint_id}",
    response={200: SprintDetailOut, **errors(403, 404)},
    summary="A sprint and its board",
)
def get_sprint(request: HttpRequest, sprint_id: Id) -> dict[str, Any]:
    _require(P.can_view(api_actor(request)), "read improvement sprints")
    return _detail(sprint_id)


@router.post(
    "/sprints/{sprint_id}/items",
    response={201: SprintDetailOut, **errors(403, 404, 422)},
    summary="Add a register item to the scope",
)
def add_item(request: HttpRequest, sprint_id: Id, payload: AddItemIn) -> Status:
    """Past TIKTING_SPRINT_MAX_ITEMS items, 422 on `over_scope_reason` until a reason is given."""
    actor = api_actor(request)
    sprint = get_object_or_404(Sprint, pk=sprint_id)
    item = get_object_or_404(Item, pk=payload.item_id)
    S.add_sprint_item(
        sprint,
        actor=actor,
        item=item,
        planned_hours=payload.planned_hours,
        over_scope_reason=payload.over_scope_reason,
    )
    return Status(201, _detail(sprint_id))


@router.post(
    "/sprints/{sprint_id}/start",
    response={200: SprintDetailOut, **errors(403, 404, 409, 422)},
    summary="Start",
)
def start_sprint(request: HttpRequest, sprint_id: Id, payload: VersionIn) -> dict[str, Any]:
    sprint = get_object_or_404(Sprint, pk=sprint_id)
    S.start_sprint(sprint, actor=api_actor(request), expected_version=payload.expected_version)
    return _detail(sprint_id)


@router.post(
    "/sprints/{sprint_id}/review",
    response={200: SprintDetailOut, **errors(403, 404, 409, 422)},
    summary="Hold the sprint review (closes the sprint)",
)
def review_sprint(request: HttpRequest, sprint_id: Id, payload: ReviewIn) -> dict[str, Any]:
    sprint = get_object_or_404(Sprint, pk=sprint_id)
    next_sprint = get_object_or_404(Sprint, pk=payload.next_sprint_id) if payload.next_sprint_id else None
    S.review_sprint(
        sprint,
        actor=api_actor(request),
        what_changed=payload.what_changed,
        decisions={
            d.card_id: {"decision": d.decision, "disposition": d.disposition, "note": d.note}
            for d in payload.decisions
        },
        next_sprint=next_sprint,
        expected_version=payload.expected_version,
    )
    return _detail(sprint_id)


@router.post(
    "/cards/{card_id}/move",
    response={200: SprintDetailOut, **errors(403, 404, 409, 422)},
    summary="Move a card",
)
def move_card(request: HttpRequest, card_id: Id, payload: MoveIn) -> dict[str, Any]:
    card = get_object_or_404(SprintItem.objects.select_related("sprint"), pk=card_id)
    S.move_card(
        card,
        actor=api_actor(request),
        column=payload.column,
        position=payload.position,
        expected_version=payload.expected_version,
    )
    return _detail(card.sprint_id)


@router.post("/cards/{card_id}/time", response={201: TimeOut, **errors(403, 404, 422)}, summary="Log hours")
def log_time(request: HttpRequest, card_id: Id, payload: TimeIn) -> Status:
    """Your own hours; `user_id` (managers only) logs someone else's."""
    card = get_object_or_404(SprintItem.objects.select_related("sprint", "item"), pk=card_id)
    user = get_object_or_404(User, pk=payload.user_id) if payload.user_id else None
    entry = S.log_time(
        card,
        actor=api_actor(request),
        hours=payload.hours,
        day=payload.day or timezone.localdate(),
        note=payload.note,
        user=user,
    )
    return Status(
        201,
        {
            "id": entry.pk,
            "card_id": card.pk,
            "user_id": entry.user_id,
            "logged_by_id": entry.logged_by_id,
            "day": entry.day,
            "hours": entry.hours,
            "note": entry.note,
        },
    )


@router.get("/capacity", response={200: list[TeamCapacityOut], **errors(403)}, summary="Protected capacity")
def get_capacity(
    request: HttpRequest, months: Annotated[int, Query(ge=1, le=36)] = 6
) -> list[dict[str, Any]]:
    """Per team and month: planned and logged improvement hours, unrounded (docs/cadence.md)."""
    _require(P.can_view(api_actor(request)), "read improvement capacity")
    return [
        {
            "team_id": row.team.pk,
            "team": row.team.name,
            "flagged": row.flagged,
            "months": [
                {
                    "month": m.month,
                    "planned_hours": m.planned,
                    "logged_hours": m.logged,
                    "kept": m.kept,
                    "partial": m.partial,
                    "flagged": m.flagged,
                }
                for m in row.months
            ],
        }
        for row in capacity(today=timezone.localdate(), months=months)
    ]
