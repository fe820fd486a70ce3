"""Input schemas: request bodies (unknown keys refused) and the register filters of a list."""

from typing import Any

from ninja import Field, Schema

from tikting.core.api import Date, DateTime, DecimalIn, StrictBody

from .. import choices as C
from .. import filtersets
from ..models import Comment, Measurement
from .schemas import (
    BenefitOrBlank,
    ChannelValue,
    DecisionValue,
    DirectionValue,
    Id,
    IndicatorRoleValue,
    JustificationValue,
    MeasurementSourceValue,
    OutcomeOrBlank,
    PracticeOrBlank,
    SortValue,
    StepValue,
    _literal,
)

# --- Input schemas ------------------------------------------------------------------------------


class ItemFields(StrictBody):
    description: str = ""
    practice: PracticeOrBlank = ""  # type: ignore[valid-type]
    service: Id | None = Field(None, description="cmdb service id (GET /api/services)")
    justification: str = ""
    justification_type: JustificationValue = C.JustificationType.OPERATIONAL.value  # type: ignore[valid-type]
    vision: str = Field("", description="Step 1: the business outcome this serves")
    expected_outcome: str = ""
    impact: int = Field(3, ge=1, le=5)
    effort: int = Field(3, ge=1, le=5)
    target_date: Date | None = None
    review_milestone: str = ""
    source_channel: ChannelValue = C.SourceChannel.STAFF_FEEDBACK.value  # type: ignore[valid-type]
    source_reference: str = Field("", description="Ticket number, URL, …")
    external_id: str | None = Field(None, description="Id in another system (imports); unique")
    parent: Id | None = Field(None, description="Parent item id")
    owner: Id | None = Field(None, description="User id; managers only")
    rank: int | None = Field(None, ge=1, le=2**31 - 1, description="Manual backlog rank; managers only")


class ItemCreate(ItemFields):
    title: str = Field(max_length=200)


class ItemPatch(ItemFields):
    """Send only the fields to change, and the version you read."""

    # A PATCH field may be left out but not sent as null: typed `str` (the schema says string, not
    # nullable), its None default only marks it optional (pydantic does not validate defaults, and
    # handlers read `dict(exclude_unset=True)`). mypy cannot express that, hence the ignores here,
    # in IndicatorPatch and in ActionPatch.
    title: str = Field(None, max_length=200)  # type: ignore[assignment]
    expected_version: int = Field(description="The item's version as you read it; 409 if it changed since")


class AssessIn(StrictBody):
    decision: DecisionValue  # type: ignore[valid-type]
    reason: str = Field("", description="Required to defer or reject")
    revisit_date: Date | None = Field(None, description="Required to defer; in the future")
    owner: Id | None = Field(None, description="Assign an owner while accepting")
    expected_version: int | None = None


class TransitionIn(StrictBody):
    to: StepValue  # type: ignore[valid-type]
    reason: str = ""
    expected_version: int | None = None


class BlockIn(StrictBody):
    blocked: bool
    blocker: str = Field("", description="What blocks the item; required when blocked")
    expected_version: int | None = None


class EscalateIn(StrictBody):
    note: str = Field(description="What you need from the register owner")


class EvaluateIn(StrictBody):
    note: str = ""
    expected_version: int | None = None


class FollowUpIn(StrictBody):
    title: str = Field(max_length=200)
    description: str = ""
    practice: PracticeOrBlank | None = None  # type: ignore[valid-type]
    service: Id | None = None
    vision: str = ""
    impact: int = Field(3, ge=1, le=5)
    effort: int = Field(3, ge=1, le=5)
    target_date: Date | None = None


class CloseIn(StrictBody):
    outcome: OutcomeOrBlank = Field(  # type: ignore[valid-type]
        "", description="Empty: the outcome the evaluation stands for (never 'successful' by default)"
    )
    benefit_category: BenefitOrBlank = ""  # type: ignore[valid-type]
    realised_delta: DecimalIn | None = Field(None, description="Measured delta; computed when omitted")
    lessons: str = Field("", description="Lessons learned; required to withdraw")
    follow_ups: list[FollowUpIn] = Field([], max_length=50, description="New items created as children")
    expected_version: int | None = None


class ReopenIn(StrictBody):
    reason: str = Field("", description="Required: why (kept on the timeline)")
    expected_version: int | None = None


class UndoAcceptanceIn(StrictBody):
    reason: str = Field("", description="Required: why the acceptance is undone")
    expected_version: int | None = None


class FollowUpRaiseIn(StrictBody):
    title: str = Field(max_length=200)
    description: str = ""


class CommentIn(StrictBody):
    body: str
    kind: _literal([Comment.Kind.COMMENT, Comment.Kind.LESSON]) = Comment.Kind.COMMENT.value  # type: ignore[valid-type]


class RankIn(StrictBody):
    ids: list[Id] = Field(min_length=1, max_length=1000, description="Item ids, first = rank 1")


class IndicatorFields(StrictBody):
    unit: str = ""
    direction: DirectionValue = C.Direction.LOWER.value  # type: ignore[valid-type]
    role: IndicatorRoleValue = C.IndicatorRole.PRIMARY.value  # type: ignore[valid-type]
    baseline_value: DecimalIn | None = None
    baseline_date: Date | None = None
    baseline_method: str = ""
    target_value: DecimalIn | None = None
    target_date: Date | None = None
    min_value: DecimalIn | None = Field(
        None, description="Lowest possible value; both empty at creation: from the unit (0 or more; % 0-100)"
    )
    max_value: DecimalIn | None = Field(None, description="Highest possible value")
    metric_key: str = ""
    metric_scope: dict[str, Any] = {}
    owner: Id | None = Field(
        None,
        description="User id of who records its measurements besides the item's owner (contributor or above)",
    )


class IndicatorCreate(IndicatorFields):
    name: str = Field(max_length=200)


class IndicatorPatch(IndicatorFields):
    name: str = Field(None, max_length=200)  # type: ignore[assignment]  # optional, not nullable
    expected_version: int = Field(description="The indicator's version as you read it")


class MeasurementIn(StrictBody):
    value: DecimalIn
    measured_at: DateTime | None = Field(None, description="Defaults to now; not in the future")
    note: str = Field("", max_length=300)
    source: MeasurementSourceValue = Measurement.Source.MANUAL.value  # type: ignore[valid-type]


class ActionCreate(StrictBody):
    title: str = Field(max_length=200)
    owner: Id | None = None
    due_date: Date | None = None


class ActionCancelIn(StrictBody):
    reason: str = Field(description="Why the action will not be done")
    expected_version: int | None = None


class ActionReinstateIn(StrictBody):
    expected_version: int | None = None


class ActionPatch(StrictBody):
    title: str = Field(None, max_length=200)  # type: ignore[assignment]  # optional, not nullable
    owner: Id | None = None
    due_date: Date | None = None
    done: bool = None  # type: ignore[assignment]  # optional, not nullable
    expected_version: int = Field(description="The action's version as you read it")


class ItemFilters(Schema):
    """The register filters (tikting/improvement/filtersets.py), shared with the HTML list."""

    q: str | None = Field(None, description="Text in title or description, or a reference (CI-00012)")
    status: list[str] = Field(
        [],
        description="Statuses, or the groups open, active, ended",
        json_schema_extra={
            "items": {"type": "string", "enum": [*C.Status.values, "open", "active", "ended"]}
        },
    )
    practice: list[str] = Field(
        [], json_schema_extra={"items": {"type": "string", "enum": list(C.Practice.values)}}
    )
    service: list[str] = Field([], description="Service ids")
    owner: list[str] = Field([], description="User ids, 'me' or 'none'")
    quadrant: list[str] = Field(
        [], json_schema_extra={"items": {"type": "string", "enum": list(C.Quadrant.values)}}
    )
    source_channel: list[str] = Field(
        [], json_schema_extra={"items": {"type": "string", "enum": list(C.SourceChannel.values)}}
    )
    flag: list[str] = Field(
        [],
        description="All given flags must hold",
        json_schema_extra={"items": {"type": "string", "enum": list(filtersets.FLAGS)}},
    )
    impact: list[str] = Field(
        [],
        description="Impact ratings",
        json_schema_extra={"items": {"type": "string", "enum": list("12345")}},
    )
    effort: list[str] = Field(
        [],
        description="Effort ratings",
        json_schema_extra={"items": {"type": "string", "enum": list("12345")}},
    )
    parent: list[str] = Field([], description="Parent item ids")
    sort: SortValue = Field(filtersets.DEFAULT_SORT, description="Sort key; '-' prefix reverses")  # type: ignore[valid-type]


class IndicatorBind(StrictBody):
    """Bind the indicator to a tikting metric; the baseline is computed over the window."""

    metric_key: str = Field(description="A metric of GET /api/metrics, e.g. mttr")
    scope: dict[str, str] = Field(
        {}, description="Metric filters: service, priority, group, category, ci, source"
    )
    window_start: Date
    window_end: Date
    expected_version: int
