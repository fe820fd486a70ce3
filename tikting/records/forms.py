"""Filters, display helpers and forms for the generic record pages and API, built from the registry.

Nothing here knows an incident from a CI: every list filter, column and form field is derived from
a RecordKind (tikting/core/records.py) and its model's fields, so the HTML pages and the API read
the same filters and agree on what a value means.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.models import Q, QuerySet
from django.http import QueryDict
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from tikting.core.prepared import Prepared
from tikting.lib import display as shown
from tikting.lib.display import ISO_DATE

from .registry import KINDS, RecordKind, _editable, kind_for, related_model

OPTIONS_CAP = 500  # a foreign-key filter or form field with more rows becomes a text input
DISTINCT_CAP = 100  # distinct values offered for an indexed text column (source, category)
PAGE_SIZE = 50
DEFAULT_SORT = "-pk"
TRUE_WORDS = {"yes", "true", "1", "on"}
FALSE_WORDS = {"no", "false", "0", "off"}
SEARCH_RANK = "search_rank"  # what kind.full_text annotates
RESERVED = {"q", "sort", "page", "date_from", "date_to", "limit", "offset", "fields"}


# --- Displaying values --------------------------------------------------------------------------


def record_url(obj: models.Model) -> str:
    """The record page of a registered record, or "" for a model that is not a record kind."""
    kind = kind_for(obj)
    return reverse("records:detail", args=[kind.slug, obj.pk]) if kind else ""


def name_of(obj: models.Model | None) -> str:
    """A related record by its human name: the key (INC0001, a CI's name), a person's full name."""
    if obj is None:
        return ""
    kind = kind_for(obj)
    if kind is not None and kind.key_field != "id":
        value = getattr(obj, kind.key_field, "")
        if value:
            return str(value)
    if isinstance(obj, AbstractUser):
        return obj.get_full_name() or obj.get_username()
    return str(obj)


def key_of(kind: RecordKind, obj: models.Model) -> str:
    return kind.key_of(obj)


def compact(value: Any) -> str:
    """A value as the pages show it: dates and times in the UI's one format, numbers as written."""
    if isinstance(value, dt.date):  # datetimes too, in the configured time zone
        return shown.when(value)
    if isinstance(value, Decimal | float):
        return shown.number(value)
    return str(value)


def display(obj: models.Model, name: str, *, limit: int | None = 80) -> str:
    """The value of a field as a person reads it: choices by label, FKs by name, compact dates."""
    f = obj._meta.get_field(name)
    if f.is_relation and (f.many_to_one or f.one_to_one):
        return name_of(getattr(obj, name))
    assert isinstance(f, models.Field)  # a column of the record, not a reverse relation
    value = getattr(obj, f.attname)
    if value is None or value == "":
        return ""
    if getattr(f, "choices", None):
        return str(getattr(obj, f"get_{name}_display")())
    if isinstance(value, bool):
        return "Yes" if value else "No"
    text = compact(value)
    if limit and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


ACRONYMS = {"ci": "CI", "cis": "CIs", "sla": "SLA", "pir": "PIR", "id": "ID", "url": "URL"}


def label_of(model: type[models.Model], name: str) -> str:
    f = model._meta.get_field(name)
    label = str(getattr(f, "verbose_name", name.replace("_", " ")))
    label = " ".join(ACRONYMS.get(word, word) for word in label.split(" "))
    return label[:1].upper() + label[1:]


# --- Filters ------------------------------------------------------------------------------------


@dataclass
class FilterSpec:
    name: str
    label: str
    widget: str  # select | bool | text
    options: list[tuple[str, str]] = field(default_factory=list)


def _related_options(related: type[models.Model]) -> list[tuple[str, str]] | None:
    """(pk, name) of a related table, or None if it has more rows than OPTIONS_CAP."""
    rows = list(related._default_manager.all()[: OPTIONS_CAP + 1])
    if len(rows) > OPTIONS_CAP:
        return None
    return [(str(o.pk), name_of(o)) for o in rows]


def filter_specs(kind: RecordKind) -> list[FilterSpec]:
    """The filter bar of a kind: one small query per FK or indexed-text filter, whatever the rows."""
    model = kind.model
    specs = []
    for name in kind.filter_fields:
        f = model._meta.get_field(name)
        label = label_of(model, name)
        choices = getattr(f, "choices", None)
        if choices:
            specs.append(FilterSpec(name, label, "select", [(str(v), str(lbl)) for v, lbl in choices]))
        elif f.is_relation:
            options = _related_options(related_model(f))
            if options is None:
                specs.append(FilterSpec(name, f"{label} (name or id)", "text"))
            else:
                specs.append(FilterSpec(name, label, "select", options))
        elif isinstance(f, models.BooleanField):
            opts = [("yes", "Yes"), ("no", "No")] + ([("unknown", "Unknown")] if f.null else [])
            specs.append(FilterSpec(name, label, "bool", opts))
        elif isinstance(f, models.CharField) and f.db_index:  # type: ignore[attr-defined]  # not in django-stubs
            values = list(
                model._default_manager.order_by(name)
                .values_list(name, flat=True)
                .distinct()[: DISTINCT_CAP + 1]
            )
            if len(values) > DISTINCT_CAP:
                specs.append(FilterSpec(name, label, "text"))
            else:
                specs.append(FilterSpec(name, label, "select", [(v, v) for v in values if v]))
        else:
            specs.append(FilterSpec(name, label, "text"))
    return specs


def filterable(kind: RecordKind) -> set[str]:
    """Parameters a list accepts: the kind's filters plus every relation (for "view all" links)."""
    return set(_filterable(kind.slug))


@functools.cache
def _filterable(slug: str) -> tuple[str, ...]:
    """filterable(), sorted, worked out once per kind (every list request reads it)."""
    kind = KINDS[slug]
    model = kind.model
    relations = {f.name for f in model._meta.get_fields() if f.concrete and f.is_relation}
    relations |= {f.name for f in model._meta.many_to_many}
    return tuple(sorted(set(kind.filter_fields) | relations))


def _values(params: QueryDict | dict[str, Any], name: str) -> list[str]:
    raw = params.getlist(name) if hasattr(params, "getlist") else [params.get(name)]
    return [
        part.strip() for value in raw if value is not None for part in str(value).split(",") if part.strip()
    ]


def _related_ids(related: type[models.Model], values: list[str]) -> list[int] | None:
    """Ids for filter values given as ids, or as keys / names (INC0001, mx-01) of the related table."""
    ids = [int(v) for v in values if v.isdigit()]
    words = [v for v in values if not v.isdigit()]
    if words:
        kind = kind_for(related)
        names = {f.name for f in related._meta.concrete_fields}
        key = kind.key_field if kind and kind.key_field != "id" else None
        key = key or next((n for n in ("name", "username") if n in names), None)
        if key is None:
            return None
        found = list(related._default_manager.filter(**{f"{key}__in": words}).values_list("pk", flat=True))
        if not found:
            return None
        ids += found
    return ids


def _bool(text: str) -> bool | None | str:
    low = text.lower()
    if low in TRUE_WORDS:
        return True
    if low in FALSE_WORDS:
        return False
    if low in {"unknown", "none", "null"}:
        return None
    return "?"


def _day_start(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def _date_bound(kind: RecordKind, text: str, param: str, errors: dict[str, str]) -> Any:
    day = parse_date(text) if text else None
    if text and day is None:
        errors[param] = f"'{text}' is not a date (YYYY-MM-DD)."
        return None
    if day is None:
        return None
    f = kind.model._meta.get_field(kind.date_field)
    return _day_start(day) if isinstance(f, models.DateTimeField) else day


def sort_key(kind: RecordKind, sort: str) -> list[str] | None:
    """ORDER BY for a `sort` value: a list column, '-' for descending; FKs by the related name."""
    name = sort.lstrip("-")
    if name not in kind.list_fields and name not in {"pk", "id"}:
        return None
    desc = "-" if sort.startswith("-") else ""
    if name in {"pk", "id"}:
        return [f"{desc}pk"]
    f = kind.model._meta.get_field(name)
    if f.is_relation:
        related = related_model(f)
        related_kind = kind_for(related)
        key = related_kind.key_field if related_kind and related_kind.key_field != "id" else None
        if key is None and any(x.name == "name" for x in related._meta.concrete_fields):
            key = "name"
        if key is None and any(x.name == "username" for x in related._meta.concrete_fields):
            key = "username"
        name = f"{name}__{key}" if key else name
    return [f"{desc}{name}", f"{desc}pk"]


@dataclass(frozen=True)
class ListQuery:
    """The filters and order of a list request, checked: `shape` says which filters there are and
    how many values each takes, `values` gives those values in order. filtered() makes the
    queryset; two requests of one shape differ only in their values, so tikting.core.prepared
    compiles the SQL of a shape once and binds each request's values (list_page)."""

    shape: tuple[Any, ...]
    values: tuple[Any, ...]


def parse_filters(
    kind: RecordKind, params: QueryDict | dict[str, Any], using: str = DEFAULT_DB_ALIAS
) -> ListQuery:
    """The filters of a list request (parameters as apply_filters() takes them), checked: a bad
    value raises ValidationError naming it, as apply_filters() does."""
    model = kind.model
    errors: dict[str, str] = {}
    shape: list[Any] = []
    values: list[Any] = []
    for name in _filterable(kind.slug):
        given = _values(params, name)
        if not given:
            continue
        f = model._meta.get_field(name)
        assert isinstance(f, models.Field)  # the kind's filters and relations, never reverse ones
        if f.is_relation:
            if any(v.lower() == "none" for v in given):
                shape.append(("isnull", name))
                continue
            ids = _related_ids(related_model(f), given)
            if ids is None:
                errors[name] = "Give the id, number or name of the related record."
                continue
            shape.append(("in", name, len(ids), bool(f.many_to_many)))
            values += ids
        elif isinstance(f, models.BooleanField):
            parsed = [_bool(v) for v in given]
            if "?" in parsed:
                errors[name] = "Use yes, no or unknown."
                continue
            shape.append(("bool", name, tuple(parsed)))
        else:
            try:
                clean = [f.to_python(v) for v in given]
            except ValidationError:
                errors[name] = f"'{given[0]}' is not a valid value."
                continue
            if f.choices:
                allowed = {str(v) for v, _ in f.choices}
                bad = [v for v in given if v not in allowed]
                if bad:
                    errors[name] = f"Unknown value '{bad[0]}'; choose from {', '.join(sorted(allowed))}."
                    continue
            shape.append(("in", name, len(clean), False))
            values += clean
    q = (params.get("q") or "").strip()
    if q and kind.full_text:
        shape.append(("full_text",))
        values.append(kind.full_text.query(q, connections[using].vendor))
    elif q and kind.search_fields:
        shape.append(("search", q.isdigit()))
        values.append(q)
    if kind.date_field:
        lower = _date_bound(kind, (params.get("date_from") or "").strip(), "date_from", errors)
        upper = _date_bound(kind, (params.get("date_to") or "").strip(), "date_to", errors)
        if lower is not None:
            shape.append(("from",))
            values.append(lower)
        if upper is not None:
            shape.append(("to",))
            values.append(upper)
    sort = (params.get("sort") or "").strip()
    if not sort and q and kind.full_text:
        order: list[str] | None = [f"-{SEARCH_RANK}", DEFAULT_SORT]  # best matches first
    else:
        order = sort_key(kind, sort or DEFAULT_SORT)
    if order is None:
        errors["sort"] = f"Sort by one of: {', '.join(kind.list_fields)} (prefix '-' to reverse)."
        order = [DEFAULT_SORT]
    if errors:
        raise ValidationError(errors)
    shape.append(("order", tuple(order)))
    return ListQuery(tuple(shape), tuple(values))


def filtered(kind: RecordKind, qs: QuerySet, shape: tuple[Any, ...], values: tuple[Any, ...]) -> QuerySet:
    """`qs` filtered and ordered as a ListQuery of that shape and those values says."""
    model = kind.model
    rest = iter(values)
    for step in shape:
        what = step[0]
        if what == "isnull":
            qs = qs.filter(**{f"{step[1]}__isnull": True})
        elif what == "in":
            _what, name, count, many = step
            qs = qs.filter(**{f"{name}__in": [next(rest) for _ in range(count)]})
            if many:
                qs = qs.distinct()
        elif what == "bool":
            cond = Q()
            for p in step[2]:
                cond |= Q(**{f"{step[1]}__isnull": True}) if p is None else Q(**{step[1]: p})
            qs = qs.filter(cond)
        elif what == "full_text":
            assert kind.full_text is not None
            qs = kind.full_text.matching(qs, next(rest))
        elif what == "search":
            q = next(rest)
            cond = Q()
            for name in kind.search_fields:
                f = model._meta.get_field(name)
                if isinstance(f, models.CharField | models.TextField):
                    cond |= Q(**{f"{name}__icontains": q})
                elif step[1]:  # the text is a number
                    cond |= Q(**{name: int(q)})
            qs = qs.filter(cond)
        elif what == "from":
            qs = qs.filter(**{f"{kind.date_field}__gte": next(rest)})
        elif what == "to":
            upper = next(rest)
            if isinstance(model._meta.get_field(kind.date_field), models.DateTimeField):
                qs = qs.filter(**{f"{kind.date_field}__lt": upper + dt.timedelta(days=1)})
            else:
                qs = qs.filter(**{f"{kind.date_field}__lte": upper})
        elif what == "order":
            qs = qs.order_by(*step[1])
    return qs


def apply_filters(kind: RecordKind, qs: QuerySet, params: QueryDict | dict[str, Any]) -> QuerySet:
    """Filter a kind's queryset by request parameters; a bad value raises ValidationError naming it.

    Several values of one filter (repeated or comma-separated) are OR-ed, different filters AND-ed.
    `q` searches the kind's full-text index, best matches first (kind.full_text), or else its
    search fields by substring; `date_from` / `date_to` bound its date field (inclusive
    days), `sort` orders by a list column (default: newest first, by primary key).
    """
    query = parse_filters(kind, params, qs.db)
    return filtered(kind, qs, query.shape, query.values)


def list_queryset(kind: RecordKind) -> QuerySet:
    """The rows of a list: the FKs of its columns joined, so a row never queries on its own."""
    model = kind.model
    related = [
        name
        for name in kind.list_fields
        if model._meta.get_field(name).is_relation and not model._meta.get_field(name).many_to_many
    ]
    return model._default_manager.select_related(*related)


# --- Input from the API -------------------------------------------------------------------------


def json_type_error(f: models.Field[Any, Any] | models.ForeignObjectRel, value: Any) -> str | None:
    """Why a JSON value is not of the field's type (strict, as the other API bodies: 0 is not false,
    "2" is not 2, a number is not a date), or None. null is left to the field's own rule."""
    if value is None or f.is_relation:
        return None
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(f, models.BooleanField):
        return None if isinstance(value, bool) else "Give true or false."
    if isinstance(f, models.IntegerField):
        return None if number and isinstance(value, int) else "Give a whole number."
    if isinstance(f, models.DecimalField | models.FloatField):
        return None if number or isinstance(value, str) else "Give a number."
    if isinstance(f, models.DateField):  # DateTimeField too
        if isinstance(value, str) and ISO_DATE.match(value):
            return None
        return "Give the date as ISO 8601 text (2025-03-31, 2025-03-31T09:15:00Z); a number is not a date."
    if isinstance(f, models.CharField | models.TextField):
        return None if isinstance(value, str) else "Give text."
    return None


def coerce_payload(kind: RecordKind, data: dict[str, Any]) -> dict[str, Any]:
    """An API body (ids for relations, ISO text for dates) as model values; errors name the field.
    Each value must have its field's JSON type (json_type_error).

    Unknown fields are passed through: the service refuses them, naming them.
    """
    model = kind.model
    result: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, value in data.items():
        try:
            f = model._meta.get_field(name)
        except Exception:  # noqa: BLE001 - FieldDoesNotExist: the service names it
            result[name] = value
            continue
        problem = json_type_error(f, value)
        if problem:
            errors[name] = problem
            continue
        if f.many_to_many:
            if not isinstance(value, list):
                errors[name] = "Give a list of ids."
                continue
            found = list(
                related_model(f)._default_manager.filter(pk__in=[v for v in value if isinstance(v, int)])
            )
            if len(found) != len(set(value)):
                errors[name] = "Some ids do not exist."
                continue
            result[name] = found
        elif f.is_relation:
            if value in (None, ""):
                result[name] = None
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                errors[name] = "Give the id (a number) of the related record."
                continue
            related = related_model(f)
            obj = related._default_manager.filter(pk=int(value)).first()
            if obj is None:
                errors[name] = f"No {related._meta.verbose_name} with id {value}."
                continue
            result[name] = obj
        elif isinstance(f, models.DateTimeField) and isinstance(value, str) and value:
            parsed = parse_datetime(value)
            if parsed is None:
                day = parse_date(value)
                parsed = dt.datetime.combine(day, dt.time.min) if day else None
            if parsed is None:
                errors[name] = f"'{value}' is not a date and time (ISO 8601)."
                continue
            result[name] = timezone.make_aware(parsed) if timezone.is_naive(parsed) else parsed
        else:
            result[name] = value
    if errors:
        raise ValidationError(errors)
    return result


@dataclass(frozen=True)
class _Plan:
    """How a kind's records become JSON, worked out once per kind (not per record and field)."""

    columns: tuple[tuple[str, str, str], ...]  # (JSON name, attribute name, how: "" | "iso" | "str")
    many_to_many: tuple[str, ...]
    url: str  # the record page's address, with {pk}


@functools.cache
def _plan(slug: str) -> _Plan:
    kind = KINDS[slug]
    columns = []
    for f in kind.model._meta.concrete_fields:
        if f.primary_key:
            continue
        how = ""
        if not f.is_relation and isinstance(f, models.DateField):  # DateTimeField too
            how = "iso"
        elif isinstance(f, models.DecimalField):
            how = "str"
        columns.append((f.name, f.attname, how))
    marker = 918273645  # a pk no record has: the URL pattern is reversed once
    url = reverse("records:detail", args=[slug, marker]).replace(str(marker), "{pk}")
    return _Plan(tuple(columns), tuple(f.name for f in kind.model._meta.many_to_many), url)


def _json_value(value: Any, how: str) -> Any:
    if value is None or not how:
        return value
    return value.isoformat() if how == "iso" else str(value)


def serialize(kind: RecordKind, obj: models.Model) -> dict[str, Any]:
    """Every field of a record as JSON: relations by id, choices by value, dates in ISO 8601."""
    plan = _plan(kind.slug)
    data: dict[str, Any] = {"id": obj.pk, "kind": kind.slug, "key": key_of(kind, obj)}
    for name, attname, how in plan.columns:
        data[name] = _json_value(getattr(obj, attname), how)
    for name in plan.many_to_many:
        data[name] = [o.pk for o in getattr(obj, name).all()]
    data["url"] = plan.url.format(pk=obj.pk)
    return data


@functools.cache
def _by_ids(slug: str) -> Prepared[Any]:
    """Columns of a kind's records by id: its SELECT compiled once per database connection (and
    number of ids), with Django's own value converters. Building and compiling an incident's
    SELECT was most of the time of a read over the API."""
    model = KINDS[slug].model

    def build(attnames: tuple[str, ...], *ids: int) -> QuerySet:
        return model._default_manager.order_by().filter(pk__in=ids).values_list("pk", *attnames)

    return Prepared(build)


@functools.cache
def _selection(slug: str) -> Prepared[Any]:
    """Columns of a kind's records filtered and ordered as a list request asks (ListQuery): for
    each shape of request, its SQL compiled once per database connection."""
    kind = KINDS[slug]

    def build(shape: tuple[tuple[str, ...], tuple[Any, ...]], *values: Any) -> QuerySet:
        attnames, filters = shape
        return filtered(kind, kind.model._default_manager.all(), filters, values).values_list("pk", *attnames)

    return Prepared(build)


def field_names(kind: RecordKind) -> list[str]:
    """The JSON names of a record's fields (serialize() gives these, with id, kind, key and url)."""
    plan = _plan(kind.slug)
    return [name for name, _attname, _how in plan.columns] + list(plan.many_to_many)


def check_field_list(kind: RecordKind, text: str) -> tuple[str, ...] | None:
    """`fields=a,b` of a list request: the names, checked (an unknown one is an error naming it and
    the known ones); None for every field."""
    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not names:
        return None
    known = field_names(kind)
    unknown = [name for name in names if name not in known and name not in {"id", "kind", "key", "url"}]
    if unknown:
        raise ValidationError(
            {
                "fields": f"No field {', '.join(repr(n) for n in unknown)} on {kind.label_plural.lower()}; "
                f"known: {', '.join(known)}."
            }
        )
    return names


def serialize_ids(
    kind: RecordKind, ids: list[int], using: str = DEFAULT_DB_ALIAS, fields: tuple[str, ...] | None = None
) -> list[dict[str, Any]]:
    """serialize() for the records of `ids` (in that order; ids with no record are left out), read
    as plain values: no model instances, no joins. `fields` (checked by check_field_list) keeps
    those fields only, besides id, kind, key and url. For kinds without many-to-many fields (those
    are serialized from instances)."""
    if not ids:
        return []
    columns, attnames, key_index = _columns(kind, fields)
    rows = _by_ids(kind.slug).values(*ids, using=using, shape=tuple(attnames))
    by_id = {data["id"]: data for data in _rows_json(kind, rows, columns, key_index)}
    return [by_id[pk] for pk in ids if pk in by_id]


def _columns(
    kind: RecordKind, fields: tuple[str, ...] | None
) -> tuple[tuple[tuple[str, str, str], ...], list[str], int | None]:
    """The columns to serialize, the attribute names to read (the key's too, not returned) and
    where the key is among the values read (after the pk)."""
    plan = _plan(kind.slug)
    assert not plan.many_to_many, f"{kind.slug} has many-to-many fields: serialize() instances"
    columns = plan.columns if fields is None else tuple(c for c in plan.columns if c[0] in fields)
    attnames = [attname for _name, attname, _how in columns]
    key_attname = kind.key_field if kind.key_field != "id" else None
    if key_attname is not None and key_attname not in attnames:
        attnames.append(key_attname)  # read for "key", not returned
    key_index = attnames.index(key_attname) + 1 if key_attname is not None else None
    return columns, attnames, key_index


def _rows_json(
    kind: RecordKind,
    rows: list[tuple[Any, ...]],
    columns: tuple[tuple[str, str, str], ...],
    key_index: int | None,
) -> list[dict[str, Any]]:
    """Rows of (pk, values of `columns`…) as serialize() gives them."""
    names = [name for name, _attname, _how in columns]
    converted = [(i + 1, name, how) for i, (name, _attname, how) in enumerate(columns) if how]
    before, after = _plan(kind.slug).url.split("{pk}")
    slug = kind.slug
    result = []
    for row in rows:
        pk = row[0]
        key = str(row[key_index] or f"#{pk}") if key_index is not None else f"#{pk}"
        data: dict[str, Any] = {"id": pk, "kind": slug, "key": key}
        data.update(zip(names, row[1:], strict=False))  # the key read after them: left out
        for index, name, how in converted:
            data[name] = _json_value(row[index], how)
        data["url"] = f"{before}{pk}{after}"
        result.append(data)
    return result


def list_page(
    kind: RecordKind,
    query: ListQuery,
    *,
    offset: int,
    limit: int,
    fields: tuple[str, ...] | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> tuple[list[dict[str, Any]], int]:
    """A page of a list (serialize_ids() of its records, `fields` only when given) and how many
    records match in all. The page is one query, its count a second one, only when the page is
    full (a short page holds the last match); each compiled once per connection and shape of
    request (ListQuery) and run with the request's values. For kinds without many-to-many fields."""
    columns, attnames, key_index = _columns(kind, fields)
    selection = _selection(kind.slug)
    rows = selection.values(
        *query.values, using=using, shape=(tuple(attnames), query.shape), limit=limit, offset=offset
    )
    items = _rows_json(kind, rows, columns, key_index)
    if len(items) < limit and (items or not offset):
        return items, offset + len(items)
    return items, selection.count(*query.values, using=using, shape=((), query.shape))


def serialize_rows(
    kind: RecordKind, qs: QuerySet, fields: tuple[str, ...] | None = None
) -> list[dict[str, Any]]:
    """serialize_ids() for the records of `qs`, in its order: the filters, order and slice of
    `qs` select the ids (a one-column query), the rows are read by id."""
    return serialize_ids(kind, list(qs.values_list("pk", flat=True)), qs.db, fields)


# --- Forms --------------------------------------------------------------------------------------


class RecordRefField(forms.Field):
    """A reference to a record of a large table, typed as its key (INC0001, a CI's name) or #id."""

    def __init__(self, related: type[models.Model], *, multiple: bool = False, **kwargs: Any):
        self.related = related
        self.multiple = multiple
        kind = kind_for(related)
        self.key = kind.key_field if kind and kind.key_field != "id" else None
        hint = "its number or name" if self.key else "#id"
        kwargs.setdefault("help_text", f"Type {hint}{', separated by commas' if multiple else ''}.")
        super().__init__(**kwargs)

    def _one(self, text: str) -> models.Model:
        manager = self.related._default_manager
        obj = None
        if self.key:
            obj = manager.filter(**{self.key: text}).first()
        if obj is None and text.lstrip("#").isdigit():
            obj = manager.filter(pk=int(text.lstrip("#"))).first()
        if obj is None:
            raise ValidationError(f"No {self.related._meta.verbose_name} '{text}'.")
        return obj

    def to_python(self, value: Any) -> Any:
        text = (value or "").strip() if isinstance(value, str) else value
        if not text:
            return [] if self.multiple else None
        if isinstance(text, models.Model):
            return text
        if self.multiple:
            return [self._one(part.strip()) for part in str(text).split(",") if part.strip()]
        return self._one(str(text))

    def prepare_value(self, value: Any) -> Any:
        def one(v: Any) -> str:
            if isinstance(v, models.Model):
                return name_of(v) if self.key else f"#{v.pk}"
            if isinstance(v, int):
                obj = self.related._default_manager.filter(pk=v).first()
                return one(obj) if obj else str(v)
            return str(v or "")

        if self.multiple and isinstance(value, list | tuple | QuerySet):
            return ", ".join(one(v) for v in value)
        return one(value) if value not in (None, "") else ""

    def has_changed(self, initial: Any, data: Any) -> bool:
        return self.prepare_value(initial) != (data or "").strip()


class MinuteDateTimeField(forms.DateTimeField):
    """A time typed in a datetime-local input, which shows minutes: a stored time with seconds
    (an import's, a time written by the API) comes back from the form without them. Unchanged when
    it still shows the stored time, so an edit of another field keeps the seconds and the history
    does not record a change nobody made; a time the user changed is saved as typed."""

    def has_changed(self, initial: Any, data: Any) -> bool:
        if not super().has_changed(initial, data):
            return False
        try:
            value = self.to_python(data)
        except ValidationError:
            return True
        if not isinstance(value, dt.datetime) or not isinstance(initial, dt.datetime):
            return True
        if timezone.is_naive(initial):
            initial = timezone.make_aware(initial)
        shown = initial.replace(microsecond=0)
        if value.second == 0:  # typed or shown to the minute
            shown = shown.replace(second=0)
        return value != shown


def _formfield(f: models.Field) -> forms.Field | None:
    if f.many_to_many or f.is_relation:
        if _related_options(related_model(f)) is None:
            return RecordRefField(
                related_model(f),
                multiple=bool(f.many_to_many),
                required=not f.blank,
                label=label_of(f.model, f.name),
            )
        return None  # the default select
    if isinstance(f, models.DateTimeField):
        return f.formfield(
            form_class=MinuteDateTimeField,
            widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
            input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"],
        )
    if isinstance(f, models.DateField):
        return f.formfield(widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    if isinstance(f, models.TextField):
        return f.formfield(widget=forms.Textarea(attrs={"rows": 3}))
    if isinstance(f, models.JSONField):
        return f.formfield(widget=forms.Textarea(attrs={"rows": 3, "class": "font-monospace"}))
    return None


class RecordForm(forms.ModelForm):
    """Base of the generated forms: Bootstrap classes, and the version the user read."""

    expected_version = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        for f in self.fields.values():
            widget = f.widget
            if isinstance(widget, forms.HiddenInput):
                continue
            if isinstance(widget, forms.CheckboxInput):
                css = "form-check-input"
            elif isinstance(widget, forms.Select | forms.SelectMultiple):
                css = "form-select"
            else:
                css = "form-control"
            widget.attrs["class"] = f"{widget.attrs.get('class', '')} {css}".strip()
        if self.instance.pk and hasattr(self.instance, "version"):
            self.fields["expected_version"].initial = self.instance.version
        if not hasattr(self.instance, "version"):
            del self.fields["expected_version"]

    def record_fields(self) -> list[str]:
        return [name for name in self.fields if name != "expected_version"]

    def record_data(self, *, changed_only: bool) -> dict[str, Any]:
        names = self.record_fields()
        if changed_only:
            names = [n for n in names if n in self.changed_data]
        return {n: self.cleaned_data.get(n) for n in names}


def form_fields(kind: RecordKind) -> list[str]:
    """Editable fields of a kind in model order (the services accept exactly these)."""
    editable = _editable(kind)
    model = kind.model
    ordered = [f.name for f in model._meta.concrete_fields if f.name in editable]
    ordered += [f.name for f in model._meta.many_to_many if f.name in editable]
    origin = [n for n in ("source", "external_key") if n in ordered]  # where it came from: last
    return [n for n in ordered if n not in origin] + origin


def record_form_class(kind: RecordKind) -> type[RecordForm]:
    """A ModelForm for a kind: its editable fields (not kind.exclude_from_forms nor kind.derived)."""
    # a subclass of `form`; django-stubs says only type[ModelForm]
    return forms.modelform_factory(  # type: ignore[return-value]
        kind.model, form=RecordForm, fields=form_fields(kind), formfield_callback=_formfield_callback
    )


def _formfield_callback(f: models.Field, **kwargs: Any) -> forms.Field | None:
    return _formfield(f) or f.formfield(**kwargs)


__all__ = [
    "KINDS",
    "FilterSpec",
    "apply_filters",
    "coerce_payload",
    "display",
    "filter_specs",
    "list_queryset",
    "record_form_class",
    "serialize",
]
