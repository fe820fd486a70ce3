"""Sprint pages: the history with velocity, planning, the board, time logs, the review.

Views parse input, check permission, call a service, render. Everyone with a role reads; the
services decide who plans, moves and logs (permissions.py).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Sum
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from tikting.accounts.models import Team, User
from tikting.core.audit import history_for
from tikting.core.exceptions import ConflictError, PermissionDeniedError
from tikting.lib import display

from . import calendar as cal
from . import permissions as P
from . import services as S
from .capacity import capacity, flag_below
from .forms import AddItemForm, MoveForm, ReviewForm, SprintForm, TimeLogForm
from .leadership import leadership
from .models import CalendarFeed, Column, Sprint, SprintItem, TimeLog, max_items
from .outcomes import outcomes_report, render_report
from .results import measured_result, velocity


def _require(allowed: bool, what: str) -> None:
    if not allowed:
        raise PermissionDenied(f"You may not {what}.")


SPRINTS_PER_PAGE = 25


def _apply_errors(form: Any, exc: ValidationError) -> None:
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


def _form_errors(form: Any) -> str:
    return "; ".join(f"{field}: {' '.join(str(e) for e in errors)}" for field, errors in form.errors.items())


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


@login_required
@require_http_methods(["GET", "POST"])
def sprint_list(request: HttpRequest) -> HttpResponse:
    """Sprint history (newest first) with each sprint's figures, velocity, and the plan form."""
    _require(P.can_view(request.user), "read improvement sprints")
    form = SprintForm(request.POST or None)
    if request.method == "POST":
        _require(P.can_plan(request.user), "plan improvement sprints")
        if form.is_valid():
            try:
                sprint = S.create_sprint(actor=request.user, **form.cleaned_data)
            except PermissionDeniedError as exc:
                raise PermissionDenied(str(exc)) from exc
            except ValidationError as exc:
                _apply_errors(form, exc)
            else:
                messages.success(request, f"“{sprint}” planned: add the register items it works on.")
                return redirect(sprint)
    team_id = request.GET.get("team", "")
    sprints = Sprint.objects.select_related("team").with_figures()
    team = None
    if team_id.isdigit():
        team = get_object_or_404(Team, pk=int(team_id))
        sprints = sprints.filter(team=team)
    page = Paginator(sprints, SPRINTS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "cadence/sprint_list.html",
        {
            "sprints": page.object_list,
            "page": page,
            "velocity": velocity(sprints),
            "teams": Team.objects.all(),
            "team": team,
            "form": form,
            "can_plan": P.can_plan(request.user),
        },
        status=400 if form.errors else 200,
    )


def _board(sprint: Sprint) -> list[dict[str, Any]]:
    cards = (
        sprint.cards.select_related("item", "item__owner")
        .annotate(hours_logged=Sum("time_logs__hours"))
        .order_by("position", "id")
    )
    by_column: dict[str, list[SprintItem]] = {value: [] for value in Column.values}
    for card in cards:
        by_column[card.column].append(card)
    return [{"key": value, "label": label, "cards": by_column[value]} for value, label in Column.choices]


@login_required
@require_http_methods(["GET", "POST"])
def sprint_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The sprint board, its scope and time, and (planners) adding items and starting it."""
    _require(P.can_view(request.user), "read improvement sprints")
    sprint = get_object_or_404(Sprint.objects.select_related("team"), pk=pk)
    add_form = AddItemForm(request.POST or None, sprint=sprint)
    if request.method == "POST":
        _require(P.can_plan(request.user), "plan improvement sprints")
        if add_form.is_valid():
            try:
                card = S.add_sprint_item(sprint, actor=request.user, **add_form.cleaned_data)
            except PermissionDeniedError as exc:
                raise PermissionDenied(str(exc)) from exc
            except ValidationError as exc:
                _apply_errors(add_form, exc)
            else:
                messages.success(request, f"{card.item.ref} added to “{sprint}”.")
                return redirect(sprint)
    can_log_others = P.can_log_for_others(request.user)
    logs = TimeLog.objects.filter(card__sprint=sprint).select_related("user", "card__item")
    return render(
        request,
        "cadence/sprint_detail.html",
        {
            "sprint": sprint,
            "columns": _board(sprint),
            "column_choices": Column.choices,
            "add_form": add_form,
            "log_form": TimeLogForm(can_log_for_others=can_log_others),
            "scope_warning": S.scope_warning(sprint, adding=1),
            "max_items": max_items(),
            "totals": {
                "planned": sprint.cards.aggregate(t=Sum("planned_hours"))["t"],
                "logged": logs.aggregate(t=Sum("hours"))["t"],
            },
            "logs": logs[:50],
            "history": history_for(sprint)[:30],
            "can_plan": P.can_plan(request.user) and not sprint.is_closed,
            "can_work": P.can_work(request.user, sprint) and not sprint.is_closed,
            "can_log": not sprint.is_closed and request.user.has_role("contributor"),  # type: ignore[union-attr]
        },
        status=400 if add_form.errors else 200,
    )


@login_required
@require_POST
def sprint_start(request: HttpRequest, pk: int) -> HttpResponse:
    sprint = get_object_or_404(Sprint, pk=pk)
    version = request.POST.get("expected_version", "")
    try:
        S.start_sprint(
            sprint, actor=request.user, expected_version=int(version) if version.isdigit() else None
        )
    except PermissionDeniedError as exc:
        raise PermissionDenied(str(exc)) from exc
    except ConflictError as exc:
        messages.error(request, str(exc))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"“{sprint}” started.")
    return redirect(sprint)


@login_required
@require_POST
def card_move(request: HttpRequest, pk: int) -> HttpResponse:
    """Move a card (drag and drop sends JSON-accepting fetches; the keyboard's select posts a form)."""
    card = get_object_or_404(SprintItem.objects.select_related("sprint", "item"), pk=pk)
    form = MoveForm(request.POST)
    status, text = 200, ""
    if not form.is_valid():
        status, text = 400, _form_errors(form)
    else:
        try:
            card = S.move_card(card, actor=request.user, **form.cleaned_data)
            text = f"{card.item.ref} moved to {card.get_column_display()}."
        except PermissionDeniedError as exc:
            raise PermissionDenied(str(exc)) from exc
        except ConflictError as exc:
            status, text = 409, str(exc)
        except ValidationError as exc:
            status, text = 400, " ".join(exc.messages)
    if _wants_json(request):
        body = {"message": text, "version": card.version} if status == 200 else {"error": text}
        return JsonResponse(body, status=status)
    (messages.success if status == 200 else messages.error)(request, text)
    return redirect(card.sprint)


@login_required
@require_POST
def card_log(request: HttpRequest, pk: int) -> HttpResponse:
    """Log hours on a card (for oneself; managers may name someone else)."""
    card = get_object_or_404(SprintItem.objects.select_related("sprint", "item"), pk=pk)
    form = TimeLogForm(request.POST, can_log_for_others=P.can_log_for_others(request.user))
    if form.is_valid():
        try:
            entry = S.log_time(card, actor=request.user, **form.cleaned_data)
        except PermissionDeniedError as exc:
            raise PermissionDenied(str(exc)) from exc
        except ValidationError as exc:
            messages.error(request, " ".join(f"{card.item.ref}: {m}" for m in exc.messages))
        else:
            messages.success(request, f"{display.number(entry.hours)} h logged on {card.item.ref}.")
    else:
        messages.error(request, _form_errors(form))
    return redirect(card.sprint)


@login_required
@require_POST
def card_remove(request: HttpRequest, pk: int) -> HttpResponse:
    card = get_object_or_404(SprintItem.objects.select_related("sprint", "item"), pk=pk)
    sprint = card.sprint
    try:
        S.remove_sprint_item(card, actor=request.user)
    except PermissionDeniedError as exc:
        raise PermissionDenied(str(exc)) from exc
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"{card.item.ref} taken out of “{sprint}”.")
    return redirect(sprint)


@login_required
@require_http_methods(["GET", "POST"])
def sprint_review(request: HttpRequest, pk: int) -> HttpResponse:
    """The sprint review: what changed, the measured result per item, a decision for each."""
    sprint = get_object_or_404(Sprint.objects.select_related("team"), pk=pk)
    _require(P.can_plan(request.user), "hold sprint reviews")
    if sprint.is_closed:
        messages.info(request, f"“{sprint}” has been reviewed.")
        return redirect(sprint)
    form = ReviewForm(request.POST or None, sprint=sprint)
    if request.method == "POST" and form.is_valid():
        try:
            S.review_sprint(
                sprint,
                actor=request.user,
                what_changed=form.cleaned_data["what_changed"],
                decisions=form.decisions(),
                next_sprint=form.cleaned_data["next_sprint"],
                expected_version=form.cleaned_data["expected_version"],
            )
        except PermissionDeniedError as exc:
            raise PermissionDenied(str(exc)) from exc
        except ConflictError as exc:
            form.add_error(None, str(exc))
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, f"“{sprint}” reviewed and closed.")
            return redirect(sprint)
    rows = form.rows()
    for row in rows:
        row["result"] = measured_result(row["card"].item)
    return render(
        request,
        "cadence/sprint_review.html",
        {"sprint": sprint, "form": form, "rows": rows},
        status=400 if form.errors else 200,
    )


@login_required
@require_GET
def capacity_page(request: HttpRequest) -> HttpResponse:
    """Protected capacity: per team and month, improvement hours planned against logged."""
    _require(P.can_view(request.user), "read improvement capacity")
    today = timezone.localdate()
    teams = capacity(today=today, months=6)
    return render(
        request,
        "cadence/capacity.html",
        {
            "teams": teams,
            "months": teams[0].months if teams else [],
            "flagged": [t for t in teams if t.flagged],
            "flag_below": flag_below() * 100,
            "today": today,
        },
    )


@login_required
@require_GET
def leadership_page(request: HttpRequest) -> HttpResponse:
    """The leadership view (improvement managers and administrators)."""
    _require(P.can_lead(request.user), "read the leadership view")
    return render(request, "cadence/leadership.html", leadership())


@login_required
@require_GET
def outcomes_page(request: HttpRequest) -> HttpResponse:
    """What improved in a quarter (?period=2026-Q3; default this quarter): anyone signed in."""
    _require(P.can_view(request.user), "read the outcomes")
    error = ""
    try:
        context = outcomes_report(request.GET.get("period") or None)
    except ValueError as exc:
        error = f"period: {exc}"
        context = outcomes_report(None)
    return render(request, "cadence/outcomes.html", {**context, "error": error}, status=400 if error else 200)


@login_required
@require_GET
def outcomes_file(request: HttpRequest, fmt: str) -> HttpResponse:
    """The outcomes report of a quarter as a file to download (PDF or standalone HTML), as
    `tikting report outcomes` writes it: anyone signed in."""
    _require(P.can_view(request.user), "read the outcomes")
    try:
        context = outcomes_report(request.GET.get("period") or None)
    except ValueError as exc:
        return HttpResponse(f"period: {exc}", status=400, content_type="text/plain; charset=utf-8")
    response = HttpResponse(
        render_report(context, fmt),
        content_type="application/pdf" if fmt == "pdf" else "text/html; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="outcomes-{context["period"]}.{fmt}"'
    return response


@login_required
@require_http_methods(["GET", "POST"])
def calendar_page(request: HttpRequest) -> HttpResponse:
    """Your calendar feed: issue a secret address (shown once) or revoke it."""
    _require(P.can_view(request.user), "subscribe to calendars")
    user = request.user
    assert isinstance(user, User)
    raw = ""
    if request.method == "POST":
        if request.POST.get("action") == "revoke":
            count = cal.revoke_feeds(user)
            messages.success(request, "Calendar feed revoked." if count else "No live feed to revoke.")
            return redirect("cadence:calendar")
        _, raw = cal.issue_feed(user)
    base = request.build_absolute_uri("/")[:-1]
    return render(
        request,
        "cadence/calendar.html",
        {
            "raw": raw,
            "user_url": f"{base}{reverse('cadence:user_feed', args=[raw])}" if raw else "",
            "team_urls": [
                (t, f"{base}{reverse('cadence:team_feed', args=[raw, t.pk])}") for t in Team.objects.all()
            ]
            if raw
            else [],
            "live": CalendarFeed.objects.filter(user=user, revoked_at__isnull=True).first(),
        },
    )


def _feed_response(body: bytes) -> HttpResponse:
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Cache-Control"] = "private, max-age=300"
    return response


@require_GET
def user_feed(request: HttpRequest, token: str) -> HttpResponse:
    """A person's iCalendar feed; the secret token in the URL stands for signing in."""
    user = cal.feed_user(token)
    if user is None:
        raise Http404("No such calendar feed (revoked, or never issued).")
    return _feed_response(cal.user_feed(user, request.build_absolute_uri("/")[:-1]))


@require_GET
def team_feed(request: HttpRequest, token: str, team_id: int) -> HttpResponse:
    """A team's sprint dates, read with a person's feed token."""
    if cal.feed_user(token) is None:
        raise Http404("No such calendar feed (revoked, or never issued).")
    team = get_object_or_404(Team, pk=team_id)
    return _feed_response(cal.team_feed(team, request.build_absolute_uri("/")[:-1]))


app_name = "cadence"
urlpatterns = [
    path("sprints/", sprint_list, name="sprint_list"),
    path("sprints/<int:pk>/", sprint_detail, name="sprint_detail"),
    path("sprints/<int:pk>/start/", sprint_start, name="sprint_start"),
    path("sprints/<int:pk>/review/", sprint_review, name="sprint_review"),
    path("capacity/", capacity_page, name="capacity"),
    path("leadership/", leadership_page, name="leadership"),
    path("outcomes/", outcomes_page, name="outcomes"),
    path("outcomes/report.pdf", outcomes_file, {"fmt": "pdf"}, name="outcomes_pdf"),
    path("outcomes/report.html", outcomes_file, {"fmt": "html"}, name="outcomes_html"),
    path("calendar/", calendar_page, name="calendar"),
    path("calendar/<str:token>.ics", user_feed, name="user_feed"),
    path("calendar/<str:token>/team/<int:team_id>.ics", team_feed, name="team_feed"),
    path("cards/<int:pk>/move/", card_move, name="card_move"),
    path("cards/<int:pk>/log/", card_log, name="card_log"),
    path("cards/<int:pk>/remove/", card_remove, name="card_remove"),
]
