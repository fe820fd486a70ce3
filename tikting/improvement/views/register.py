"""Register pages: the list (with drag-and-drop ranking of the backlog), board, matrix, my items.

Every page reads the same filters (filtersets.filter_items / sort_items, shared with the API) and
serves either the full page or, for htmx requests, only the part that changes (NetBox's
htmx_partial). The forms that submit and edit an item are in item_form.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Case, Count, F, IntegerField, Q, QuerySet, Value, When
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe
from django_htmx.http import push_url

from tikting.accounts.models import Actor, User
from tikting.cmdb.models import Service
from tikting.core.exceptions import ConflictError, PermissionDeniedError

from .. import choices as C
from .. import permissions as P
from .. import services as S
from ..bulk import offered as bulk_actions
from ..filtersets import DEFAULT_SORT, FILTER_FIELDS, FLAGS, SORTS, filter_items, sort_items
from ..models import Action, Item
from ..querysets import ItemQuerySet

if TYPE_CHECKING:

    class ItemCard(Item):
        """A board card: the item with the flags the board works out once per card (typing only)."""

        flag_list: list[str]
        moves: list[list[str]]


# Columns of a list row, and what item.flags() reads: no other field is loaded, so 10,000 items
# stay fast and a row never triggers a query of its own.
ROW_FIELDS = (
    "id",
    "title",
    "status",
    "practice",
    "impact",
    "effort",
    "quadrant",
    "priority_score",
    "rank",
    "target_date",
    "review_milestone",
    "due_soon_from",
    "blocked",
    "last_activity_at",
    "sustainment",
    "identified_at",
    "service__name",
    "owner__username",
    "owner__first_name",
    "owner__last_name",
)
CARD_FIELDS = (
    *(f for f in ROW_FIELDS if f not in {"practice", "service__name", "review_milestone"}),
    "version",
)

BOARD_STEPS = [C.Status.NEW, *C.STEPS]
BOARD_TAIL = [C.Status.DEFERRED, C.Status.CLOSED, C.Status.REJECTED]
# Cards per step column: a longer column is not read; the rest are a link to the filtered list.
BOARD_CAP = 30
BOARD_TAIL_CAP = 10  # cards in the collapsed Deferred / Closed / Rejected columns
MATRIX_TOP = 5  # items listed per quadrant

STATUS_GROUPS = [("open", "Open"), ("active", "Active (steps 1-7)"), ("ended", "Ended (closed, rejected)")]
FLAG_LABELS = {
    "blocked": "Blocked",
    "overdue": "Overdue",
    "due_soon": "Due soon",
    "stale": "Stale",
    "slipped": "Slipped back",
    "measurement_due": "Measurement due",
}
# Columns of the list: (sort key or None, label, css class).
COLUMNS = [
    ("ref", "Ref", "tk-col-ref"),
    ("title", "Title", ""),
    ("status", "Status", ""),
    ("practice", "Practice", ""),
    ("service", "Service", ""),
    ("owner", "Owner", ""),
    ("impact", "Impact × effort", "text-nowrap"),
    ("priority", "Score", "text-end"),
    ("target_date", "Target", "text-nowrap"),
    (None, "Flags", ""),
]


# --- Reading filters ----------------------------------------------------------------------------


@dataclass
class Filters:
    """The filters of one request: a canonical query (for links) and what filter_items receives."""

    query: QueryDict  # non-empty values only, without page
    sort: str
    errors: list[str] = field(default_factory=list)

    def get(self, name: str) -> str:
        return self.query.get(name, "")

    def values(self, name: str) -> list[str]:
        return self.query.getlist(name)

    @property
    def active(self) -> bool:
        """Any filter narrowing the view, beyond the default status."""
        narrowing = any(self.query.getlist(n) for n in FILTER_FIELDS if n != "status")
        return narrowing or self.get("status") not in ("open", "")

    def urlencode(self, **overrides: Any) -> str:
        query = self.query.copy()
        for name, value in overrides.items():
            if value in (None, ""):
                query.pop(name, None)
            else:
                query[name] = str(value)
        return query.urlencode()


def export_query(filters: Filters) -> str:
    """The filters as the export API reads them (it has no `status=all`, and no page)."""
    query = filters.query.copy()
    if query.getlist("status") == ["all"]:
        query.pop("status")
    query.pop("page", None)
    return query.urlencode()


def read_filters(request: HttpRequest, *, with_status: bool = True) -> Filters:
    """The register filters of a request. Without a status filter the list shows open items;
    `status=all` shows every status."""
    query = QueryDict(mutable=True)
    for name in (*FILTER_FIELDS, "sort"):
        if name == "status" and not with_status:
            continue
        values = [v.strip() for v in request.GET.getlist(name) if v.strip()]
        if values:
            query.setlist(name, values)
    if with_status and "status" not in query:
        query["status"] = "open"
    return Filters(query=query, sort=query.get("sort", DEFAULT_SORT))


def apply_filters(qs: ItemQuerySet, filters: Filters, user: Actor, *, sort: bool = True) -> ItemQuerySet:
    """Filter (and sort) through the shared filterset; a bad value is reported, not a 500."""
    params = filters.query.copy()
    if params.getlist("status") == ["all"]:
        del params["status"]
    try:
        qs = filter_items(qs, params, user=user)
    except ValidationError as exc:
        filters.errors.extend(_messages(exc))
        qs = qs.none()
    if sort:
        try:
            qs = sort_items(qs, filters.sort)
        except ValidationError as exc:
            filters.errors.extend(_messages(exc))
            filters.sort = DEFAULT_SORT
            qs = sort_items(qs, DEFAULT_SORT)
    return qs


def _messages(exc: ValidationError) -> list[str]:
    if hasattr(exc, "error_dict"):
        return [f"{name}: {' '.join(msgs)}" for name, msgs in exc.message_dict.items()]
    return list(exc.messages)


def _filter_options(request: HttpRequest) -> dict[str, Any]:
    """Choices for the filter bar: two small queries, whatever the number of items."""
    return {
        "status_groups": STATUS_GROUPS,
        "status_choices": C.Status.choices,
        "practice_choices": C.Practice.choices,
        "quadrant_choices": C.Quadrant.choices,
        "channel_choices": C.SourceChannel.choices,
        "flag_choices": [(f, FLAG_LABELS.get(f, f)) for f in FLAGS],
        "service_options": list(Service.objects.only("id", "name")),
        "owner_options": list(
            User.objects.filter(Q(owned_items__isnull=False) | Q(role__in=("owner", "manager", "admin")))
            .filter(is_active=True)
            .distinct()
            .only("id", "username", "first_name", "last_name")
        ),
    }


def _items(user: Actor, *related: str) -> ItemQuerySet:
    return Item.objects.visible_to(user).select_related(*(related or ("service", "owner")))


def _render(
    request: HttpRequest,
    full: str,
    partial: str,
    context: dict[str, Any],
    *,
    canonical: str,
    status: int = 200,
) -> HttpResponse:
    """The full page, or only the partial for an htmx request that is not boosted (and not a
    history restore, which needs the whole page)."""
    htmx = getattr(request, "htmx", None)
    if htmx and not htmx.boosted and not htmx.history_restore_request:
        response = render(request, partial, context)
        push_url(response, canonical)  # the address bar shows the clean filter URL
    else:
        response = render(request, full, context, status=status)
    # The partial and the full page share a URL: caches must tell them apart.
    patch_vary_headers(response, ("HX-Request",))
    return response


def _canonical(name: str, filters: Filters, **overrides: Any) -> str:
    query = filters.urlencode(**overrides)
    return reverse(f"improvement:{name}") + (f"?{query}" if query else "")


def _forbidden(what: str) -> PermissionDenied:
    return PermissionDenied(f"You may not {what}.")


# --- The list ---------------------------------------------------------------------------------


def _sort_headers(filters: Filters) -> list[dict[str, Any]]:
    current = filters.sort.lstrip("-")
    descending = filters.sort.startswith("-")
    headers = []
    for key, label, css in COLUMNS:
        header: dict[str, Any] = {"label": label, "css": css, "key": key}
        if key:
            active = key == current
            # A click on the active column reverses it; any other column sorts ascending.
            target = f"-{key}" if active and not descending else key
            header.update(
                active=active,
                descending=active and descending,
                url=_canonical("list", filters, sort=None if target == DEFAULT_SORT else target, page=None),
            )
        headers.append(header)
    return headers


def _is_backlog_view(filters: Filters) -> bool:
    """The open backlog in rank order, unfiltered: the one view where dragging ranks items."""
    narrowing = [n for n in FILTER_FIELDS if n != "status" and filters.values(n)]
    return filters.values("status") == ["open"] and filters.sort == "rank" and not narrowing


@login_required
@require_safe
def item_list(request: HttpRequest) -> HttpResponse:
    filters = read_filters(request)
    qs = apply_filters(_items(request.user).only(*ROW_FIELDS), filters, request.user)
    paginator = Paginator(qs, settings.TIKTING_PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    can_rank = P.can_manage(request.user) and _is_backlog_view(filters) and not filters.errors
    context = {
        "filters": filters,
        "page": page,
        "items": list(page.object_list),
        "page_range": list(paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1)),
        "ellipsis": Paginator.ELLIPSIS,
        "headers": _sort_headers(filters),
        "page_query": filters.urlencode(page=None),
        "export_query": export_query(filters),
        "can_rank": can_rank,
        "show_rank": filters.sort.lstrip("-") == "rank",
        "can_submit": P.can_submit(request.user),
        "can_manage": P.can_manage(request.user),
        "bulk_actions": bulk_actions(request.user) if P.can_submit(request.user) else [],
        "filter_action": reverse("improvement:list"),
        "with_status": True,
        **_filter_options(request),
    }
    canonical = _canonical("list", filters, page=page.number if page.number > 1 else None)
    status = 400 if filters.errors else 200
    return _render(
        request,
        "improvement/register_list.html",
        "improvement/register_table.html",
        context,
        canonical=canonical,
        status=status,
    )


@login_required
@require_POST
def rank(request: HttpRequest) -> HttpResponse:
    """Save the order of one page of the open backlog after a drag and drop.

    The browser sends the ids of the visible page in their new order, and the page number. Ranks
    stay one dense sequence over the open backlog: the server prepends the ids of the items on the
    pages before it (in their current order) and services.rank_items numbers the whole prefix
    1..n, so page 3 gets 101..150 (with 50 a page) instead of a second 1..50 that would collide
    with page 1. Items after the page keep their ranks (all after n, or none). Ranking happens
    only on the open backlog view (status open, no other filter) for the same reason: ranking a
    filtered subset 1..n would interleave with the ranks of the items the filter hides.
    """
    if not P.can_manage(request.user):
        raise _forbidden("rank the backlog")
    raw = request.POST.getlist("ids")
    ids_text = [part for value in raw for part in value.split(",") if part.strip()]
    try:
        ids = [int(i) for i in ids_text]
        page_number = max(int(request.POST.get("page") or 1), 1)
    except ValueError:
        return JsonResponse({"error": "Send item ids (numbers) and a page number."}, status=400)
    if not ids or len(set(ids)) != len(ids):
        return JsonResponse({"error": "Send each item of the page once."}, status=400)
    backlog = sort_items(Item.objects.open(), "rank").values_list("pk", flat=True)
    size = settings.TIKTING_PAGE_SIZE
    offset = (page_number - 1) * size
    on_page = list(backlog[offset : offset + size])
    if set(on_page) != set(ids):
        # Someone ranked, submitted or closed items since this page was loaded.
        return JsonResponse(
            {"error": "The backlog changed since you loaded this page. It has been reloaded: drag again."},
            status=409,
        )
    prefix = list(backlog[:offset]) if offset else []
    try:
        changed = S.rank_items(prefix + ids, actor=request.user)
    except PermissionDeniedError as exc:
        raise PermissionDenied(str(exc)) from exc
    except ValidationError as exc:
        return JsonResponse({"error": " ".join(_messages(exc))}, status=400)
    word = "item" if changed == 1 else "items"
    return JsonResponse({"changed": changed, "message": f"Backlog order saved ({changed} {word} re-ranked)."})


# --- The board --------------------------------------------------------------------------------


def _top_per(qs: QuerySet, partition: str, values: list[str], cap: int) -> dict[str, list[Item]]:
    """At most `cap` items per value of `partition`, in backlog order.

    One small query per value (a fixed number: the statuses or quadrants, never the items); each
    reads through the (status|quadrant, priority) index. On SQLite this is three times faster than
    one ROW_NUMBER() window over the whole register.
    """
    return {value: list(qs.filter(**{partition: value}).order_by(*SORTS["rank"])[:cap]) for value in values}


@login_required
@require_safe
def board(request: HttpRequest) -> HttpResponse:
    filters = read_filters(request, with_status=False)
    base = apply_filters(_items(request.user, "owner"), filters, request.user, sort=False)
    counts = dict(base.order_by().values_list("status").annotate(n=Count("pk")))
    cards_qs = base.only(*CARD_FIELDS)
    cards = {
        **_top_per(cards_qs, "status", [s for s in BOARD_STEPS if counts.get(s)], BOARD_CAP),
        **_top_per(cards_qs, "status", [s for s in BOARD_TAIL if counts.get(s)], BOARD_TAIL_CAP),
    }
    now = timezone.now()
    user = request.user
    for item in (item for column in cards.values() for item in column):
        card = cast("ItemCard", item)
        card.flag_list = item.flags(now)  # once per card, from the row
        card.moves = _moves(item) if P.can_drive(user, item) else []

    def column(status: str) -> dict[str, Any]:
        total = counts.get(status, 0)
        shown = cards.get(status, [])

        return {
            "status": status,
            "label": C.Status(status).label,
            "count": total,
            "items": shown,
            "more": total - len(shown),
            "list_url": _canonical("list", filters, status=status, sort=None),
        }

    context = {
        "filters": filters,
        "columns": [column(s) for s in BOARD_STEPS],
        "tail": [column(s) for s in BOARD_TAIL],
        "total": sum(counts.values()),
        "cap": BOARD_CAP,
        "filter_action": reverse("improvement:board"),
        "with_status": False,
        "can_submit": P.can_submit(request.user),
        **_filter_options(request),
    }
    return _render(
        request,
        "improvement/board.html",
        "improvement/board_columns.html",
        context,
        canonical=_canonical("board", filters),
    )


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


@login_required
@require_POST
def board_move(request: HttpRequest) -> HttpResponse:
    """Move a card to another step (a drop on the board, or its Move form from the keyboard):
    services.transition_item with its preconditions; a refusal names what is missing. JSON for the
    board's script, a redirect back to the board with the message otherwise."""
    if not (request.user.is_authenticated and request.user.has_role("owner")):
        raise _forbidden("move items through their steps")  # owners move theirs, managers any
    item = (
        Item.objects.visible_to(request.user).filter(pk=request.POST.get("item") or 0).first()
        if ((request.POST.get("item") or "").isdigit())
        else None
    )
    if item is None:
        if _wants_json(request):
            return JsonResponse({"error": "No such item: reload the board."}, status=404)
        raise Http404("No such item.")
    if not P.can_drive(request.user, item):
        raise _forbidden(f"move {item.ref} through its steps")
    to = request.POST.get("to", "")
    version = request.POST.get("version", "")
    try:
        moved = S.transition_item(
            item,
            actor=request.user,
            to=to,
            reason="Moved on the board",
            expected_version=int(version) if version.isdigit() else None,
        )
    except PermissionDeniedError as exc:
        raise PermissionDenied(str(exc)) from exc
    except ConflictError:
        error = f"{item.ref} changed since the board was loaded: reload it and try again."
        status = 409
    except ValidationError as exc:
        error, status = " ".join(_messages(exc)).removeprefix("status: "), 400
    else:
        message = f"{moved.ref} moved to '{moved.get_status_display()}'."
        if _wants_json(request):
            return JsonResponse(
                {"message": message, "status": moved.status, "version": moved.version, "moves": _moves(moved)}
            )
        messages.success(request, message)
        return redirect(_board_back(request))
    if _wants_json(request):
        return JsonResponse({"error": error}, status=status)
    messages.error(request, error)
    return redirect(_board_back(request))


def _board_back(request: HttpRequest) -> str:
    back = request.POST.get("next", "")
    if back and url_has_allowed_host_and_scheme(back, {request.get_host()}, require_https=False):
        return back
    return reverse("improvement:board")


def _moves(item: Item) -> list[list[str]]:
    """The steps an item's card offers to move to: its allowed transitions, forward first."""
    allowed = C.TRANSITIONS.get(item.status, frozenset())
    here = C.STEPS.index(item.status) if item.status in C.STEPS else -1
    ordered = sorted(allowed, key=lambda s: (C.STEPS.index(s) < here, C.STEPS.index(s)))
    return [[s, C.Status(s).label] for s in ordered]


# --- The impact × effort matrix ---------------------------------------------------------------

QUADRANT_LAYOUT = [
    # (quadrant, impact, effort, hint) in reading order: high impact on top, low effort left.
    (C.Quadrant.QUICK_WIN, "high", "low", "Do these first"),
    (C.Quadrant.MAJOR_PROJECT, "high", "high", "Plan and fund them"),
    (C.Quadrant.FILL_IN, "low", "low", "When there is spare capacity"),
    (C.Quadrant.THANKLESS, "low", "high", "Question or reject them"),
]


@login_required
@require_safe
def matrix(request: HttpRequest) -> HttpResponse:
    filters = read_filters(request)
    base = apply_filters(_items(request.user, "owner"), filters, request.user, sort=False)
    # One aggregate: the 25 cells; quadrant totals are sums of cells.
    cells = {
        (row["impact"], row["effort"]): row["n"]
        for row in base.order_by().values("impact", "effort").annotate(n=Count("pk"))
    }
    peak = max(cells.values(), default=0)
    totals: dict[str, int] = {}
    for (impact, effort), n in cells.items():
        quadrant = C.quadrant_for(impact, effort)
        totals[quadrant] = totals.get(quadrant, 0) + n
    top = _top_per(
        base.only(*CARD_FIELDS), "quadrant", [q for q in C.Quadrant.values if totals.get(q)], MATRIX_TOP
    )
    grand = sum(totals.values())
    quadrants = [
        {
            "key": quadrant,
            "label": C.Quadrant(quadrant).label,
            "impact": impact,
            "effort": effort,
            "hint": hint,
            "count": totals.get(quadrant, 0),
            "share": round(100 * totals.get(quadrant, 0) / grand) if grand else 0,
            "items": top.get(quadrant, []),
            "url": _canonical("list", filters, quadrant=quadrant, sort="priority"),
        }
        for quadrant, impact, effort, hint in QUADRANT_LAYOUT
    ]
    grid = [
        {
            "impact": impact,
            "cells": [
                {
                    "effort": effort,
                    "count": cells.get((impact, effort), 0),
                    "quadrant": C.quadrant_for(impact, effort),
                    # 0.08..1: an empty cell stays faintly coloured by its quadrant.
                    "heat": round(0.08 + 0.92 * cells.get((impact, effort), 0) / peak, 2) if peak else 0.08,
                    "url": _canonical("list", filters, impact=impact, effort=effort, sort="priority"),
                }
                for effort in range(1, 6)
            ],
        }
        for impact in range(5, 0, -1)
    ]
    context = {
        "filters": filters,
        "quadrants": quadrants,
        "grid": grid,
        "total": grand,
        "efforts": range(1, 6),
        "filter_action": reverse("improvement:matrix"),
        "with_status": True,
        **_filter_options(request),
    }
    return _render(
        request,
        "improvement/matrix.html",
        "improvement/matrix_body.html",
        context,
        canonical=_canonical("matrix", filters),
    )


# --- My items ---------------------------------------------------------------------------------


@login_required
@require_safe
def mine(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert user.is_authenticated  # login_required
    limit = 100
    open_first = Case(
        When(status__in=C.OPEN_STATUSES, then=Value(0)), default=Value(1), output_field=IntegerField()
    )
    owned_qs = Item.objects.visible_to(user).filter(owner=user)
    owned = list(
        owned_qs.select_related("service")
        .only(*(f for f in ROW_FIELDS if not f.startswith("owner__")), "owner")
        .annotate(closed_last=open_first)
        .order_by("closed_last", F("target_date").asc(nulls_last=True), "-priority_score", "-id")[:limit]
    )
    submitted = list(
        Item.objects.visible_to(user)
        .filter(submitted_by=user)
        .select_related("owner", "assessed_by")
        .only(
            "id",
            "title",
            "status",
            "identified_at",
            "assessment_reason",
            "assessed_at",
            "revisit_date",
            "outcome",
            "owner__username",
            "owner__first_name",
            "owner__last_name",
            "assessed_by__username",
            "assessed_by__first_name",
            "assessed_by__last_name",
        )
        .order_by("-identified_at", "-id")[:limit]
    )
    actions = list(
        Action.objects.filter(owner=user, done=False)
        .select_related("item")
        .only("id", "title", "due_date", "done", "item__id", "item__title", "item__status")
        .order_by(F("due_date").asc(nulls_last=True), "id")[:limit]
    )
    counts = owned_qs.aggregate(open=Count("pk", filter=Q(status__in=C.OPEN_STATUSES)), all=Count("pk"))
    context = {
        "owned": owned,
        "owned_open": counts["open"],
        "owned_total": counts["all"],
        "submitted": submitted,
        "actions": actions,
        "limit": limit,
        "can_submit": P.can_submit(user),
        "mine_url": reverse("improvement:list") + "?owner=me",
    }
    return render(request, "improvement/mine.html", context)


urlpatterns = [
    path("", item_list, name="list"),
    path("rank/", rank, name="rank"),
    path("board/", board, name="board"),
    path("board/move/", board_move, name="board_move"),
    path("matrix/", matrix, name="matrix"),
    path("mine/", mine, name="mine"),
]
