"""Output schemas and the value types every schema shares (choice enums, ids, decimals as text)."""

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

from ninja import Field, Schema
from pydantic import BeforeValidator

from tikting.accounts.models import Role
from tikting.core.api import ServiceBrief, UserBrief
from tikting.lib import display

from .. import choices as C
from .. import filtersets
from ..models import Action, Comment, Indicator, Item, Measurement

MAX_ID = 2**63 - 1  # ids beyond a bigint are not ids (and would overflow some database drivers)


def _literal(values: list[str] | tuple[str, ...], *, blank: bool = False) -> Any:
    """A Literal type of choice values, so the OpenAPI schema lists them as an enum."""
    return Literal[tuple(values) + (("",) if blank else ())]  # type: ignore[valid-type]


# Built from the choices at run time, these types are values to mypy: every annotation that uses
# one carries `type: ignore[valid-type]`.
PracticeValue = _literal(C.Practice.values)
PracticeOrBlank = _literal(C.Practice.values, blank=True)
StatusValue = _literal(C.Status.values)
StepValue = _literal([str(s) for s in C.STEPS])
QuadrantValue = _literal(C.Quadrant.values)
ChannelValue = _literal(C.SourceChannel.values)
JustificationValue = _literal(C.JustificationType.values)
DecisionValue = _literal(C.Decision.values)
DirectionValue = _literal(C.Direction.values)
IndicatorRoleValue = _literal(C.IndicatorRole.values)
EvaluationOrBlank = _literal(C.EvaluationResult.values, blank=True)
OutcomeValue = _literal(C.Outcome.values)
OutcomeOrBlank = _literal(C.Outcome.values, blank=True)
BenefitOrBlank = _literal(C.BenefitCategory.values, blank=True)
SustainmentValue = _literal(C.Sustainment.values)
MeasurementSourceValue = _literal(Measurement.Source.values)
SortValue = _literal([*filtersets.SORTS, *(f"-{key}" for key in filtersets.SORTS)])
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


def _decimal_text(value: Any) -> Any:
    """Decimals are returned as strings without exponent or trailing zeros ("10", "2.5")."""
    if isinstance(value, Decimal):
        return display.number(value)
    return value


DecimalText = Annotated[str, BeforeValidator(_decimal_text)]


# --- Output schemas -----------------------------------------------------------------------------


class UserOut(UserBrief):
    role: _literal(Role.values)  # type: ignore[valid-type]


class ServiceOut(ServiceBrief):
    description: str
    criticality: int = Field(description="1 low, 2 medium, 3 high, 4 critical")
    active: bool


class ItemBrief(Schema):
    id: int
    ref: str
    title: str
    status: StatusValue  # type: ignore[valid-type]


class ItemOut(Schema):
    """An item as listed: enough to show a row of the register."""

    id: int
    ref: str = Field(description="Human reference, CI-00042")
    title: str
    status: StatusValue  # type: ignore[valid-type]
    step_number: int | None = Field(None, description="1..7 in the 7-step model, null outside it")
    practice: PracticeOrBlank  # type: ignore[valid-type]
    service: ServiceBrief | None
    owner: UserBrief | None
    impact: int
    effort: int
    quadrant: QuadrantValue  # type: ignore[valid-type]
    priority_score: int
    rank: int | None
    target_date: dt.date | None
    source_channel: ChannelValue  # type: ignore[valid-type]
    parent_id: int | None
    blocked: bool
    flags: list[str] = Field(description="blocked, overdue, due soon, stale, slipped")
    identified_at: dt.datetime
    last_activity_at: dt.datetime
    version: int

    @staticmethod
    def resolve_flags(obj: Item) -> list[str]:
        return obj.flags()


class GapOut(Schema):
    key: str
    message: str


class TransitionOut(Schema):
    to: StepValue  # type: ignore[valid-type]
    label: str
    forward: bool
    gaps: list[GapOut] = Field(description="What the item lacks to make this move (empty: allowed)")


class IndicatorOut(Schema):
    id: int
    item_id: int
    name: str
    unit: str
    direction: DirectionValue  # type: ignore[valid-type]
    role: IndicatorRoleValue  # type: ignore[valid-type]
    baseline_value: DecimalText | None
    baseline_date: dt.date | None
    baseline_method: str
    target_value: DecimalText | None
    target_date: dt.date | None
    min_value: DecimalText | None = Field(description="Lowest value it takes (baseline, target, measures)")
    max_value: DecimalText | None = Field(description="Highest value it takes; null: no upper bound")
    metric_key: str
    metric_scope: dict[str, Any]
    owner: UserBrief | None = Field(None, description="Who records its measurements besides the item's owner")
    latest_value: DecimalText | None = None
    latest_measured_at: dt.datetime | None = None
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime


class MeasurementOut(Schema):
    id: int
    indicator_id: int
    value: DecimalText
    measured_at: dt.datetime
    note: str
    source: MeasurementSourceValue  # type: ignore[valid-type]
    recorded_by: UserBrief | None
    created_at: dt.datetime


class ActionOut(Schema):
    id: int
    item_id: int
    title: str
    owner: UserBrief | None
    due_date: dt.date | None
    done: bool
    done_at: dt.datetime | None
    cancelled: bool = Field(description="Will not be done (cancel_reason says why)")
    cancel_reason: str
    cancelled_at: dt.datetime | None
    overdue: bool
    created_at: dt.datetime
    version: int

    @staticmethod
    def resolve_overdue(obj: Action) -> bool:
        return obj.is_overdue()


class CommentOut(Schema):
    id: int
    item_id: int
    author: UserBrief | None
    kind: _literal(Comment.Kind.values)  # type: ignore[valid-type]
    body: str
    created_at: dt.datetime


class ItemDetail(ItemOut):
    """An item with everything its page shows: indicators, actions, gaps, lineage."""

    description: str
    justification: str
    justification_type: JustificationValue  # type: ignore[valid-type]
    vision: str
    expected_outcome: str
    review_milestone: str
    source_reference: str
    external_id: str | None
    parent: ItemBrief | None
    children: list[ItemBrief]
    submitted_by: UserBrief | None
    status_changed_at: dt.datetime
    blocker: str
    blocked_since: dt.datetime | None
    escalated_at: dt.datetime | None
    assessment_reason: str
    revisit_date: dt.date | None
    assessed_by: UserBrief | None
    assessed_at: dt.datetime | None
    evaluation_result: EvaluationOrBlank  # type: ignore[valid-type]
    evaluation_note: str
    evaluated_at: dt.datetime | None
    outcome: OutcomeOrBlank  # type: ignore[valid-type]
    benefit_category: BenefitOrBlank  # type: ignore[valid-type]
    realised_delta: DecimalText | None
    realised_delta_unit: str = Field(description="The unit of the indicator the delta is measured on")
    realised_delta_moved: Literal["toward", "away", "none", ""] = Field(
        description="Did the delta move toward the target, away from it, or not at all ('' without one)"
    )
    lessons: str
    closed_at: dt.datetime | None
    control_until: dt.date | None
    sustainment: SustainmentValue  # type: ignore[valid-type]
    slipped_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    readiness_gaps: list[GapOut] = Field(
        description="Missing before the item is ready to act on (owner, target date, baseline, target)"
    )
    transitions: list[TransitionOut] = Field(description="Step moves allowed from the current status")
    indicators: list[IndicatorOut]
    actions: list[ActionOut]

    @staticmethod
    def resolve_children(obj: Item) -> list[Item]:
        return list(obj.children.all())

    @staticmethod
    def resolve_realised_delta_unit(obj: Item) -> str:
        summary = obj.delta_summary()
        return summary["unit"] if summary else ""

    @staticmethod
    def resolve_realised_delta_moved(obj: Item) -> str:
        summary = obj.delta_summary()
        return summary["moved"] if summary else ""

    @staticmethod
    def resolve_readiness_gaps(obj: Item) -> list[dict[str, str]]:
        return _gaps(obj, obj.readiness_gaps())

    @staticmethod
    def resolve_transitions(obj: Item) -> list[dict[str, Any]]:
        result = []
        for to in sorted(C.TRANSITIONS.get(obj.status, ()), key=C.STEPS.index):
            forward = C.STEPS.index(to) > C.STEPS.index(obj.status)
            result.append(
                {
                    "to": str(to),
                    "label": str(C.Status(to).label),
                    "forward": forward,
                    "gaps": _gaps(obj, obj.gaps_for(to, back=not forward)),
                }
            )
        return result

    @staticmethod
    def resolve_indicators(obj: Item) -> list[Indicator]:
        return list(obj.indicators.all())

    @staticmethod
    def resolve_actions(obj: Item) -> list[Action]:
        return list(obj.actions.all())


def _gaps(item: Item, keys: list[str]) -> list[dict[str, str]]:
    """Gaps with the words the UI shows (what is missing, the actions concerned, what to do)."""
    return [{"key": key, "message": item.explain_gap(key)} for key in keys]


class ChangeOut(Schema):
    field: str
    old: Any = None
    new: Any = None


class HistoryOut(Schema):
    id: int
    at: dt.datetime
    actor: UserBrief | None
    action: _literal(["create", "update", "delete"])  # type: ignore[valid-type]
    object_type: str = Field(description="item, indicator, measurement, action, sourcelink …")
    object_id: str
    object_repr: str
    message: str
    request_id: str
    changes: list[ChangeOut]

    @staticmethod
    def resolve_object_type(obj: Any) -> str:
        return obj.content_type.model

    @staticmethod
    def resolve_changes(obj: Any) -> list[dict[str, Any]]:
        changes = obj.changes if isinstance(obj.changes, dict) else {}
        result = []
        for field, pair in changes.items():
            old, new = pair if isinstance(pair, list | tuple) and len(pair) == 2 else (None, pair)
            result.append({"field": field, "old": old, "new": new})
        return result


class RankOut(Schema):
    changed: int = Field(description="How many items got a new rank")


class Choice(Schema):
    value: str
    label: str


class ChoicesOut(Schema):
    statuses: list[Choice]
    steps: list[str] = Field(description="The seven steps, in order")
    transitions: dict[str, list[str]] = Field(description="Step moves allowed from each step")
    preconditions: dict[str, list[str]] = Field(
        description="Gap keys checked before entering a step ('closed': before closing or withdrawing)"
    )
    back_preconditions: list[str] = Field(description="Gap keys checked before a step back")
    gap_messages: dict[str, str] = Field(description="What each gap means")
    gap_hints: dict[str, str] = Field(description="What to do about each gap")
    status_groups: dict[str, list[str]] = Field(description="Groups accepted by the status filter")
    practices: list[Choice]
    quadrants: list[Choice]
    source_channels: list[Choice]
    justification_types: list[Choice]
    decisions: list[Choice]
    directions: list[Choice]
    indicator_roles: list[Choice]
    evaluation_results: list[Choice]
    outcomes: list[Choice]
    benefit_categories: list[Choice]
    sustainment: list[Choice]
    measurement_sources: list[Choice]
    comment_kinds: list[Choice]
    roles: list[Choice]
    flags: list[str] = Field(description="Values of the flag filter")
    sorts: list[str] = Field(description="Values of the sort parameter (prefix '-' to reverse)")


class ImportError_(Schema):
    line: int
    field: str
    message: str


class ImportOut(Schema):
    created: int
    updated: int
    unchanged: int
    failed: int
    dry_run: bool
    errors: list[ImportError_]
