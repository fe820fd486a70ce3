"""The register over HTTP: everything the UI does, through the same services (tikting/api.py mounts it).

`router` is mounted at /api/items; `lookups` at /api/ holds the child records addressed by their own
id (/indicators/{id}, /actions/{id}) and the pick lists clients need to build forms (/services,
/users, /choices). Handlers parse input, call a service with `actor=` the authenticated user, and
render; the service checks permission and rules, so errors name the same fields as in the UI.
"""

import codecs
import datetime as dt
import tempfile
from decimal import Decimal
from io import TextIOWrapper
from typing import Annotated, Any, Literal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import OuterRef, Prefetch, Subquery
from django.http import FileResponse, HttpRequest
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Field, File, Form, Query, Router, Schema, Status, UploadedFile
from ninja.pagination import LimitOffsetPagination, paginate
from pydantic import BeforeValidator, ConfigDict

from tikting.accounts.models import Role, User
from tikting.cmdb.models import Service
from tikting.core import audit
from tikting.core.api import (
    ServiceBrief,
    UserBrief,
    errors,
)

from . import choices as C
from . import filtersets, io
from . import permissions as P
from . import services as S
from .models import Action, Comment, Indicator, Item, Measurement

router = Router(tags=["items"])
lookups = Router(tags=["register"])

MAX_ID = 2**63 - 1  # ids beyond a bigint are not ids (and would overflow some database drivers)
MAX_PAGE = 500


def _literal(values: list[str] | tuple[str, ...], *, blank: bool = False) -> Any:
    """A Literal type of choice values, so the OpenAPI schema lists them as an enum."""
    return Literal[tuple(values) + (("",) if blank else ())]  # type: ignore[valid-type]


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
        return format(value.normalize(), "f") if value == value else str(value)
    return value


DecimalText = Annotated[str, BeforeValidator(_decimal_text)]


class StrictBody(Schema):
    """Request bodies reject unknown keys: a misspelt field is an error, not a silent no-op."""

    model_config = ConfigDict(extra="forbid")


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
    metric_key: str
    metric_scope: dict[str, Any]
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
    def resolve_readiness_gaps(obj: Item) -> list[dict[str, str]]:
        return _gaps(obj.readiness_gaps())

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
                    "gaps": _gaps(obj.gaps_for(to)) if forward else [],
                }
            )
        return result

    @staticmethod
    def resolve_indicators(obj: Item) -> list[Indicator]:
        return list(obj.indicators.all())

    @staticmethod
    def resolve_actions(obj: Item) -> list[Action]:
        return list(obj.actions.all())


def _gaps(keys: list[str]) -> list[dict[str, str]]:
    return [{"key": key, "message": C.GAP_MESSAGES[key]} for key in keys]


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
    preconditions: dict[str, list[str]] = Field(description="Gap keys checked before entering a step")
    gap_messages: dict[str, str]
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
    target_date: dt.date | None = None
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

    title: str = Field(None, max_length=200)
    expected_version: int = Field(description="The item's version as you read it; 409 if it changed since")


class AssessIn(StrictBody):
    decision: DecisionValue  # type: ignore[valid-type]
    reason: str = Field("", description="Required to defer or reject")
    revisit_date: dt.date | None = Field(None, description="Required to defer; in the future")
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
    target_date: dt.date | None = None


class CloseIn(StrictBody):
    outcome: OutcomeValue  # type: ignore[valid-type]
    benefit_category: BenefitOrBlank = ""  # type: ignore[valid-type]
    realised_delta: Decimal | None = Field(None, description="Measured delta; computed when omitted")
    lessons: str = Field("", description="Lessons learned; required to withdraw")
    follow_ups: list[FollowUpIn] = Field([], max_length=50, description="New items created as children")
    expected_version: int | None = None


class ReopenIn(StrictBody):
    reason: str = ""


class CommentIn(StrictBody):
    body: str
    kind: _literal([Comment.Kind.COMMENT, Comment.Kind.LESSON]) = Comment.Kind.COMMENT.value  # type: ignore[valid-type]


class RankIn(StrictBody):
    ids: list[Id] = Field(min_length=1, max_length=1000, description="Item ids, first = rank 1")


class IndicatorFields(StrictBody):
    unit: str = ""
    direction: DirectionValue = C.Direction.LOWER.value  # type: ignore[valid-type]
    role: IndicatorRoleValue = C.IndicatorRole.PRIMARY.value  # type: ignore[valid-type]
    baseline_value: Decimal | None = None
    baseline_date: dt.date | None = None
    baseline_method: str = ""
    target_value: Decimal | None = None
    target_date: dt.date | None = None
    metric_key: str = ""
    metric_scope: dict[str, Any] = {}


class IndicatorCreate(IndicatorFields):
    name: str = Field(max_length=200)


class IndicatorPatch(IndicatorFields):
    name: str = Field(None, max_length=200)
    expected_version: int = Field(description="The indicator's version as you read it")


class MeasurementIn(StrictBody):
    value: Decimal
    measured_at: dt.datetime | None = Field(None, description="Defaults to now; not in the future")
    note: str = Field("", max_length=300)
    source: MeasurementSourceValue = Measurement.Source.MANUAL.value  # type: ignore[valid-type]


class ActionCreate(StrictBody):
    title: str = Field(max_length=200)
    owner: Id | None = None
    due_date: dt.date | None = None


class ActionPatch(StrictBody):
    title: str = Field(None, max_length=200)
    owner: Id | None = None
    due_date: dt.date | None = None
    done: bool = None  # type: ignore[assignment]
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


class Page(LimitOffsetPagination):
    """limit/offset paging; the response carries `items` and the total `count`."""

    class Input(Schema):
        limit: int = Field(settings.TIKTING_PAGE_SIZE, ge=1, le=MAX_PAGE)
        offset: int = Field(0, ge=0, le=2**31 - 1)


# --- Helpers ------------------------------------------------------------------------------------


def _actor(request: HttpRequest) -> User:
    return request.auth  # type: ignore[attr-defined,return-value]


def _items(request: HttpRequest):
    return Item.objects.visible_to(_actor(request))


def _indicators_queryset():
    latest = Measurement.objects.filter(indicator=OuterRef("pk")).order_by("-measured_at", "-id")
    return Indicator.objects.annotate(
        latest_value=Subquery(
            latest.values("value")[:1], output_field=models.DecimalField(max_digits=16, decimal_places=4)
        ),
        latest_measured_at=Subquery(latest.values("measured_at")[:1]),
    )


def _get_item(request: HttpRequest, item_id: int) -> Item:
    return get_object_or_404(_items(request), pk=item_id)


def _detail(request: HttpRequest, item_id: int) -> Item:
    """The item with its children prefetched: a fixed number of queries whatever it holds."""
    qs = _items(request).select_related("service", "owner", "parent", "submitted_by", "assessed_by")
    qs = qs.prefetch_related(
        Prefetch("indicators", queryset=_indicators_queryset()),
        Prefetch("actions", queryset=Action.objects.select_related("owner")),
        Prefetch("children", queryset=Item.objects.order_by("id")),
    )
    return get_object_or_404(qs, pk=item_id)


def _get_indicator(request: HttpRequest, indicator_id: int) -> Indicator:
    qs = Indicator.objects.filter(item__in=_items(request)).select_related("item")
    return get_object_or_404(qs, pk=indicator_id)


def _get_action(request: HttpRequest, action_id: int) -> Action:
    qs = Action.objects.filter(item__in=_items(request)).select_related("item", "owner")
    return get_object_or_404(qs, pk=action_id)


def _lookup(model: type[models.Model], pk: int | None, field: str, **filters: Any) -> Any:
    """The record an id in a request body points at, or a 422 naming the field."""
    if pk is None:
        return None
    obj = model._default_manager.filter(pk=pk, **filters).first()
    if obj is None:
        raise ValidationError({field: f"No {model._meta.verbose_name} with id {pk}."})
    return obj


def _resolve(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Replace the ids of service / owner / parent in a body with the records."""
    targets = {"service": (Service, {}), "owner": (User, {"is_active": True}), "parent": (Item, {})}
    for field, (model, filters) in targets.items():
        if field in data:
            data[field] = _lookup(model, data[field], f"{prefix}{field}", **filters)
    return data


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and timezone.is_naive(value):
        return timezone.make_aware(value)
    return value


# --- Items --------------------------------------------------------------------------------------


@router.get("", response={200: list[ItemOut], **errors(422)}, summary="List items")
@paginate(Page)
def list_items(request: HttpRequest, filters: Query[ItemFilters]):
    """Filter, sort and page the register. Several values of one filter are OR-ed (repeat the
    parameter or separate values with commas); different filters are AND-ed. An unknown value
    answers 422 naming the filter."""
    params = filters.dict(exclude={"sort"})
    qs = filtersets.filter_items(_items(request), params, user=_actor(request))
    qs = filtersets.sort_items(qs, filters.sort)
    return qs.select_related("service", "owner")


@router.post("", response={201: ItemDetail, **errors(403, 422)}, summary="Submit an item")
def create_item(request: HttpRequest, payload: ItemCreate):
    """Submit an opportunity; it starts as `new`, to be assessed. Contributors and above."""
    data = _resolve(payload.dict(exclude_unset=True))
    item = S.create_item(actor=_actor(request), **data)
    return Status(201, _detail(request, item.pk))


@router.post("/rank", response={200: RankOut, **errors(403, 422)}, summary="Rank the backlog")
def rank_items(request: HttpRequest, payload: RankIn):
    """Give the listed items ranks 1..n in that order (managers)."""
    visible = set(_items(request).filter(pk__in=payload.ids).values_list("pk", flat=True))
    missing = [pk for pk in payload.ids if pk not in visible]
    if missing:
        raise ValidationError({"ids": f"Unknown item ids: {missing[:10]}"})
    if len(set(payload.ids)) != len(payload.ids):
        raise ValidationError({"ids": "Each item may appear once."})
    return {"changed": S.rank_items(payload.ids, actor=_actor(request))}


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


@router.get(
    "/export",
    response={200: None, **errors(422)},
    summary="Export items (CSV, JSON, JSON Lines)",
    openapi_extra={
        "responses": {
            200: {
                "description": "The filtered register as a file",
                "content": {
                    "text/csv": {"schema": {"type": "string"}},
                    "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
                    "application/x-ndjson": {"schema": {"type": "string"}},
                },
            }
        }
    },
)
def export_register(
    request: HttpRequest, filters: Query[ItemFilters], format: Literal["csv", "json", "jsonl"] = "csv"
):
    """The items matching the register filters, in the format `tikting register export` writes
    (docs/import-formats.md): the same file imports back with POST /items/import."""
    qs = filtersets.filter_items(_items(request), filters.dict(exclude={"sort"}), user=_actor(request))
    qs = filtersets.sort_items(qs, filters.sort)
    # Spooled to disk past 8 MB; FileResponse streams it out and closes it.
    raw = tempfile.SpooledTemporaryFile(max_size=8 << 20)  # noqa: SIM115
    text = TextIOWrapper(raw, encoding="utf-8", newline="")
    io.export_items(text, fmt=format, qs=qs)
    text.flush()
    text.detach()
    raw.seek(0)
    content_type, ext = {
        "csv": ("text/csv", "csv"),
        "json": ("application/json", "json"),
        "jsonl": ("application/x-ndjson", "jsonl"),
    }[format]
    response = FileResponse(raw, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="tikting-register.{ext}"'
    return response


@router.post("/import", response={200: ImportOut, **errors(403, 413, 422)}, summary="Import items")
def import_register(
    request: HttpRequest,
    file: File[UploadedFile],
    format: Literal["csv", "json", "jsonl"] | None = Form(None),
    dry_run: bool = Form(False),
    create_services: bool = Form(False),
):
    """Create or update items from a CSV / JSON / JSON Lines file (improvement managers).

    Idempotent: rows match on `ref`, else `external_id`. Bad rows are reported by line and field
    and skipped; good rows are kept. `dry_run` checks everything and writes nothing. Files over
    TIKTING_MAX_UPLOAD_BYTES answer 413.
    """
    P.check(_actor(request), P.can_manage, what="import register items")
    if file.size and file.size > settings.TIKTING_MAX_UPLOAD_BYTES:
        return Status(413, {"detail": f"The file is over {settings.TIKTING_MAX_UPLOAD_BYTES} bytes."})
    fmt = io.format_for(file.name, format)
    stream = codecs.getreader("utf-8-sig")(file, errors="strict")
    try:
        result = io.import_items(
            stream, fmt=fmt, actor=_actor(request), dry_run=dry_run, create_services=create_services
        )
    except UnicodeDecodeError as exc:
        raise ValidationError({"file": "The file is not UTF-8 text."}) from exc
    return result.as_dict()


@router.get("/{item_id}", response={200: ItemDetail, **errors(404, 422)}, summary="Get an item")
def get_item(request: HttpRequest, item_id: Id):
    return _detail(request, item_id)


@router.patch("/{item_id}", response={200: ItemDetail, **errors(403, 404, 409, 422)}, summary="Edit an item")
def update_item(request: HttpRequest, item_id: Id, payload: ItemPatch):
    """Change the fields sent (others are left as they are). `expected_version` is required:
    a stale one answers 409 with the current version."""
    item = _get_item(request, item_id)
    data = payload.dict(exclude_unset=True)
    expected = data.pop("expected_version")
    S.update_item(item, actor=_actor(request), expected_version=expected, **_resolve(data))
    return _detail(request, item_id)


@router.post(
    "/{item_id}/assess", response={200: ItemDetail, **errors(403, 404, 409, 422)}, summary="Assess an item"
)
def assess_item(request: HttpRequest, item_id: Id, payload: AssessIn):
    """Accept (into step 1), defer (reason and future revisit date) or reject (reason). Managers."""
    item = _get_item(request, item_id)
    data = payload.dict()
    owner = _lookup(User, data.pop("owner"), "owner", is_active=True)
    S.assess_item(item, actor=_actor(request), owner=owner, **data)
    return _detail(request, item_id)


@router.post(
    "/{item_id}/transition",
    response={200: ItemDetail, **errors(403, 404, 409, 422)},
    summary="Move an item one step",
)
def transition_item(request: HttpRequest, item_id: Id, payload: TransitionIn):
    """One step forward (preconditions checked: the 422 says what is missing) or one step back."""
    item = _get_item(request, item_id)
    S.transition_item(item, actor=_actor(request), **payload.dict())
    return _detail(request, item_id)


@router.post(
    "/{item_id}/block", response={200: ItemDetail, **errors(403, 404, 409, 422)}, summary="Block or unblock"
)
def block_item(request: HttpRequest, item_id: Id, payload: BlockIn):
    item = _get_item(request, item_id)
    S.set_blocked(item, actor=_actor(request), **payload.dict())
    return _detail(request, item_id)


@router.post(
    "/{item_id}/escalate", response={200: ItemDetail, **errors(403, 404, 422)}, summary="Escalate a blocker"
)
def escalate_item(request: HttpRequest, item_id: Id, payload: EscalateIn):
    """Escalate to the register owner: recorded on the item and put on the review agenda."""
    item = _get_item(request, item_id)
    S.escalate_item(item, actor=_actor(request), note=payload.note)
    return _detail(request, item_id)


@router.post(
    "/{item_id}/evaluate",
    response={200: ItemDetail, **errors(403, 404, 409, 422)},
    summary="Evaluate (step 6)",
)
def evaluate_item(request: HttpRequest, item_id: Id, payload: EvaluateIn):
    """Compare each primary indicator's latest measurement with its target and record the result."""
    item = _get_item(request, item_id)
    S.evaluate_item(item, actor=_actor(request), **payload.dict())
    return _detail(request, item_id)


@router.post(
    "/{item_id}/close", response={200: ItemDetail, **errors(403, 404, 409, 422)}, summary="Close or withdraw"
)
def close_item(request: HttpRequest, item_id: Id, payload: CloseIn):
    """Close from step 7 with an outcome (and benefit), or withdraw from any open step (with
    lessons). Follow-ups become new child items."""
    item = _get_item(request, item_id)
    data = payload.dict()
    follow_ups = []
    for n, follow_up in enumerate(data.pop("follow_ups"), start=1):
        follow_up = {k: v for k, v in follow_up.items() if v is not None}
        follow_ups.append(_resolve(follow_up, prefix=f"follow_ups[{n}]."))
    S.close_item(item, actor=_actor(request), follow_ups=follow_ups, **data)
    return _detail(request, item_id)


@router.post(
    "/{item_id}/reopen", response={200: ItemDetail, **errors(403, 404, 422)}, summary="Reopen a rejected item"
)
def reopen_item(request: HttpRequest, item_id: Id, payload: ReopenIn):
    item = _get_item(request, item_id)
    S.reopen_item(item, actor=_actor(request), reason=payload.reason)
    return _detail(request, item_id)


@router.get(
    "/{item_id}/comments", response={200: list[CommentOut], **errors(404, 422)}, summary="Comments of an item"
)
def list_comments(request: HttpRequest, item_id: Id):
    item = _get_item(request, item_id)
    return item.comments.select_related("author")


@router.post(
    "/{item_id}/comments", response={201: CommentOut, **errors(403, 404, 422)}, summary="Comment on an item"
)
def add_comment(request: HttpRequest, item_id: Id, payload: CommentIn):
    item = _get_item(request, item_id)
    return Status(201, S.add_comment(item, actor=_actor(request), body=payload.body, kind=payload.kind))


@router.get(
    "/{item_id}/history", response={200: list[HistoryOut], **errors(404, 422)}, summary="History of an item"
)
@paginate(Page)
def item_history(request: HttpRequest, item_id: Id):
    """Audit rows of the item and its indicators, measurements and actions, newest first."""
    return audit.history_for(_get_item(request, item_id))


# --- Indicators and measurements ----------------------------------------------------------------


@router.get(
    "/{item_id}/indicators",
    response={200: list[IndicatorOut], **errors(404, 422)},
    summary="Indicators of an item",
)
def list_indicators(request: HttpRequest, item_id: Id):
    item = _get_item(request, item_id)
    return _indicators_queryset().filter(item=item)


@router.post(
    "/{item_id}/indicators",
    response={201: IndicatorOut, **errors(403, 404, 422)},
    summary="Add an indicator",
)
def add_indicator(request: HttpRequest, item_id: Id, payload: IndicatorCreate):
    item = _get_item(request, item_id)
    indicator = S.add_indicator(item, actor=_actor(request), **payload.dict(exclude_unset=True))
    return Status(201, _indicators_queryset().get(pk=indicator.pk))


@lookups.get(
    "/indicators/{indicator_id}", response={200: IndicatorOut, **errors(404, 422)}, tags=["indicators"]
)
def get_indicator(request: HttpRequest, indicator_id: Id):
    return _indicators_queryset().get(pk=_get_indicator(request, indicator_id).pk)


@lookups.patch(
    "/indicators/{indicator_id}",
    response={200: IndicatorOut, **errors(403, 404, 409, 422)},
    tags=["indicators"],
)
def update_indicator(request: HttpRequest, indicator_id: Id, payload: IndicatorPatch):
    """Change baseline, target and the other fields sent; `expected_version` is required."""
    indicator = _get_indicator(request, indicator_id)
    data = payload.dict(exclude_unset=True)
    expected = data.pop("expected_version")
    S.update_indicator(indicator, actor=_actor(request), expected_version=expected, **data)
    return _indicators_queryset().get(pk=indicator_id)


class IndicatorBind(StrictBody):
    """Bind the indicator to a tikting metric; the baseline is computed over the window."""

    metric_key: str = Field(description="A metric of GET /api/metrics, e.g. mttr")
    scope: dict[str, str] = Field(
        {}, description="Metric filters: service, priority, group, category, ci, source"
    )
    window_start: dt.date
    window_end: dt.date
    expected_version: int


@lookups.post(
    "/indicators/{indicator_id}/bind",
    response={200: IndicatorOut, **errors(403, 404, 409, 422)},
    tags=["indicators"],
    summary="Bind an indicator to a metric",
)
def bind_indicator(request: HttpRequest, indicator_id: Id, payload: IndicatorBind):
    """Compute the baseline from the records (metric, scope, window); measurements are then taken
    from the records each interval while the item acts, and during its control period."""
    indicator = _get_indicator(request, indicator_id)
    data = payload.dict()
    S.bind_indicator(indicator, actor=_actor(request), **data)
    return _indicators_queryset().get(pk=indicator_id)


@lookups.delete(
    "/indicators/{indicator_id}", response={204: None, **errors(403, 404, 422)}, tags=["indicators"]
)
def remove_indicator(request: HttpRequest, indicator_id: Id):
    S.remove_indicator(_get_indicator(request, indicator_id), actor=_actor(request))
    return Status(204, None)


@lookups.get(
    "/indicators/{indicator_id}/measurements",
    response={200: list[MeasurementOut], **errors(404, 422)},
    tags=["indicators"],
)
@paginate(Page)
def list_measurements(request: HttpRequest, indicator_id: Id):
    """Measurements, oldest first (the order of a chart)."""
    indicator = _get_indicator(request, indicator_id)
    return indicator.measurements.select_related("recorded_by").order_by("measured_at", "id")


@lookups.post(
    "/indicators/{indicator_id}/measurements",
    response={201: MeasurementOut, **errors(403, 404, 422)},
    tags=["indicators"],
)
def record_measurement(request: HttpRequest, indicator_id: Id, payload: MeasurementIn):
    indicator = _get_indicator(request, indicator_id)
    data = payload.dict()
    data["measured_at"] = _aware(data["measured_at"])
    return Status(201, S.record_measurement(indicator, actor=_actor(request), **data))


# --- Actions ------------------------------------------------------------------------------------


@router.get(
    "/{item_id}/actions", response={200: list[ActionOut], **errors(404, 422)}, summary="Actions of an item"
)
def list_actions(request: HttpRequest, item_id: Id):
    return _get_item(request, item_id).actions.select_related("owner")


@router.post(
    "/{item_id}/actions", response={201: ActionOut, **errors(403, 404, 422)}, summary="Plan an action"
)
def add_action(request: HttpRequest, item_id: Id, payload: ActionCreate):
    item = _get_item(request, item_id)
    data = _resolve(payload.dict())
    return Status(201, S.add_action(item, actor=_actor(request), **data))


@lookups.get("/actions/{action_id}", response={200: ActionOut, **errors(404, 422)}, tags=["actions"])
def get_action(request: HttpRequest, action_id: Id):
    return _get_action(request, action_id)


@lookups.patch(
    "/actions/{action_id}", response={200: ActionOut, **errors(403, 404, 409, 422)}, tags=["actions"]
)
def update_action(request: HttpRequest, action_id: Id, payload: ActionPatch):
    """Change the fields sent (mark done with `done: true`); `expected_version` is required."""
    action = _get_action(request, action_id)
    data = payload.dict(exclude_unset=True)
    expected = data.pop("expected_version")
    if data.get("done", False) is None:
        raise ValidationError({"done": "Give true or false."})
    S.update_action(action, actor=_actor(request), expected_version=expected, **_resolve(data))
    return _get_action(request, action_id)


@lookups.delete("/actions/{action_id}", response={204: None, **errors(403, 404, 422)}, tags=["actions"])
def remove_action(request: HttpRequest, action_id: Id):
    S.remove_action(_get_action(request, action_id), actor=_actor(request))
    return Status(204, None)


# --- Pick lists ---------------------------------------------------------------------------------


@lookups.get("/services", response={200: list[ServiceOut], **errors()}, tags=["register"])
def list_services(request: HttpRequest):
    """Business services (CMDB), for the service field and filter."""
    return Service.objects.all()


@lookups.get("/users", response={200: list[UserOut], **errors()}, tags=["register"])
def list_users(request: HttpRequest):
    """Active users, for owner pickers."""
    return User.objects.filter(is_active=True).order_by("username")


def _choices(choices: type[models.TextChoices]) -> list[dict[str, str]]:
    return [{"value": value, "label": str(label)} for value, label in choices.choices if value]


@lookups.get("/choices", response={200: ChoicesOut, **errors()}, tags=["register"])
def list_choices(request: HttpRequest):
    """Every choice set and the lifecycle rules, so clients can build forms without hard-coding."""
    return {
        "statuses": _choices(C.Status),
        "steps": [str(s) for s in C.STEPS],
        "transitions": {
            str(k): sorted((str(v) for v in vs), key=C.STEPS.index) for k, vs in C.TRANSITIONS.items()
        },
        "preconditions": {str(k): list(v) for k, v in C.PRECONDITIONS.items()},
        "gap_messages": dict(C.GAP_MESSAGES),
        "status_groups": {
            "open": sorted(C.OPEN_STATUSES),
            "active": [str(s) for s in C.STEPS],
            "ended": sorted(C.ENDED_STATUSES),
        },
        "practices": _choices(C.Practice),
        "quadrants": _choices(C.Quadrant),
        "source_channels": _choices(C.SourceChannel),
        "justification_types": _choices(C.JustificationType),
        "decisions": _choices(C.Decision),
        "directions": _choices(C.Direction),
        "indicator_roles": _choices(C.IndicatorRole),
        "evaluation_results": _choices(C.EvaluationResult),
        "outcomes": _choices(C.Outcome),
        "benefit_categories": _choices(C.BenefitCategory),
        "sustainment": _choices(C.Sustainment),
        "measurement_sources": _choices(Measurement.Source),
        "comment_kinds": _choices(Comment.Kind),
        "roles": _choices(Role),
        "flags": list(filtersets.FLAGS),
        "sorts": list(filtersets.SORTS),
    }
