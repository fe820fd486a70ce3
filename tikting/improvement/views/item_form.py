"""The forms of an item: submit an opportunity (also raised from an ITSM record), create with
every field (managers), edit.

Writes go through services; permission failures become 403, validation errors go back onto the
form, a concurrent save becomes a conflict page (a three-way merge) that overwrites nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.views.decorators.http import require_http_methods

from tikting.accounts.models import User
from tikting.cmdb.models import Service
from tikting.core.conflicts import Side, conflict_row, who
from tikting.core.exceptions import ConflictError, PermissionDeniedError
from tikting.core.models import AuditEntry
from tikting.lib import display

from .. import choices as C
from .. import permissions as P
from .. import services as S
from ..forms import ItemForm, ItemSubmitForm, comparable, initial_for, widget_value
from ..models import Item
from .register import _forbidden


def _put_errors(form, exc: ValidationError) -> None:
    """A service's ValidationError onto the form: named fields inline, the rest on top."""
    if hasattr(exc, "error_dict"):
        for name, msgs in exc.message_dict.items():
            target = name if name in form.fields and not form.fields[name].disabled else None
            for msg in msgs:
                form.add_error(target, msg if target else f"{name.replace('_', ' ').capitalize()}: {msg}")
    else:
        for msg in exc.messages:
            form.add_error(None, msg)


SUBMIT_RECORD_SESSION_KEY = "tk_submit_record"


def _source_record(ref: str) -> tuple[str, Any] | None:
    """`<slug>:<pk>` (from a record page's "Raise an improvement") as (ref, record), or None."""
    from tikting.records import registry as R

    slug, _, pk = (ref or "").partition(":")
    kind = R.KINDS.get(slug)
    if kind is None or not pk.isdigit():
        return None
    record = kind.model._default_manager.filter(pk=int(pk)).first()
    return (f"{slug}:{pk}", record) if record is not None else None


def _record_initial(ref: str, record: Any) -> dict[str, Any]:
    """An item raised from a record: title and description from it, its practice and service, the
    source channel its kind and content say (an incident: major, SLA missed …), and its reference."""
    from tikting.records import registry as R

    kind = R.KINDS[ref.partition(":")[0]]
    service = record if isinstance(record, Service) else getattr(record, "service", None)
    return {
        **kind.improvement_draft(record),
        "practice": kind.practice,
        "service": service.pk if service is not None else None,
        "source_reference": f"{kind.label} {kind.key_of(record)}"[:300],
    }


@login_required
@require_http_methods(["GET", "POST"])
def submit(request: HttpRequest) -> HttpResponse:
    """Submit an opportunity. `?record=<slug>:<pk>` (or `record` in the body) raises it from an
    ITSM record: the form is pre-filled from the registry and the new item is linked to the record.
    The submit template posts without the query string, so a GET remembers the record in the
    session and the POST uses it while the reference still names that record."""
    if not P.can_submit(request.user):
        raise _forbidden("submit an improvement opportunity")
    source = _source_record(request.GET.get("record") or request.POST.get("record") or "")
    if source is None and request.method == "POST":
        remembered = _source_record(request.session.get(SUBMIT_RECORD_SESSION_KEY, ""))
        if (
            remembered
            and request.POST.get("source_reference", "") == _record_initial(*remembered)["source_reference"]
        ):
            source = remembered
    if request.method == "GET":
        if source is not None:
            request.session[SUBMIT_RECORD_SESSION_KEY] = source[0]
            messages.info(
                request, f"Raising an improvement from {_record_initial(*source)['source_reference']}."
            )
        else:
            request.session.pop(SUBMIT_RECORD_SESSION_KEY, None)
    form = ItemSubmitForm(request.POST or None, initial=_record_initial(*source) if source else None)
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():  # an item raised from a record is never left unlinked
                item = S.create_item(actor=request.user, **form.item_data())
                if source is not None:
                    S.link_source(item, actor=request.user, record=source[1])
        except PermissionDeniedError as exc:
            raise PermissionDenied(str(exc)) from exc
        except ValidationError as exc:
            _put_errors(form, exc)
        else:
            request.session.pop(SUBMIT_RECORD_SESSION_KEY, None)
            messages.success(
                request,
                f"Thank you: {item.ref} is in the register. An improvement manager will assess it; "
                "you can follow it under My items.",
            )
            return redirect(item.get_absolute_url())
    return render(
        request,
        "improvement/submit.html",
        {"form": form, "quadrants": C.Quadrant.choices, "record_ref": source[0] if source else ""},
        status=400 if form.errors else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def create(request: HttpRequest) -> HttpResponse:
    if not P.can_manage(request.user):
        raise _forbidden("create items with every field (use Submit an opportunity)")
    form = ItemForm(request.POST or None, can_manage=True)
    if request.method == "POST" and form.is_valid():
        try:
            item = S.create_item(actor=request.user, **form.item_data())
        except PermissionDeniedError as exc:
            raise PermissionDenied(str(exc)) from exc
        except ValidationError as exc:
            _put_errors(form, exc)
        else:
            messages.success(request, f"{item.ref} created. It is New until assessed.")
            return redirect(item.get_absolute_url())
    return render(
        request,
        "improvement/item_form.html",
        {"form": form, "item": None, "quadrants": C.Quadrant.choices},
        status=400 if form.errors else 200,
    )


RELATED = {"owner": User, "service": Service}


def _display(form: ItemForm, name: str, value: Any) -> str:
    """A field value as a person reads it: people by their name, services by name, choices by
    label, dates in the UI's format (a saved owner may no longer be one the form offers)."""
    if value in (None, ""):
        return "—"
    if name in RELATED:
        record = value if hasattr(value, "pk") else RELATED[name]._default_manager.filter(pk=value).first()
        return str(record) if record is not None else "—"
    if name == "parent":
        pk = getattr(value, "pk", value)
        return f"CI-{int(pk):05d}"
    choices = dict(getattr(form.fields[name], "choices", []) or [])
    if isinstance(value, str) and value in choices:
        return str(choices[value])
    text = display.when(value) if isinstance(value, dt.date) else display.number(value)
    return text if len(text) <= 160 else text[:157] + "…"


def _conflict(request: HttpRequest, form: ItemForm, current: Item) -> tuple[ItemForm, list[dict[str, Any]]]:
    """Three-way merge of a refused save: what the user opened, what is saved now, what they typed.

    Fields only the other person changed take the saved value; fields the user changed keep the
    user's value (marked where both changed them). Nothing is written: the user reviews and saves
    again, now against the current version.
    """
    data = request.POST.copy()
    rows = []
    for name in form.item_fields():
        if form.fields[name].disabled:
            value = widget_value(name, _current_value(current, name))
            data[name] = value
            data[f"initial-{name}"] = value
            continue
        opened_raw = form.opened_value(name)
        theirs_raw = _current_value(current, name)
        yours_raw = form.cleaned_data.get(name)
        opened, theirs, yours = (comparable(name, v) for v in (opened_raw, theirs_raw, yours_raw))
        if theirs != opened and yours == opened:
            data[name] = widget_value(name, theirs_raw)
        row = conflict_row(
            form.fields[name].label or name.replace("_", " ").capitalize(),
            opened=Side(opened, _display(form, name, opened_raw)),
            theirs=Side(theirs, _display(form, name, theirs_raw)),
            yours=Side(yours, _display(form, name, yours_raw)),
        )
        if row is not None:
            rows.append(row)
        data[f"initial-{name}"] = widget_value(name, theirs_raw)
    data["expected_version"] = str(current.version)
    merged = ItemForm(data, can_manage=P.can_manage(request.user), track_changes=True)
    return merged, rows


def _current_value(item: Item, name: str) -> Any:
    if name in {"service", "owner", "parent"}:
        return getattr(item, f"{name}_id")
    return getattr(item, name)


@login_required
@require_http_methods(["GET", "POST"])
def edit(request: HttpRequest, pk: int) -> HttpResponse:
    item = get_object_or_404(Item.objects.visible_to(request.user).select_related("owner", "service"), pk=pk)
    if not P.can_edit(request.user, item):
        raise _forbidden(f"edit {item.ref}")
    if item.read_only:
        messages.warning(request, S.read_only_message(item, "edit it"))
        return redirect(item.get_absolute_url())
    can_manage = P.can_manage(request.user)
    context: dict[str, Any] = {"item": item, "quadrants": C.Quadrant.choices}
    if request.method != "POST":
        form = ItemForm(initial=initial_for(item), can_manage=can_manage, track_changes=True)
        return render(request, "improvement/item_form.html", {**context, "form": form})
    form = ItemForm(request.POST, initial=initial_for(item), can_manage=can_manage, track_changes=True)
    if form.is_valid():
        changes = form.changed_item_data()
        expected = form.cleaned_data.get("expected_version")
        if not changes:
            messages.info(request, f"Nothing to save: {item.ref} is unchanged.")
            return redirect(item.get_absolute_url())
        try:
            S.update_item(item, actor=request.user, expected_version=expected, **changes)
        except PermissionDeniedError as exc:
            raise PermissionDenied(str(exc)) from exc
        except ConflictError as exc:
            current = exc.obj
            merged, rows = _conflict(request, form, current)
            last = (
                AuditEntry.objects.filter(
                    content_type=ContentType.objects.get_for_model(Item), object_id=str(item.pk)
                )
                .select_related("actor")
                .order_by("-at", "-id")
                .first()
            )
            context.update(
                form=merged,
                conflict={
                    "rows": rows,
                    "by": who([str(last.actor)] if last and last.actor else []),
                    "at": last.at if last else None,
                    "version": current.version,
                    "yours": expected,
                },
            )
            return render(request, "improvement/item_form.html", context, status=409)
        except ValidationError as exc:
            _put_errors(form, exc)
        else:
            messages.success(request, f"{item.ref} saved.")
            return redirect(item.get_absolute_url())
    return render(request, "improvement/item_form.html", {**context, "form": form}, status=400)


urlpatterns = [
    path("submit/", submit, name="submit"),
    path("new/", create, name="create"),
    path("<int:pk>/edit/", edit, name="edit"),
]
