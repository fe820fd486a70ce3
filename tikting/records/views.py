"""The generic ITSM record pages: one set of views for every kind in the registry (NetBox style).

`/records/` lists the kinds, `/records/<slug>/` filters, searches, sorts and pages one kind (htmx
swaps only the table), `/records/<slug>/<pk>/` shows a record with its related records, its
history and the improvement items linked to it; new / edit / delete go through the services of
tikting/core/records.py, which check permission, validate, audit and guard concurrent edits.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import models
from django.db.models.fields.reverse_related import ForeignObjectRel
from django.http import Http404, HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.dateparse import parse_datetime
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django_htmx.http import push_url

from tikting.core import audit
from tikting.core.audit import history_for
from tikting.core.bulk import parse_ids
from tikting.core.conflicts import Side, conflict_row, who
from tikting.core.exceptions import ConflictError, PermissionDeniedError
from tikting.core.models import AuditEntry
from tikting.lib import display as shown

from . import bulk as B
from . import export as X
from . import forms as F
from . import registry as R

RELATED_ROWS = 10  # rows of each related list on a record page; the rest is a link to the list
HISTORY_ROWS = 200
META_FIELDS = ("source", "external_key", "created_at", "updated_at", "version")
# When tikting stored and last changed the record: shown only when they say something the record's
# own dates do not (an imported incident's are its opened and closed times, or the import's).
STORED_AT = {"created_at": "Recorded in tikting", "updated_at": "Last changed in tikting"}
# Related records worth listing on a record page even though they are not a kind of their own.
EXTRA_RELATED = {"incidents.IncidentActivity"}


# --- Helpers ------------------------------------------------------------------------------------


def _kind(slug: str) -> R.RecordKind:
    kind = R.KINDS.get(slug)
    if kind is None:
        raise Http404(f"No record kind '{slug}'.")
    return kind


def _require_view(request: HttpRequest) -> None:
    if not R.can_view_records(request.user):
        raise PermissionDenied("You may not read ITSM records.")


def _messages(exc: ValidationError) -> list[str]:
    if hasattr(exc, "error_dict"):
        return [f"{name}: {' '.join(msgs)}" for name, msgs in exc.message_dict.items()]
    return list(exc.messages)


def _put_errors(form, exc: ValidationError) -> None:
    """A service's ValidationError onto the form: named fields inline, the rest on top."""
    if hasattr(exc, "error_dict"):
        for name, msgs in exc.message_dict.items():
            target = name if name in form.fields else None
            for msg in msgs:
                form.add_error(target, msg if target else f"{name.replace('_', ' ').capitalize()}: {msg}")
    else:
        for msg in exc.messages:
            form.add_error(None, msg)


def _detail_url(kind: R.RecordKind, pk: Any) -> str:
    return reverse("records:detail", args=[kind.slug, pk])


def _list_url(kind: R.RecordKind, query: str = "") -> str:
    return reverse("records:list", args=[kind.slug]) + (f"?{query}" if query else "")


def _perms(user, kind: R.RecordKind) -> dict[str, bool]:
    """What the page offers: only the buttons the user may use (the services check again)."""
    return {
        "can_edit": R.can_edit_records(user, kind),
        "can_delete": R.can_delete_records(user, kind),
        "can_raise": R.can_raise_from_records(user),
    }


# --- Index --------------------------------------------------------------------------------------


@login_required
@require_safe
def index(request: HttpRequest) -> HttpResponse:
    _require_view(request)
    kinds = [
        {
            "kind": kind,
            "count": kind.model._default_manager.count(),
            "url": _list_url(kind),
            "new_url": reverse("records:create", args=[kind.slug]),
            "can_create": R.can_edit_records(request.user, kind),
        }
        for kind in R.KINDS.values()
    ]
    return render(request, "records/index.html", {"kinds": kinds})


# --- List ---------------------------------------------------------------------------------------


def _read_query(request: HttpRequest, kind: R.RecordKind) -> QueryDict:
    """The list parameters a kind understands, non-empty only (canonical, for links)."""
    query = QueryDict(mutable=True)
    names = sorted(F.filterable(kind)) + ["q", "sort"]
    if kind.date_field:
        names += ["date_from", "date_to"]
    for name in names:
        values = [v.strip() for v in request.GET.getlist(name) if v.strip()]
        if values:
            query.setlist(name, values)
    return query


def _headers(kind: R.RecordKind, query: QueryDict) -> list[dict[str, Any]]:
    current = query.get("sort", F.DEFAULT_SORT)
    headers = []
    for name in kind.list_fields:
        active = current.lstrip("-") == name
        descending = active and current.startswith("-")
        target = f"-{name}" if active and not descending else name
        q = query.copy()
        q["sort"] = target
        q.pop("page", None)
        headers.append(
            {
                "name": name,
                "label": F.label_of(kind.model, name),
                "active": active,
                "descending": descending,
                "url": "?" + q.urlencode(),
            }
        )
    return headers


def _rows(kind: R.RecordKind, objects: list[models.Model]) -> list[dict[str, Any]]:
    rows = []
    for obj in objects:
        url = _detail_url(kind, obj.pk)
        cells = []
        for i, name in enumerate(kind.list_fields):
            f = kind.model._meta.get_field(name)
            text = F.display(obj, name) if name != "id" else f"#{obj.pk}"
            link = url if i == 0 else ""
            if not link and f.is_relation and text:
                related = getattr(obj, name)
                link = F.record_url(related) if related is not None else ""
            cells.append(
                {
                    "text": text,
                    "url": link,
                    "numeric": isinstance(f, models.IntegerField | models.FloatField | models.DecimalField)
                    and not f.choices
                    and not f.is_relation,
                }
            )
        rows.append({"pk": obj.pk, "url": url, "cells": cells})
    return rows


def _render(
    request: HttpRequest, full: str, partial: str, context: dict[str, Any], *, canonical: str, status=200
):
    htmx = getattr(request, "htmx", None)
    if htmx and not htmx.boosted and not htmx.history_restore_request:
        response = render(request, partial, context, status=status)
        push_url(response, canonical)
    else:
        response = render(request, full, context, status=status)
    patch_vary_headers(response, ("HX-Request",))
    return response


@login_required
@require_safe
def record_list(request: HttpRequest, slug: str) -> HttpResponse:
    kind = _kind(slug)
    _require_view(request)
    query = _read_query(request, kind)
    errors: list[str] = []
    try:
        qs = F.apply_filters(kind, F.list_queryset(kind), query)
    except ValidationError as exc:
        errors = _messages(exc)
        qs = F.list_queryset(kind).none()
    paginator = Paginator(qs, F.PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    specs = F.filter_specs(kind)
    shown = {s.name for s in specs}
    # Filters set by a link (e.g. "all incidents of this problem") that the bar does not show.
    hidden = [
        {"name": name, "label": F.label_of(kind.model, name), "value": query.get(name)}
        for name in sorted(F.filterable(kind) - shown)
        if query.get(name)
    ]
    date_label = F.label_of(kind.model, kind.date_field) if kind.date_field else ""
    page_query = query.copy()
    canonical_query = query.copy()
    if page.number > 1:
        canonical_query["page"] = str(page.number)
    context = {
        "kind": kind,
        "query": query,
        "filters": [{"spec": s, "value": query.get(s.name, "")} for s in specs],
        "hidden_filters": hidden,
        "date_label": date_label,
        "errors": errors,
        "page": page,
        "rows": _rows(kind, list(page.object_list)),
        "headers": _headers(kind, query),
        "page_range": list(paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1)),
        "ellipsis": Paginator.ELLIPSIS,
        "page_query": page_query.urlencode(),
        "active": any(name != "sort" for name in query),
        "list_url": _list_url(kind),
        "api_url": f"/api/records/{kind.slug}",
        "list_key": f"records:{kind.slug}",
        "bulk_url": reverse("records:bulk", args=[kind.slug]),
        "bulk_actions": B.offered(kind) if R.can_edit_records(request.user, kind) else [],
        **_perms(request.user, kind),
    }
    canonical = _list_url(kind, canonical_query.urlencode())
    return _render(
        request,
        "records/list.html",
        "records/list_table.html",
        context,
        canonical=canonical,
        status=400 if errors else 200,
    )


@login_required
@require_safe
def record_export(request: HttpRequest, slug: str) -> HttpResponse | StreamingHttpResponse:
    """The list as CSV: the rows its filters (and sort) select, every one, streamed."""
    kind = _kind(slug)
    _require_view(request)
    try:
        qs = F.apply_filters(kind, kind.model._default_manager.all(), _read_query(request, kind))
    except ValidationError as exc:
        return HttpResponse("\n".join(_messages(exc)), status=400, content_type="text/plain; charset=utf-8")
    return X.response(kind, qs)


@login_required
@require_POST
def record_bulk(request: HttpRequest, slug: str) -> HttpResponse | StreamingHttpResponse:
    """One action on the selected rows, record by record; or the selected rows as CSV."""
    kind = _kind(slug)
    action = request.POST.get("action", "")
    if action == "export":
        _require_view(request)
    elif not R.can_edit_records(request.user, kind):
        raise PermissionDenied(f"You may not change {kind.label_plural.lower()}.")
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, {request.get_host()}, require_https=False):
        back = ""
    back = back or _list_url(kind)
    try:
        ids = parse_ids(request.POST.getlist("ids"))
        if action == "export":
            return X.response(
                kind, kind.model._default_manager.filter(pk__in=ids).order_by("pk"), suffix="-selected"
            )
        result = B.run(kind, action, ids, request.POST.get(action, ""), actor=request.user)
    except ValidationError as exc:
        return render(request, "bulk/result.html", {"errors": _messages(exc), "back": back}, status=400)
    return render(request, "bulk/result.html", {"result": result, "back": back})


# --- Detail -------------------------------------------------------------------------------------


def _field_groups(kind: R.RecordKind, obj: models.Model) -> list[dict[str, Any]]:
    """All fields, grouped: the record, its people and links, its dates, its long texts, its origin."""
    groups: dict[str, list[dict[str, Any]]] = {
        "Record": [],
        "Relations": [],
        "Dates": [],
        "Text": [],
        "Origin": [],
    }
    model = kind.model
    shown_times = _own_times(obj)
    for f in model._meta.concrete_fields:
        if f.primary_key or f.name == "raw":
            continue
        if f.name in STORED_AT and not _worth_showing(obj, f.name, shown_times):
            continue
        text = F.display(obj, f.name, limit=None)
        url = ""
        if f.is_relation:
            related = getattr(obj, f.name)
            url = F.record_url(related) if related is not None else ""
            group = "Relations"
        elif f.name in META_FIELDS:
            group = "Origin"
        elif isinstance(f, models.DateField):
            group = "Dates"
        elif isinstance(f, models.TextField):
            group = "Text"
        else:
            group = "Record"
        label = STORED_AT.get(f.name) or F.label_of(model, f.name)
        groups[group].append({"label": label, "text": text, "url": url, "name": f.name})
    for f in model._meta.many_to_many:
        related = list(getattr(obj, f.name).all()[:50])
        groups["Relations"].append(
            {
                "label": F.label_of(model, f.name),
                "many": [{"text": F.name_of(o), "url": F.record_url(o)} for o in related],
                "text": "",
                "url": "",
                "name": f.name,
            }
        )
    return [
        {"title": title, "fields": fields, "empty": [f["label"] for f in fields if not f["text"]]}
        for title, fields in groups.items()
        if fields
    ]


def _own_times(obj: models.Model) -> set[str]:
    """The record's own dates and times (opened, resolved, due …) as the page shows them."""
    return {
        F.compact(value)
        for f in obj._meta.concrete_fields
        if isinstance(f, models.DateField) and f.name not in STORED_AT
        for value in [getattr(obj, f.attname)]
        if value is not None
    }


def _worth_showing(obj: models.Model, name: str, own_times: set[str]) -> bool:
    """created_at / updated_at, unless the page already shows that time (an incident opened and
    recorded at once) or, for updated_at, it is the time the record was stored."""
    value = getattr(obj, name, None)
    if value is None:
        return False
    text = F.compact(value)
    if text in own_times:
        return False
    return not (name == "updated_at" and text == F.compact(getattr(obj, "created_at", None) or ""))


def _related(kind: R.RecordKind, obj: models.Model) -> list[dict[str, Any]]:
    """Reverse relations to other records (problem → incidents, CI → incidents, changes …)."""
    sections = []
    for rel in kind.model._meta.get_fields():
        if not isinstance(rel, ForeignObjectRel):  # reverse relations only
            continue
        if not (rel.auto_created and not rel.concrete and (rel.one_to_many or rel.many_to_many)):
            continue
        related_model = rel.related_model
        related_kind = R.kind_for(related_model)
        if related_kind is None and related_model._meta.label not in EXTRA_RELATED:
            continue
        accessor = rel.get_accessor_name()
        if not accessor or accessor.endswith("+"):
            continue
        manager = getattr(obj, accessor)
        qs = manager.all()
        if related_kind is not None:
            qs = qs.order_by("-pk")
        total = qs.count()
        if not total:
            continue
        rows = []
        for other in qs[:RELATED_ROWS]:
            if related_kind is not None:
                title = related_kind.title_of(other)
                date = getattr(other, related_kind.date_field, None) if related_kind.date_field else None
                rows.append(
                    {
                        "key": F.key_of(related_kind, other),
                        "title": "" if title == F.key_of(related_kind, other) else title,
                        "url": _detail_url(related_kind, other.pk),
                        "date": F.compact(date) if date else "",
                        "status": other.get_status_display() if hasattr(other, "get_status_display") else "",
                    }
                )
            else:
                date = next((getattr(other, n) for n in ("at", "opened_at") if hasattr(other, n)), None)
                rows.append(
                    {
                        "key": "",
                        # its kind and note; the time is in its own column (not twice)
                        "title": " · ".join(
                            str(v)
                            for v in (getattr(other, "activity_type", ""), getattr(other, "note", ""))
                            if v
                        )
                        or str(other),
                        "url": "",
                        "date": F.compact(date) if date else "",
                        "status": "",
                    }
                )
        # "View all": the related kind's list filtered by the field pointing here.
        all_url = ""
        if related_kind is not None and total > RELATED_ROWS:
            all_url = _list_url(related_kind, f"{rel.field.name}={obj.pk}")
        label = str(related_model._meta.verbose_name_plural)
        field_label = rel.field.name.replace("_", " ")
        if field_label not in (kind.slug.replace("-", " "), kind.label.lower(), kind.model._meta.model_name):
            label = f"{label} ({field_label})"
        sections.append(
            {"label": label[:1].upper() + label[1:], "count": total, "rows": rows, "all_url": all_url}
        )
    return sections


def _history(obj: models.Model) -> list[dict[str, Any]]:
    """Audit rows as people read them: relations by name, choices by label, compact times.

    One query for the rows, then one per related table named in them (not one per row).
    """
    model = type(obj)
    entries = list(history_for(obj).order_by("-at", "-id")[:HISTORY_ROWS])
    fields = {f.name: f for f in model._meta.concrete_fields}
    wanted: dict[str, set[Any]] = {}
    for entry in entries:
        for name, pair in _pairs(entry):
            f = fields.get(name)
            if f is not None and f.is_relation:
                wanted.setdefault(name, set()).update(v for v in pair if v not in (None, ""))
    names = _related_names(fields, wanted)
    result = []
    for entry in entries:
        changes = []
        for name, (old, new) in _pairs(entry):
            if name in {"created_at", "updated_at"}:
                continue
            if entry.action == "create" and new in (None, "", {}, []):
                continue  # a new record's empty fields say nothing
            f = fields.get(name)
            label = F.label_of(model, name) if f is not None else name
            changes.append(
                {
                    "field": label,
                    "old": _short(_human(f, old, names.get(name, {}))),
                    "new": _short(_human(f, new, names.get(name, {}))),
                }
            )
        result.append({"entry": entry, "changes": changes})
    return result


def _related_names(fields: dict[str, Any], wanted: dict[str, set[Any]]) -> dict[str, dict[str, str]]:
    """The names of the related records by field and id (as text): one query per related table."""
    return {
        name: {
            str(pk): F.name_of(o)
            for pk, o in R.related_model(fields[name])._default_manager.in_bulk(list(ids)).items()
        }
        for name, ids in wanted.items()
    }


def _pairs(entry) -> list[tuple[str, tuple[Any, Any]]]:
    raw = entry.changes if isinstance(entry.changes, dict) else {}
    return [
        (name, tuple(pair) if isinstance(pair, list | tuple) and len(pair) == 2 else (None, pair))
        for name, pair in raw.items()
    ]


def _human(f: models.Field | None, value: Any, names: dict[Any, str]) -> Any:
    if value in (None, "") or f is None:
        return value
    if f.is_relation:
        return names.get(str(value), f"#{value}")
    if f.choices:
        return {str(k): v for k, v in f.choices}.get(str(value), value)
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(f, models.DateField):  # kept in the history as ISO text; datetimes too
        return shown.when(value)
    if isinstance(f, models.DecimalField):
        return shown.number(value)
    return value


def _short(value: Any) -> str:
    if value is None or value == "":
        return "—"
    text = str(value)
    return text if len(text) <= 120 else text[:119] + "…"


def _get(kind: R.RecordKind, pk: int, *, full: bool = False) -> models.Model:
    model = kind.model
    qs = model._default_manager.all()
    if full:
        fks = [f.name for f in model._meta.concrete_fields if f.is_relation]
        qs = qs.select_related(*fks)
    return get_object_or_404(qs, pk=pk)


@login_required
@require_safe
def record_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    kind = _kind(slug)
    _require_view(request)
    obj = _get(kind, pk, full=True)
    raw = getattr(obj, "raw", None)
    raw_rows = sorted(raw.items()) if isinstance(raw, dict) else []
    raise_url = reverse("improvement:submit") + f"?record={kind.slug}:{obj.pk}"
    context = {
        "kind": kind,
        "obj": obj,
        "key": F.key_of(kind, obj),
        "title": kind.title_of(obj),
        "groups": _field_groups(kind, obj),
        "raw_rows": raw_rows,
        "raw_other": raw if raw and not isinstance(raw, dict) else None,
        "related": _related(kind, obj),
        "history": _history(obj),
        "links": R.links_to(obj),
        "raise_url": raise_url,
        "list_url": _list_url(kind),
        "api_url": f"/api/records/{kind.slug}/{obj.pk}",
        **_perms(request.user, kind),
    }
    return render(request, "records/detail.html", context)


# --- Create, edit, delete -----------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def record_create(request: HttpRequest, slug: str) -> HttpResponse:
    kind = _kind(slug)
    if not R.can_edit_records(request.user, kind):
        raise PermissionDenied(f"You may not create {kind.label_plural.lower()}.")
    form_class = F.record_form_class(kind)
    form = form_class(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            obj = R.create_record(kind, actor=request.user, **form.record_data(changed_only=False))
        except PermissionDeniedError as exc:
            raise PermissionDenied(str(exc)) from exc
        except ValidationError as exc:
            _put_errors(form, exc)
        else:
            messages.success(request, f"{kind.label} {F.key_of(kind, obj)} created.")
            return redirect(_detail_url(kind, obj.pk))
    context = {"kind": kind, "form": form, "obj": None, "list_url": _list_url(kind)}
    return render(request, "records/form.html", context, status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def record_edit(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    kind = _kind(slug)
    if not R.can_edit_records(request.user, kind):
        raise PermissionDenied(f"You may not edit {kind.label_plural.lower()}.")
    obj = _get(kind, pk)
    form_class = F.record_form_class(kind)
    context: dict[str, Any] = {
        "kind": kind,
        "obj": obj,
        "key": F.key_of(kind, obj),
        "list_url": _list_url(kind),
    }
    if request.method != "POST":
        return render(request, "records/form.html", {**context, "form": form_class(instance=obj)})
    # The form validates a copy: `obj` stays as saved, for the service and the conflict message.
    form = form_class(request.POST, instance=_get(kind, pk))
    if form.is_valid():
        changes = form.record_data(changed_only=True)
        expected = form.cleaned_data.get("expected_version")
        if not changes:
            messages.info(request, f"Nothing to save: {F.key_of(kind, obj)} is unchanged.")
            return redirect(_detail_url(kind, obj.pk))
        try:
            R.update_record(obj, actor=request.user, expected_version=expected, **changes)
        except PermissionDeniedError as exc:
            raise PermissionDenied(str(exc)) from exc
        except ConflictError as exc:
            merged, conflict = _conflict(kind, form, exc.obj, expected)
            context.update(form=merged, conflict=conflict)
            return render(request, "records/form.html", context, status=409)
        except ValidationError as exc:
            _put_errors(form, exc)
        else:
            messages.success(request, f"{kind.label} {F.key_of(kind, obj)} saved.")
            return redirect(_detail_url(kind, obj.pk))
    return render(request, "records/form.html", {**context, "form": form}, status=400)


def _opened(obj: models.Model, expected: int | None) -> tuple[dict[str, Any], list[AuditEntry]]:
    """The record's fields (audit.snapshot form) as the user opened it, at version `expected`: the
    current values with the changes saved since undone, newest first, from the audit trail; and
    those changes (each save adds one to the version and writes one entry)."""
    values = audit.snapshot(obj)
    newer = max(0, getattr(obj, "version", 0) - int(expected or 0))
    entries = list(
        AuditEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(obj, for_concrete_model=False),
            object_id=str(obj.pk),
            action=AuditEntry.Action.UPDATE,
        )
        .select_related("actor")
        .order_by("-at", "-id")[:newer]
    )
    for entry in entries:
        for name, (old, _new) in _pairs(entry):
            values[name] = old
    return values, entries


def _conflict(
    kind: R.RecordKind, form: F.RecordForm, current: models.Model, expected: int | None
) -> tuple[F.RecordForm, dict[str, Any]]:
    """A save refused because someone saved first, field by field (tikting/core/conflicts.py): as
    the user opened it (from the audit trail), their change, the user's; and the form merged
    (their values where the user left a field alone) against the current version."""
    opened, entries = _opened(current, expected)
    saved = audit.snapshot(current)
    fields = {f.name: f for f in kind.model._meta.concrete_fields}
    names = [n for n in form.record_fields() if n in fields]
    yours = {n: audit.plain(form.cleaned_data.get(n)) for n in names}
    ids: dict[str, set[Any]] = {}
    for n in names:
        if fields[n].is_relation:
            ids[n] = {v for v in (opened.get(n), saved.get(n), yours[n]) if v not in (None, "")}
    labels = _related_names(fields, ids)
    rows, initial = [], {}
    for n in names:
        f = fields[n]

        def side(value: Any, f: models.Field = f, n: str = n) -> Side:
            return Side(_same(f, value), _short(_human(f, value, labels.get(n, {}))))

        row = conflict_row(
            form.fields[n].label or F.label_of(kind.model, n),
            opened=side(opened.get(n)),
            theirs=side(saved.get(n)),
            yours=side(yours[n]),
        )
        if row is not None:
            rows.append(row)
            if row["you_changed"]:
                initial[n] = form.cleaned_data.get(n)
    merged = type(form)(instance=current, initial=initial)
    conflict = {
        "rows": rows,
        "by": who([F.name_of(e.actor) if e.actor else "the system" for e in entries]),
        "at": entries[0].at if entries else None,
        "version": getattr(current, "version", None),
    }
    return merged, conflict


def _same(f: models.Field, value: Any) -> Any:
    """A field's value in a form that compares across versions: empty is None, times by instant."""
    if value in (None, ""):
        return None
    if isinstance(f, models.DateTimeField) and isinstance(value, str):  # to the minute, as the form
        parsed = parse_datetime(value)
        if parsed is None:
            return value
        return (parsed.astimezone(dt.UTC) if timezone.is_aware(parsed) else parsed).replace(
            second=0, microsecond=0
        )
    if isinstance(f, models.DecimalField | models.FloatField):
        return shown.number(value)
    if isinstance(value, str):
        return value.replace("\r\n", "\n").strip()
    return value


@login_required
@require_http_methods(["GET", "POST"])
def record_delete(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    kind = _kind(slug)
    if not R.can_delete_records(request.user, kind):
        raise PermissionDenied(f"You may not delete {kind.label_plural.lower()}.")
    obj = _get(kind, pk)
    key = F.key_of(kind, obj)
    error = ""
    if request.method == "POST":
        try:
            R.delete_record(obj, actor=request.user)
        except PermissionDeniedError as exc:
            raise PermissionDenied(str(exc)) from exc
        except ValidationError as exc:
            error = " ".join(_messages(exc))
        else:
            messages.success(request, f"{kind.label} {key} deleted.")
            return redirect(_list_url(kind))
    counts = [{"label": s["label"], "count": s["count"]} for s in _related(kind, obj)]
    context = {
        "kind": kind,
        "obj": obj,
        "key": key,
        "title": kind.title_of(obj),
        "related_counts": counts,
        "error": error,
    }
    return render(request, "records/delete.html", context, status=400 if error else 200)


__all__ = [
    "index",
    "record_bulk",
    "record_export",
    "record_create",
    "record_delete",
    "record_detail",
    "record_edit",
    "record_list",
]
