"""Every ITSM record kind over HTTP, driven by the registry (tikting/api.py mounts it at /api/records/).

The kinds are data, so bodies and records are generic JSON objects (`dict[str, Any]`): relations by
id, choices by value, dates and times in ISO 8601. The services of tikting/core/records.py validate
them and name the field of every error (422), refuse a stale `expected_version` (409) and check
permission per kind (viewers read; who writes depends on the kind's `access`, docs/permissions.md).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Body, Field, Query, Router, Schema, Status
from ninja.errors import HttpError

from tikting.core.api import UserBrief, errors, json_answer
from tikting.core.audit import history_for
from tikting.core.exceptions import PermissionDeniedError

from . import forms as F
from . import registry as R

router = Router(tags=["records"])

MAX_PAGE = 500
MAX_ID = 2**63 - 1
KindSlug = Literal[tuple(R.KINDS)]  # type: ignore[valid-type]

_FILTER_DOC = "; ".join(f"{kind.slug}: {', '.join(kind.filter_fields) or '—'}" for kind in R.KINDS.values())


class ListParams(Schema):
    q: str = Field("", description="Search the kind's search fields (number, title, description …)")
    sort: str = Field("", description="A list column, '-' prefix for descending; default newest first (-pk)")
    date_from: str = Field("", description="First day (YYYY-MM-DD) of the kind's date field (e.g. opened_at)")
    date_to: str = Field("", description="Last day (YYYY-MM-DD) of the kind's date field")
    fields: str = Field(
        "",
        description=(
            "Comma-separated fields to return (id, kind, key and url always come); default every field. "
            "An unknown name is refused (422)."
        ),
    )
    limit: int = Field(F.PAGE_SIZE, ge=1, le=MAX_PAGE)
    offset: int = Field(0, ge=0, le=2**31 - 1)


class RecordPage(Schema):
    count: int = Field(description="Records matching the filters")
    items: list[dict[str, Any]]


class ChangeOut(Schema):
    field: str
    old: Any = None
    new: Any = None


class HistoryEntryOut(Schema):
    id: int
    at: str
    actor: UserBrief | None
    action: str
    object_repr: str
    request_id: str
    changes: list[ChangeOut]

    @staticmethod
    def resolve_at(obj: Any) -> str:
        return obj.at.isoformat()

    @staticmethod
    def resolve_changes(obj: Any) -> list[dict[str, Any]]:
        changes = obj.changes if isinstance(obj.changes, dict) else {}
        result = []
        for name, pair in changes.items():
            old, new = pair if isinstance(pair, list | tuple) and len(pair) == 2 else (None, pair)
            result.append({"field": name, "old": old, "new": new})
        return result


RecordId = Annotated[int, Field(ge=1, le=MAX_ID)]


def _actor(request: HttpRequest) -> Any:
    return request.auth  # type: ignore[attr-defined]


def _readable(request: HttpRequest) -> None:
    if not R.can_view_records(_actor(request)):
        raise PermissionDeniedError("You may not read ITSM records.")


def _writable(request: HttpRequest, kind: R.RecordKind, what: str) -> None:
    """Refuse (403) before reading the body: who may not write learns nothing from validation."""
    if not R.can_edit_records(_actor(request), kind):
        raise PermissionDeniedError(f"You may not {what} {kind.label_plural.lower()}.")


def _get(kind: R.RecordKind, record_id: int) -> Any:
    return get_object_or_404(kind.model._default_manager.all(), pk=record_id)


def _out(kind: R.RecordKind, obj: Any) -> dict[str, Any]:
    data = F.serialize(kind, obj)
    data["history_url"] = f"/api/records/{kind.slug}/{obj.pk}/history"
    return data


def _rows_out(kind: R.RecordKind, qs: Any, fields: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """The records of `qs` as _out() gives them (only `fields` of them, when given): read as values
    for kinds without many-to-many fields (no model instances), from instances with those
    prefetched otherwise."""
    if kind.model._meta.many_to_many:
        names = [f.name for f in kind.model._meta.many_to_many]
        rows = [_out(kind, obj) for obj in qs.prefetch_related(*names)]
        if fields is not None:
            keep = {"id", "kind", "key", "url", "history_url", *fields}
            rows = [{k: v for k, v in row.items() if k in keep} for row in rows]
        return rows
    return _with_history(kind, F.serialize_rows(kind, qs, fields))


def _with_history(kind: R.RecordKind, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for data in rows:
        data["history_url"] = f"/api/records/{kind.slug}/{data['id']}/history"
    return rows


@router.get(
    "/{slug}",
    response={200: RecordPage, **errors(403, 422)},
    summary="List records of a kind",
    description=(
        "Filter with the kind's filter fields as query parameters (several values: repeat the "
        "parameter or separate with commas; relations by id, booleans yes/no/unknown): "
        + _FILTER_DOC
        + ". Any relation of the kind filters by id too (e.g. `problem=12`)."
    ),
)
def list_records(request: HttpRequest, slug: KindSlug, params: Query[ListParams]):  # type: ignore[valid-type]
    _readable(request)
    kind = R.get_kind(slug)
    fields = F.check_field_list(kind, params.fields)
    if not kind.model._meta.many_to_many:
        # One query for the page, one more for the count when the page is full, both compiled once
        # per connection and shape of request. (The filters read only their own parameters: limit,
        # offset and fields are none of them: F.RESERVED.)
        items, count = F.list_page(
            kind, F.parse_filters(kind, request.GET), offset=params.offset, limit=params.limit, fields=fields
        )
        return json_answer({"count": count, "items": _with_history(kind, items)})
    query = request.GET.copy()
    for name in ("limit", "offset", "fields"):
        query.pop(name, None)
    qs = F.apply_filters(kind, kind.model._default_manager.all(), query)
    items = _rows_out(kind, qs[params.offset : params.offset + params.limit], fields)
    # The count is a second scan of what matched: not needed when this page holds the last match.
    short = len(items) < params.limit and (items or not params.offset)
    return {"count": params.offset + len(items) if short else qs.count(), "items": items}


@router.post(
    "/{slug}",
    response={201: dict[str, Any], **errors(403, 422)},
    summary="Create a record",
    description="A JSON object of the kind's fields (relations by id). Errors name the field.",
)
def create_record(request: HttpRequest, slug: KindSlug, payload: Body[dict[str, Any]]):  # type: ignore[valid-type]
    kind = R.get_kind(slug)
    _writable(request, kind, "create")
    data = F.coerce_payload(kind, dict(payload))
    obj = R.create_record(kind, actor=_actor(request), **data)
    return Status(201, _out(kind, obj))


@router.get(
    "/{slug}/{record_id}",
    response={200: dict[str, Any], **errors(403, 404, 422)},
    summary="Get a record",
)
def get_record(request: HttpRequest, slug: KindSlug, record_id: RecordId):  # type: ignore[valid-type]
    _readable(request)
    kind = R.get_kind(slug)
    if kind.model._meta.many_to_many:
        rows = _rows_out(kind, kind.model._default_manager.filter(pk=record_id).order_by())
    else:
        rows = _with_history(kind, F.serialize_ids(kind, [record_id]))
    if not rows:
        raise Http404(f"No {kind.label.lower()} with id {record_id}.")
    return json_answer(rows[0])


@router.patch(
    "/{slug}/{record_id}",
    response={200: dict[str, Any], **errors(403, 404, 409, 422)},
    summary="Edit a record",
    description=(
        "The fields to change, plus `expected_version`: the `version` you read (required for kinds "
        "that carry one). A stale version answers 409 and changes nothing."
    ),
)
def update_record(
    request: HttpRequest,
    slug: KindSlug,  # type: ignore[valid-type]
    payload: Body[dict[str, Any]],
    record_id: RecordId,
):
    kind = R.get_kind(slug)
    _writable(request, kind, "edit")
    data = dict(payload)
    expected = data.pop("expected_version", None)
    if any(f.name == "version" for f in kind.model._meta.concrete_fields):
        if expected is None:
            raise ValidationError({"expected_version": "Required: send the version you read."})
        if isinstance(expected, bool) or not str(expected).isdigit():
            raise ValidationError({"expected_version": "A whole number: the version you read."})
        expected = int(expected)
    else:
        expected = None
    data = F.coerce_payload(kind, data)
    missing: type[Exception] = kind.model.DoesNotExist  # type: ignore[attr-defined]
    try:
        obj = R.update_record_by_pk(kind, record_id, actor=_actor(request), expected_version=expected, **data)
    except missing:
        raise Http404(f"No {kind.label.lower()} with id {record_id}.") from None
    return json_answer(_out(kind, obj))


@router.delete(
    "/{slug}/{record_id}",
    response={204: None, **errors(403, 404, 422)},
    summary="Delete a record",
)
def delete_record(request: HttpRequest, slug: KindSlug, record_id: RecordId):  # type: ignore[valid-type]
    kind = R.get_kind(slug)
    if not R.can_delete_records(_actor(request), kind):
        raise HttpError(403, f"You may not delete {kind.label_plural.lower()}.")
    obj = _get(kind, record_id)
    R.delete_record(obj, actor=_actor(request))
    return Status(204, None)


@router.get(
    "/{slug}/{record_id}/history",
    response={200: list[HistoryEntryOut], **errors(403, 404, 422)},
    summary="History of a record",
    description="Who changed what and when, newest first: `changes` gives each field's old and new value.",
)
def record_history(request: HttpRequest, slug: KindSlug, record_id: RecordId):  # type: ignore[valid-type]
    _readable(request)
    kind = R.get_kind(slug)
    obj = _get(kind, record_id)
    return list(history_for(obj).order_by("-at", "-id")[:500])
