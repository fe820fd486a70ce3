"""Governance pages: the review agenda, review meetings with their minutes, the practice dashboard.

Views parse input, check permission, call a service, render. Every signed-in user with a role
reads the agenda and the dashboard; only improvement managers plan reviews and record minutes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.middleware import HtmxDetails

from tikting.attachments.services import counts as attachment_lists
from tikting.core.exceptions import ConflictError, PermissionDeniedError
from tikting.improvement import choices as IC
from tikting.improvement import metrics as M
from tikting.improvement import permissions as P
from tikting.improvement.models import Item

from . import services as S
from .agenda import SECTION_KEYS, added_since_circulation, attach_minutes, build_agenda, closed_since
from .forms import (
    AttendanceForm,
    DashboardFilterForm,
    MeetingActionForm,
    MinuteForm,
    MinuteTextForm,
    ReviewMeetingForm,
    UndoAcceptanceForm,
)
from .models import MeetingAction, Minute, ReviewMeeting, ReviewStatus
from .notices import agenda_notices


class HtmxHttpRequest(HttpRequest):
    """A request as django_htmx's middleware (settings.MIDDLEWARE) leaves it: with `htmx`."""

    htmx: HtmxDetails


def _require(allowed: bool, what: str) -> None:
    if not allowed:
        raise PermissionDenied(f"You may not {what}.")


def _apply_errors(form, exc: ValidationError) -> None:
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


def _meeting_for(request: HttpRequest) -> ReviewMeeting | None:
    """The meeting minutes are recorded in: ?meeting=<id>, else the latest planned review."""
    pk = request.GET.get("meeting", "")
    if pk.isdigit():
        return get_object_or_404(ReviewMeeting, pk=int(pk))
    return (
        ReviewMeeting.objects.filter(status__in=[ReviewStatus.PLANNED, ReviewStatus.CIRCULATED])
        .order_by("-scheduled_for", "-id")
        .first()
    )


def _agenda_context(request: HttpRequest, meeting: ReviewMeeting | None) -> dict[str, Any]:
    now = timezone.now()
    since, last_held = closed_since(now)
    sections = build_agenda(request.user, now=now, since=since)
    attach_minutes(sections, meeting)
    return {
        "sections": sections,
        "notices": agenda_notices(now),
        "meeting": meeting,
        "since": since,
        "last_held": last_held,
        "now": now,
        "can_manage": P.can_manage(request.user),
        # reversed once, not once per row
        "minute_new_url": reverse("governance:minute_new", args=[meeting.pk]) if meeting else "",
    }


# --- The agenda ---------------------------------------------------------------------------------


@login_required
@require_GET
def agenda(request: HttpRequest) -> HttpResponse:
    _require(P.can_view(request.user), "read the review agenda")
    context = _agenda_context(request, _meeting_for(request))
    context["new_meeting_form"] = ReviewMeetingForm(initial={"title": S.default_title()})
    return render(request, "governance/agenda.html", context)


# --- Review meetings ----------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def review_list(request: HttpRequest) -> HttpResponse:
    _require(P.can_view(request.user), "read register reviews")
    form = ReviewMeetingForm(request.POST or None, initial={"title": S.default_title()})
    if request.method == "POST":
        _require(P.can_manage(request.user), "plan register reviews")
        if form.is_valid():
            data = {k: v for k, v in form.cleaned_data.items() if k != "version"}
            try:
                meeting = S.create_review(actor=request.user, **data)
            except PermissionDeniedError as exc:
                raise PermissionDenied(str(exc)) from exc
            except ValidationError as exc:
                _apply_errors(form, exc)
            else:
                messages.success(request, f"“{meeting}” started: record decisions against the agenda items.")
                next_url = request.POST.get("next", "")
                if next_url and url_has_allowed_host_and_scheme(
                    next_url, {request.get_host()}, require_https=request.is_secure()
                ):
                    return redirect(f"{next_url.split('?')[0]}?meeting={meeting.pk}")
                return redirect(meeting)
    meetings = (
        ReviewMeeting.objects.select_related("chair")
        .annotate(minute_count=Count("minutes"))
        .order_by("-scheduled_for", "-id")
    )
    return render(
        request,
        "governance/review_list.html",
        {"meetings": meetings, "form": form, "can_manage": P.can_manage(request.user)},
        status=400 if form.errors else 200,
    )


def _minutes_by_item(meeting: ReviewMeeting) -> list[dict[str, Any]]:
    """The meeting's minutes grouped by item, items in the order first discussed (one query),
    each item as the minutes recorded it (reference, title, status, owner at the time: the record,
    not today's register). Amendments sit under the minute they amend (`amendment_list`)."""
    minutes = list(meeting.minutes.select_related("actor").order_by("at", "id"))  # one meeting's
    amendments: dict[int, list[Minute]] = {}
    for minute in minutes:
        if minute.amends_id:
            amendments.setdefault(minute.amends_id, []).append(minute)
    groups: dict[int, dict[str, Any]] = {}
    files = attachment_lists([m for m in minutes if not m.amends_id])  # one query for all
    for minute in minutes:
        if minute.amends_id:
            continue
        minute.amendment_list = amendments.get(minute.pk, [])  # type: ignore[attr-defined]
        minute.attachment_list = files.get(minute.pk, [])  # type: ignore[attr-defined]
        group = groups.setdefault(
            minute.item_id,
            {
                "item_id": minute.item_id,
                "ref": minute.item_ref,
                "title": minute.item_title,
                "status": minute.item_status_label,
                "owner": minute.item_owner,
                "minutes": [],
            },
        )
        group["minutes"].append(minute)
    return list(groups.values())


def _action_items(meeting: ReviewMeeting) -> list[MeetingAction]:
    """The meeting's action items with the register's current state of each (one query)."""
    return list(
        meeting.action_items.select_related("owner", "item", "action", "action__item").order_by("at", "id")
    )


def _review_context(request: HttpRequest, meeting: ReviewMeeting, **forms: Any) -> dict[str, Any]:
    can_manage = P.can_manage(request.user)
    editable = can_manage and not meeting.is_closed
    attendees = list(meeting.attendees.order_by("first_name", "last_name", "username"))
    apologies = list(meeting.apologies.order_by("first_name", "last_name", "username"))
    context = {
        "meeting": meeting,
        "minutes_by_item": _minutes_by_item(meeting),
        "attendees": attendees,
        "apologies": apologies,
        "action_items": _action_items(meeting),
        "today": timezone.localdate(),
        "can_manage": can_manage,
        "can_edit_minutes": editable,
        "can_amend": can_manage and meeting.is_closed,
        "minute_forms": forms.get("minute_forms", {}),
        **{k: v for k, v in forms.items() if k != "minute_forms"},
    }
    if editable:
        context.setdefault(
            "attendance_form",
            AttendanceForm(
                initial={"attendees": attendees, "apologies": apologies, "version": meeting.version}
            ),
        )
        context.setdefault("action_form", MeetingActionForm())
    if meeting.is_circulated:  # live until held, then frozen with the review
        context["added_since"] = added_since_circulation(meeting, now=timezone.now(), user=request.user)
    elif meeting.agenda and meeting.circulated_at:
        context["added_since_frozen"] = meeting.agenda.get("added_since_circulation", [])
    return context


def _review_page(
    request: HttpRequest, meeting: ReviewMeeting, status: int = 200, **forms: Any
) -> HttpResponse:
    forms.setdefault("form", _meeting_form(meeting))
    return render(
        request, "governance/review_detail.html", _review_context(request, meeting, **forms), status=status
    )


def _meeting_form(meeting: ReviewMeeting) -> ReviewMeetingForm:
    form = ReviewMeetingForm(instance=meeting)
    if meeting.is_closed:
        for field in form.fields.values():
            field.disabled = True
    return form


@login_required
@require_http_methods(["GET", "POST"])
def review_detail(request: HttpRequest, pk: int) -> HttpResponse:
    _require(P.can_view(request.user), "read register reviews")
    meeting = get_object_or_404(ReviewMeeting.objects.select_related("chair", "created_by"), pk=pk)
    form = _meeting_form(meeting)
    if request.method == "POST":
        _require(P.can_manage(request.user), "edit register reviews")
        form = ReviewMeetingForm(request.POST)  # no instance: the service applies the changes
        if form.is_valid():
            data = dict(form.cleaned_data)
            version = data.pop("version", None)
            try:
                S.update_review(meeting, actor=request.user, expected_version=version, **data)
            except PermissionDeniedError as exc:
                raise PermissionDenied(str(exc)) from exc
            except ConflictError as exc:
                form.add_error(None, str(exc))
                return _review_page(request, meeting, status=409, form=form)
            except ValidationError as exc:
                _apply_errors(form, exc)
            else:
                messages.success(request, "Review updated.")
                return redirect(meeting)
    return _review_page(request, meeting, status=400 if form.errors else 200, form=form)


@login_required
@require_POST
def review_attendance(request: HttpRequest, pk: int) -> HttpResponse:
    """Who attends and who sent apologies (managers, until the review is closed)."""
    _require(P.can_manage(request.user), "record who attends register reviews")
    meeting = get_object_or_404(ReviewMeeting.objects.select_related("chair"), pk=pk)
    form = AttendanceForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            S.set_attendance(
                meeting,
                actor=request.user,
                attendees=list(data["attendees"]),
                apologies=list(data["apologies"]),
                expected_version=data["version"],
            )
        except ConflictError as exc:
            form.add_error(None, str(exc))
            return _review_page(request, meeting, status=409, attendance_form=form)
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, "Attendance recorded.")
            return redirect(f"{meeting.get_absolute_url()}#attendance")
    return _review_page(request, meeting, status=422, attendance_form=form)


@login_required
@require_POST
def review_circulate(request: HttpRequest, pk: int) -> HttpResponse:
    """Freeze the agenda and circulate it to the attendees (managers, before the meeting)."""
    _require(P.can_manage(request.user), "circulate review agendas")
    meeting = get_object_or_404(ReviewMeeting, pk=pk)
    link = request.build_absolute_uri(reverse("governance:review_print", args=[meeting.pk]))
    try:
        meeting = S.circulate_agenda(meeting, actor=request.user, link=link)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        emailed = sum(1 for r in meeting.circulated_to if r.get("emailed"))
        messages.success(
            request,
            f"Agenda of “{meeting}” frozen and circulated to {len(meeting.circulated_to)} "
            f"({emailed} by e-mail). Items submitted from now on show as added since circulation.",
        )
    return redirect(meeting)


@login_required
@require_POST
def review_action_create(request: HttpRequest, pk: int) -> HttpResponse:
    """An action item of the meeting: a register action on an item, or a new register item."""
    _require(P.can_manage(request.user), "record action items of register reviews")
    meeting = get_object_or_404(ReviewMeeting.objects.select_related("chair"), pk=pk)
    form = MeetingActionForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        item = None
        if data["item"] is not None:
            item = Item.objects.visible_to(request.user).filter(pk=data["item"]).first()
            if item is None:
                form.add_error("item", f"No register item CI-{data['item']:05d}.")
        if not form.errors:
            try:
                entry = S.record_meeting_action(
                    meeting,
                    actor=request.user,
                    title=data["title"],
                    owner=data["owner"],
                    due_date=data["due_date"],
                    item=item,
                )
            except PermissionDeniedError as exc:
                raise PermissionDenied(str(exc)) from exc
            except ValidationError as exc:
                _apply_errors(form, exc)
            else:
                what = "a new register item" if entry.raised_item else "an action"
                messages.success(request, f"Action item recorded as {what} on {entry.item_ref}.")
                return redirect(f"{meeting.get_absolute_url()}#actions")
    return _review_page(request, meeting, status=422, action_form=form)


def _review_step(
    request: HttpRequest, pk: int, step: Callable[..., ReviewMeeting], what: str, done: str
) -> HttpResponse:
    """Hold or close a review (managers): the review page again, with what happened or why not."""
    _require(P.can_manage(request.user), what)
    meeting = get_object_or_404(ReviewMeeting, pk=pk)
    try:
        step(meeting, actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"“{meeting}” {done}")
    return redirect(meeting)


@login_required
@require_POST
def review_hold(request: HttpRequest, pk: int) -> HttpResponse:
    return _review_step(
        request,
        pk,
        S.hold_review,
        "hold register reviews",
        "marked as held: its agenda is kept as it is now.",
    )


@login_required
@require_POST
def review_close(request: HttpRequest, pk: int) -> HttpResponse:
    return _review_step(
        request,
        pk,
        S.close_review,
        "close register reviews",
        "closed: its minutes are final; later changes are amendments.",
    )


@login_required
@require_GET
def review_print(request: HttpRequest, pk: int) -> HttpResponse:
    """The review on paper: attendance, action items (their state now), its minutes as recorded
    and, once circulated or held, the agenda frozen then (ReviewMeeting.agenda), never today's
    register, with what was added since circulation beside it; a planned review shows the agenda
    as it would be generated now, and says so. Every reader (every invitee) opens it."""
    _require(P.can_view(request.user), "read register reviews")
    meeting = get_object_or_404(ReviewMeeting.objects.select_related("chair"), pk=pk)
    context: dict[str, Any] = {
        "meeting": meeting,
        "minutes_by_item": _minutes_by_item(meeting),
        "attendees": list(meeting.attendees.order_by("first_name", "last_name", "username")),
        "apologies": list(meeting.apologies.order_by("first_name", "last_name", "username")),
        "action_items": _action_items(meeting),
        "today": timezone.localdate(),
    }
    if meeting.is_planned:
        context.update(_agenda_context(request, meeting))
        context["can_manage"] = False  # paper has no buttons
    elif meeting.agenda:
        context["frozen"] = meeting.agenda
        if meeting.is_circulated:
            context["added_since"] = added_since_circulation(meeting, now=timezone.now(), user=request.user)
        else:
            context["added_since_frozen"] = meeting.agenda.get("added_since_circulation", [])
    return render(request, "governance/review_print.html", context)


# --- Minutes of a review: edit until closed, amend after, undo an acceptance ------------------


def _minute_of(request: HttpRequest, pk: int, minute_pk: int) -> Minute:
    _require(P.can_manage(request.user), "change review minutes")
    return get_object_or_404(Minute.objects.select_related("meeting", "item"), pk=minute_pk, meeting_id=pk)


def _minute_refused(request: HttpRequest, minute: Minute, form, exc: ValidationError) -> HttpResponse:
    _apply_errors(form, exc)
    return _review_page(request, minute.meeting, status=422, minute_forms={minute.pk: form})


@login_required
@require_POST
def minute_edit(request: HttpRequest, pk: int, minute_pk: int) -> HttpResponse:
    """Correct a minute's words (until the review is closed) or, once closed, amend it."""
    minute = _minute_of(request, pk, minute_pk)
    form = MinuteTextForm(request.POST, prefix=f"minute{minute.pk}")
    if form.is_valid():
        amend = minute.meeting.is_closed
        call = S.amend_minute if amend else S.edit_minute
        try:
            call(minute, actor=request.user, text=form.cleaned_data["text"])
        except ValidationError as exc:
            return _minute_refused(request, minute, form, exc)
        messages.success(request, f"Minute on {minute.item_ref} {'amended' if amend else 'corrected'}.")
    return redirect(f"{minute.meeting.get_absolute_url()}#minute-{minute.pk}")


@login_required
@require_POST
def minute_undo_accept(request: HttpRequest, pk: int, minute_pk: int) -> HttpResponse:
    minute = _minute_of(request, pk, minute_pk)
    form = UndoAcceptanceForm(request.POST, prefix=f"undo{minute.pk}")
    if form.is_valid():
        try:
            S.undo_acceptance(minute, actor=request.user, reason=form.cleaned_data["reason"])
        except ValidationError as exc:
            return _minute_refused(request, minute, form, exc)
        messages.success(request, f"Acceptance of {minute.item_ref} undone: it is back for assessment.")
    return redirect(f"{minute.meeting.get_absolute_url()}#minute-{minute.pk}")


# --- Minutes, inline on the agenda ---------------------------------------------------------------


def _agenda_row(request: HttpRequest, meeting: ReviewMeeting, item: Item, section: str) -> HttpResponse:
    rows = Item.objects.select_related("owner", "service")
    if section == "measurement_due":
        rows = rows.with_last_measured()
    item = rows.get(pk=item.pk)
    # a row attribute for the template, as agenda.attach_minutes gives every agenda row
    item.meeting_minutes = list(meeting.minutes.filter(item=item).order_by("at", "id"))  # type: ignore[attr-defined]
    return render(
        request,
        "governance/partials/agenda_row.html",
        {
            "item": item,
            "section": section,
            "meeting": meeting,
            "can_manage": P.can_manage(request.user),
            "minute_new_url": reverse("governance:minute_new", args=[meeting.pk]),
        },
    )


def _section(value: str) -> str:
    return value if value in SECTION_KEYS else ""


@login_required
@require_GET
def minute_new(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The decision form for one agenda item: a table row (htmx) or a page of its own."""
    _require(P.can_manage(request.user), "record review minutes")
    meeting = get_object_or_404(ReviewMeeting, pk=pk)
    item = get_object_or_404(Item.objects.visible_to(request.user), pk=request.GET.get("item") or 0)
    section = _section(request.GET.get("section", ""))
    if request.GET.get("cancel") and request.htmx:
        return _agenda_row(request, meeting, item, section)
    initial_kind = "accept" if item.status in {IC.Status.NEW, IC.Status.DEFERRED} else "continue"
    form = MinuteForm(
        initial={"item": item.pk, "section": section, "kind": initial_kind, "owner": item.owner_id}
    )
    template = "governance/partials/minute_form_row.html" if request.htmx else "governance/minute_form.html"
    return render(request, template, {"form": form, "meeting": meeting, "item": item, "section": section})


@login_required
@require_GET
def agenda_row(request: HttpRequest, pk: int) -> HttpResponse:
    _require(P.can_view(request.user), "read the review agenda")
    meeting = get_object_or_404(ReviewMeeting, pk=pk)
    item = get_object_or_404(Item.objects.visible_to(request.user), pk=request.GET.get("item") or 0)
    return _agenda_row(request, meeting, item, _section(request.GET.get("section", "")))


@login_required
@require_POST
def minute_create(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Record a decision (service: record_minute). htmx gets the agenda row back, or the form with
    its errors; a plain form post is redirected to the agenda."""
    _require(P.can_manage(request.user), "record review minutes")
    meeting = get_object_or_404(ReviewMeeting, pk=pk)
    form = MinuteForm(request.POST)
    item = None
    if form.is_valid():
        item = Item.objects.visible_to(request.user).filter(pk=form.cleaned_data["item"]).first()
        if item is None:
            form.add_error("item", "No such item.")
    if item is not None and form.is_valid():
        data = form.cleaned_data
        try:
            S.record_minute(
                meeting,
                actor=request.user,
                item=item,
                kind=data["kind"],
                text=data["text"],
                revisit_date=data["revisit_date"],
                owner=data["owner"],
            )
        except PermissionDeniedError as exc:
            raise PermissionDenied(str(exc)) from exc
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            if request.htmx:
                return _agenda_row(request, meeting, item, _section(data.get("section", "")))
            messages.success(request, f"Decision recorded for {item.ref}.")
            anchor = f"#section-{data['section']}" if data.get("section") else ""
            return redirect(f"{reverse('governance:agenda')}?meeting={meeting.pk}{anchor}")
    section = _section(request.POST.get("section", ""))
    context = {"form": form, "meeting": meeting, "item": item, "section": section}
    if request.htmx and item is not None:
        # htmx swaps 2xx responses only: the row with its errors comes back as 200.
        return render(request, "governance/partials/minute_form_row.html", context)
    return render(request, "governance/minute_form.html", context, status=400)


# --- The practice dashboard -----------------------------------------------------------------------


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    _require(P.can_view(request.user), "read the practice dashboard")
    form = DashboardFilterForm(request.GET or None)
    filters: dict[str, Any] = {}
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        filters = {
            "practice": data["practice"] or None,
            "service": data["service"],
            "start": data["start"],
            "end": data["end"],
        }
    metrics = M.practice_metrics(**filters)
    outcome_labels, benefit_labels = dict(IC.Outcome.choices), dict(IC.BenefitCategory.choices)
    for row in metrics["outcomes"]["items"]:  # at most 50 rows: labels for display
        row["outcome_label"] = outcome_labels.get(row["outcome"], row["outcome"])
        row["benefit_label"] = benefit_labels.get(row["benefit_category"], row["benefit_category"])
    chart_data = {
        "months": [row["month"] for row in metrics["created_vs_closed"]],
        "created": [row["created"] for row in metrics["created_vs_closed"]],
        "closed": [row["closed"] for row in metrics["created_vs_closed"]],
        "status": _series(metrics["by_status"], IC.Status),
        "quadrant": _series(metrics["by_quadrant"], IC.Quadrant),
        "outcome": _series(metrics["outcomes"]["by_outcome"], IC.Outcome),
        "benefit": _series(metrics["outcomes"]["by_benefit"], IC.BenefitCategory),
    }
    return render(
        request,
        "governance/dashboard.html",
        {"form": form, "m": metrics, "chart_data": chart_data, "filtered": any(filters.values())},
    )


def _series(counts: dict[str, int], choices) -> dict[str, list]:
    labels = dict(choices.choices)
    return {
        "keys": list(counts),
        "labels": [str(labels.get(key, key)) for key in counts],
        "values": list(counts.values()),
    }


urlpatterns = [
    path("agenda/", agenda, name="agenda"),
    path("reviews/", review_list, name="review_list"),
    path("reviews/<int:pk>/", review_detail, name="review_detail"),
    path("reviews/<int:pk>/hold/", review_hold, name="review_hold"),
    path("reviews/<int:pk>/close/", review_close, name="review_close"),
    path("reviews/<int:pk>/print/", review_print, name="review_print"),
    path("reviews/<int:pk>/attendance/", review_attendance, name="review_attendance"),
    path("reviews/<int:pk>/circulate/", review_circulate, name="review_circulate"),
    path("reviews/<int:pk>/actions/", review_action_create, name="review_action_create"),
    path("reviews/<int:pk>/minutes/<int:minute_pk>/edit/", minute_edit, name="minute_edit"),
    path(
        "reviews/<int:pk>/minutes/<int:minute_pk>/undo-acceptance/",
        minute_undo_accept,
        name="minute_undo_accept",
    ),
    path("reviews/<int:pk>/minutes/", minute_create, name="minute_create"),
    path("reviews/<int:pk>/minutes/new/", minute_new, name="minute_new"),
    path("reviews/<int:pk>/row/", agenda_row, name="agenda_row"),
    path("dashboard/", dashboard, name="dashboard"),
]
