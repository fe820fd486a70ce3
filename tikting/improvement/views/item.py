"""The item page: `detail` and its read-only fragments (the timeline panel), and the context that
the action views (item_actions.py) render again after a change or a refusal.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from django.contrib.auth.decorators import login_required
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils import timezone
from django.views.decorators.http import require_GET
from django_htmx.middleware import HtmxDetails

from tikting.accounts.models import User
from tikting.attachments.services import counts as attachment_lists
from tikting.cmdb.models import Service
from tikting.core.audit import history_for
from tikting.core.itsm import Priority
from tikting.lib import display
from tikting.metrics.definitions import DEFINITIONS

from .. import choices as C
from .. import item_forms as F
from .. import permissions as P
from .. import services as S
from ..forms_bind import SCOPE_FIELDS, BindIndicatorForm
from ..models import Action, Indicator, Item, Measurement

TIMELINE_LIMIT = 15
RECENT_MEASUREMENTS = 5
PAGE_TEMPLATE = "improvement/item/item_detail.html"
BODY_TEMPLATE = "improvement/item/_page.html"
TIMELINE_TEMPLATE = "improvement/item/_timeline.html"
BIND_TEMPLATE = "improvement/item/_bind_form.html"

STEP_TITLES: dict[str, str] = {
    C.Status.VISION: "Vision",
    C.Status.CURRENT_STATE: "Where are we now?",
    C.Status.TARGET_STATE: "Where do we want to be?",
    C.Status.PLAN: "How do we get there?",
    C.Status.ACTION: "Take action",
    C.Status.EVALUATION: "Did we get there?",
    C.Status.MOMENTUM: "Keep the momentum",
}


class HtmxHttpRequest(HttpRequest):
    """A request as django_htmx's middleware (settings.MIDDLEWARE) leaves it: with `htmx`."""

    htmx: HtmxDetails


if TYPE_CHECKING:
    from django import forms

    class IndicatorRow(Indicator):
        """An indicator as the page shows it: what _indicator_rows attaches (typing only)."""

        latest: Measurement | None
        recent: list[Measurement]
        measurement_count: int
        progress_pct: int | None
        progress_width: int | None
        meets: bool
        evaluation: str
        chart_id: str
        chart_data_id: str
        measure_open: bool
        can_measure: bool
        chart: dict[str, Any]
        edit_form: forms.Form
        conflict: dict[str, Any] | None
        measure_form: forms.Form
        bind_form: forms.Form | None
        bind_conflict: dict[str, Any] | None
        binding: dict[str, Any] | None
        sustainment_rule: dict[str, Any] | None

    class ActionRow(Action):
        """An action as the plan shows it: what _context attaches (typing only)."""

        overdue: bool
        toggle_form: forms.Form | None
        cancel_form: forms.Form
        can_update: bool


# --- Loading ----------------------------------------------------------------------------------


def _item_queryset():
    return Item.objects.select_related(
        "owner", "service", "parent", "submitted_by", "assessed_by"
    ).prefetch_related(
        Prefetch(
            "indicators",
            queryset=Indicator.objects.select_related("owner").prefetch_related(
                Prefetch("measurements", queryset=Measurement.objects.order_by("measured_at", "id"))
            ),
        ),
        Prefetch("actions", queryset=Action.objects.select_related("owner")),
        Prefetch("children", queryset=Item.objects.order_by("id")),
        "source_links",
    )


def _get_item(request: HtmxHttpRequest, pk: int, *, full: bool = False) -> Item:
    if not P.can_view(request.user):
        raise PermissionDenied("You may not read the register.")
    queryset = _item_queryset() if full else Item.objects.select_related("owner")
    return get_object_or_404(queryset.visible_to(request.user), pk=pk)


# --- The page ---------------------------------------------------------------------------------


def _indicator_rows(item: Item, forms: dict[str, Any], *, can_drive: bool, user: Any) -> list[IndicatorRow]:
    rows = []
    # An ended item takes measurements only while it is watched for sustainment (services).
    measurable = not item.read_only or item.sustainment in {C.Sustainment.HOLDING, C.Sustainment.SLIPPED}
    # Primary indicators (what success is measured by) before impacted ones (side effects).
    ordered = sorted(item.indicators.all(), key=lambda i: (i.role != C.IndicatorRole.PRIMARY, i.pk))
    # The page attaches what it shows to the indicators it loaded (the templates read them there).
    for indicator in cast("list[IndicatorRow]", ordered):
        measurements = list(indicator.measurements.all())
        latest = measurements[-1] if measurements else None
        indicator.latest = latest
        indicator.recent = list(reversed(measurements[-RECENT_MEASUREMENTS:]))
        indicator.measurement_count = len(measurements)
        progress = indicator.progress(latest.value if latest else None)
        indicator.progress_pct = None if progress is None else round(progress * 100)
        indicator.progress_width = None if progress is None else max(0, min(100, round(progress * 100)))
        indicator.meets = indicator.meets_target(latest.value if latest else None)
        indicator.evaluation = C.EvaluationResult(indicator.evaluate(latest.value)).label if latest else ""
        indicator.chart_id = f"indicator-chart-{indicator.pk}"
        indicator.chart_data_id = f"indicator-chart-{indicator.pk}-data"
        indicator.measure_open = forms.get("open_form") == f"measure{indicator.pk}"
        # The item's driver, or the one named to measure it (permissions.can_measure).
        indicator.can_measure = measurable and (can_drive or P.can_measure(user, indicator))
        indicator.chart = _chart(indicator, measurements)
        indicator.edit_form = forms.get("indicator_edit", {}).get(
            indicator.pk
        ) or F.IndicatorForm.for_indicator(indicator, prefix=f"ind{indicator.pk}")
        indicator.conflict = forms.get("indicator_conflict", {}).get(indicator.pk)
        indicator.measure_form = forms.get("measure", {}).get(indicator.pk) or F.MeasurementForm(
            prefix=f"m{indicator.pk}"
        )
        # The bind form is loaded on demand (its choices query the records): here only when open.
        indicator.bind_form = forms.get("bind", {}).get(indicator.pk)
        indicator.bind_conflict = forms.get("bind_conflict", {}).get(indicator.pk)
        indicator.binding = _binding(indicator)
        indicator.sustainment_rule = _sustainment_rule(item, indicator, measurements)
        rows.append(indicator)
    return rows


def _sustainment_rule(
    item: Item, indicator: Indicator, measurements: list[Measurement]
) -> dict[str, Any] | None:
    """For a primary indicator of a closed item: the rule that judges it after closure, in words
    with its figures (services.has_slipped), and where its latest measurement after closure stands."""
    if item.status != C.Status.CLOSED or indicator.role != C.IndicatorRole.PRIMARY or not item.closed_at:
        return None
    closed_at = item.closed_at
    before = [m for m in measurements if m.measured_at <= closed_at]
    after = [m for m in measurements if m.measured_at > closed_at]
    reached = before[-1].value if before else None
    limit = S.slip_limit(indicator, reached)
    unit = f" {indicator.unit}" if indicator.unit else ""

    def shown(value: Decimal | None) -> str:
        return "—" if value is None else f"{display.number(value)}{unit}"

    worse = "above" if indicator.direction == C.Direction.LOWER else "below"
    if limit is None:
        text = "No baseline and nothing measured by closure: nothing to judge a slip back against."
    elif indicator.meets_target(reached):
        text = (
            f"Met its target at closure ({shown(reached)}, target {shown(limit)}): it slips back when a "
            f"later measurement no longer meets the target ({worse} {shown(limit)})."
        )
    elif reached is None:
        text = (
            "Nothing measured by closure: it slips back when a later measurement is no better than the "
            f"baseline ({shown(limit)})."
        )
    else:
        share = f"{C.SUSTAINMENT_TOLERANCE * 100:.0f} %"
        text = (
            f"Reached {shown(reached)} at closure (baseline {shown(indicator.baseline_value)}): it slips "
            f"back when a later measurement gives back more than {share} of that improvement, "
            f"{worse} {shown(limit)}."
        )
    latest = after[-1] if after else None
    return {
        "text": text,
        "latest": latest,
        "latest_text": shown(latest.value) if latest else "",
        "slipped": latest is not None and S.has_slipped(indicator, reached, latest.value),
    }


def _chart(indicator: Indicator, measurements: list[Measurement]) -> dict[str, Any]:
    """The indicator chart's data (static/js/item.js): points placed by time on a linear axis of
    epoch milliseconds, with the axis ticks and every label formatted here, in the configured time
    zone and the UI's date format. One measurement gets a day either side so the lines show, and
    the axis a little room beyond the first and last points."""
    times = [m.measured_at for m in measurements]
    start = min(times) if times else timezone.now()
    end = max(times) if times else start
    if end - start < dt.timedelta(days=1):
        start, end = start - dt.timedelta(days=1), end + dt.timedelta(days=1)
    margin = (end - start) * 0.03  # the first and last points whole, not cut by the axis
    start, end = start - margin, end + margin

    def ms(at: dt.datetime) -> int:
        return round(at.timestamp() * 1000)

    return {
        "name": indicator.name,
        "unit": indicator.unit,
        "points": [{"x": ms(m.measured_at), "y": float(m.value)} for m in measurements],
        "labels": [display.when(m.measured_at) for m in measurements],
        "values": [display.number(m.value) for m in measurements],
        "min": ms(start),
        "max": ms(end),
        "ticks": [{"value": ms(at), "label": label} for at, label in display.time_ticks(start, end)],
        "baseline": None if indicator.baseline_value is None else float(indicator.baseline_value),
        "target": None if indicator.target_value is None else float(indicator.target_value),
    }


def _binding(indicator: Indicator) -> dict[str, Any] | None:
    """What a bound indicator is computed from, for its read-only summary."""
    if not indicator.metric_key:
        return None
    definition = DEFINITIONS.get(indicator.metric_key)
    labels = {name: BindIndicatorForm.base_fields[name].label for name in SCOPE_FIELDS}
    priorities = dict(Priority.choices)
    scope = []
    for name, value in sorted((indicator.metric_scope or {}).items()):
        if name == "priority" and str(value).isdigit():
            value = priorities.get(int(value), value)
        scope.append({"label": labels.get(name, name), "value": value})
    return {
        "key": indicator.metric_key,
        "label": definition.label if definition else indicator.metric_key,
        "unit": definition.unit if definition else "",
        "scope": scope,
    }


def _transitions(item: Item, forms: dict[str, Any]) -> list[dict[str, Any]]:
    allowed = sorted(C.TRANSITIONS.get(item.status, ()), key=C.STEPS.index, reverse=True)
    result = []
    for to in allowed:
        forward = C.STEPS.index(to) > C.STEPS.index(item.status)
        form = forms.get("transition", {}).get(to) or F.TransitionForm(
            initial={"to": to, "version": item.version}, auto_id=f"id_t_{to}_%s"
        )
        result.append(
            {
                "to": to,
                "label": C.Status(to).label,
                "title": STEP_TITLES[to],
                "forward": forward,
                "gaps": [item.explain_gap(g) for g in item.gaps_for(to, back=not forward)],
                "form": form,
            }
        )
    return result


def _stepper(item: Item) -> list[dict[str, Any]]:
    current = item.step_number or 0
    if item.status == C.Status.CLOSED:
        current = len(C.STEPS) + 1
    return [
        {
            "number": n,
            "status": step,
            "title": STEP_TITLES[step],
            "state": "done" if n < current else "current" if n == current else "todo",
        }
        for n, step in enumerate(C.STEPS, start=1)
    ]


def _source_links(item: Item) -> list[dict[str, Any]]:
    """Linked records with their URL, one query per kind of record (not per link)."""
    links = list(item.source_links.all())
    by_type: dict[int, list[str]] = defaultdict(list)
    for link in links:
        by_type[link.content_type_id].append(link.object_id)
    records: dict[tuple[int, str], Any] = {}
    for type_id, ids in by_type.items():
        model = ContentType.objects.get_for_id(type_id).model_class()
        if model is None:
            continue
        for obj in model._default_manager.filter(pk__in=ids):
            records[(type_id, str(obj.pk))] = obj
    result = []
    for link in links:
        record = records.get((link.content_type_id, link.object_id))
        url = record.get_absolute_url() if record is not None and hasattr(record, "get_absolute_url") else ""
        result.append(
            {
                "label": link.label,
                "url": url,
                "kind": ContentType.objects.get_for_id(link.content_type_id).name,
                "is_origin": link.is_origin,
                "missing": record is None,
            }
        )
    return result


# Timeline: readable labels and values of audited fields.
HIDDEN_FIELDS = {
    "updated_at",
    "created_at",
    "last_activity_at",
    "status_changed_at",
    "due_soon_from",
    "done_at",
    "blocked_since",
    "escalated_at",
    "assessed_at",
    "evaluated_at",
    "closed_at",
    "metric_scope",
}
TIMELINE_MODELS = {"item": Item, "indicator": Indicator, "action": Action, "measurement": Measurement}


def _field_value(field, value: Any, users: dict[int, User], services: dict[int, Service], items) -> str:
    if value is None or value == "":
        return "—"
    if field is None:
        return str(value)
    if field.choices:
        return str(dict(field.flatchoices).get(value, value))
    if field.name == "metric_key":  # a bound indicator's metric, by its name
        definition = DEFINITIONS.get(str(value))
        return definition.label if definition is not None else str(value)
    if field.get_internal_type() == "BooleanField":
        return "yes" if value else "no"
    if field.is_relation:
        model = field.related_model
        if model is User:
            return str(users.get(value, f"user #{value}"))
        if model is Service:
            return str(services.get(value, f"service #{value}"))
        if model is Item:
            return items.get(value, f"item #{value}")
    if field.get_internal_type() == "DecimalField":
        return display.number(value)
    if field.get_internal_type() in {"DateField", "DateTimeField"}:  # ISO text in the history
        return display.when(value)
    return str(value)


def _timeline(item: Item, *, show_all: bool) -> dict[str, Any]:
    """History rows of the item and its children merged with its comments, newest first."""
    entries = history_for(item).select_related("actor", "content_type")
    comments = item.comments.select_related("author").order_by("-created_at", "-id")
    if not show_all:
        entries, comments = entries[: TIMELINE_LIMIT + 1], comments[: TIMELINE_LIMIT + 1]
    entry_list, comment_list = list(entries), list(comments)
    # Resolve the users, services and items named in the changes: one query per kind.
    ids: dict[type, set[int]] = defaultdict(set)
    for entry in entry_list:
        model = TIMELINE_MODELS.get(entry.content_type.model)
        for name, pair in (entry.changes or {}).items():
            field = _model_field(model, name)
            if field is not None and field.is_relation and field.related_model in {User, Service, Item}:
                ids[field.related_model].update(v for v in pair if isinstance(v, int))
    users = User.objects.in_bulk(ids[User]) if ids[User] else {}
    services = Service.objects.in_bulk(ids[Service]) if ids[Service] else {}
    items = {i.pk: i.ref for i in Item.objects.filter(pk__in=ids[Item])} if ids[Item] else {}
    rows = []
    for entry in entry_list:
        model = TIMELINE_MODELS.get(entry.content_type.model)
        changes = []
        if entry.action == "update":
            for name, pair in (entry.changes or {}).items():
                if name in HIDDEN_FIELDS or not isinstance(pair, list) or len(pair) != 2:
                    continue
                field = _model_field(model, name)
                label = str(field.verbose_name).capitalize() if field is not None else name.replace("_", " ")
                changes.append(
                    {
                        "label": label,
                        "old": _field_value(field, pair[0], users, services, items),
                        "new": _field_value(field, pair[1], users, services, items),
                    }
                )
        kind = entry.content_type.name
        if entry.message:
            summary = entry.message
        elif model is Item:
            summary = f"{entry.get_action_display()} the item"
        else:
            summary = f"{entry.get_action_display()} {kind} “{entry.object_repr}”"
        rows.append(
            {
                "type": "audit",
                "at": entry.at,
                "actor": entry.actor,
                "summary": summary,
                "action": entry.action,
                "kind": kind,
                "changes": changes,
            }
        )
    files = attachment_lists(comment_list)  # one query for every comment's files
    for comment in comment_list:
        comment.attachment_list = files.get(comment.pk, [])  # type: ignore[attr-defined]
        rows.append(
            {
                "comment": comment,
                "type": comment.kind,
                "at": comment.created_at,
                "actor": comment.author,
                "summary": comment.get_kind_display(),
                "body": comment.body,
            }
        )
    rows.sort(key=lambda r: r["at"], reverse=True)
    more = not show_all and len(rows) > TIMELINE_LIMIT
    if not show_all:
        rows = rows[:TIMELINE_LIMIT]
    return {"rows": rows, "more": more, "show_all": show_all}


def _model_field(model, name: str):
    if model is None:
        return None
    try:
        return model._meta.get_field(name)
    except Exception:  # noqa: BLE001 - a field removed since the change was recorded
        return None


def _context(request: HtmxHttpRequest, item: Item, forms: dict[str, Any] | None = None, **extra: Any) -> dict:
    forms = forms or {}
    user = request.user
    today = timezone.localdate()
    # A closed or rejected item is a record: nothing is driven or edited until a manager reopens it.
    can_drive = P.can_drive(user, item) and not item.read_only
    can_edit = P.can_edit(user, item) and not item.read_only
    can_manage = P.can_manage(user)
    actions = cast("list[ActionRow]", list(item.actions.all()))
    for action in actions:
        action.overdue = action.is_overdue(today)
        action.toggle_form = forms.get("action_toggle", {}).get(action.pk)
        action.cancel_form = forms.get("action_cancel", {}).get(action.pk) or F.ActionCancelForm(
            prefix=f"cancel{action.pk}", initial={"version": action.version}
        )
        # The item's driver, or the action's own owner (permissions.can_update_action); a cancelled
        # action is reinstated first, an ended item changes no action.
        action.can_update = (
            not item.read_only and not action.cancelled and (can_drive or P.can_update_action(user, action))
        )
    readiness_gaps = set(item.readiness_gaps()) if item.is_active else set()
    ctx: dict[str, Any] = {
        "item": item,
        "today": today,
        "can_drive": can_drive,
        "can_edit": can_edit,
        "can_manage": can_manage,
        "can_comment": P.can_comment(user),
        "flags": item.flags(),
        "stepper": _stepper(item),
        "transitions": _transitions(item, forms) if can_drive and item.is_active else [],
        "readiness": [
            {"key": key, "label": C.GAP_MESSAGES[key], "ok": key not in readiness_gaps} for key in C.READINESS
        ],
        "indicators": _indicator_rows(item, forms, can_drive=can_drive, user=user),
        "actions": actions,
        "open_actions": sum(1 for a in actions if a.is_open),
        "can_remove_actions": can_drive and item.status in S.PLANNING_STATUSES,
        "source_links": _source_links(item),
        "children": list(item.children.all()),
        "timeline": _timeline(item, show_all=request.GET.get("timeline") == "all"),
        "show_assess": can_manage and item.status in {C.Status.NEW, C.Status.DEFERRED},
        "show_close": can_drive and item.status == C.Status.MOMENTUM,
        "show_withdraw": can_drive and item.is_open and item.status != C.Status.MOMENTUM,
        "indicator_add_form": forms.get("indicator_add") or F.IndicatorForm(prefix="ind-new"),
        "action_form": forms.get("action") or F.ActionForm(prefix="action"),
        "comment_form": forms.get("comment") or F.CommentForm(),
        "block_form": forms.get("block") or F.BlockForm(initial={"blocked": True, "version": item.version}),
        "escalate_form": forms.get("escalate") or F.EscalateForm(),
        "evaluate_form": forms.get("evaluate") or F.EvaluateForm(initial={"version": item.version}),
        "reopen_form": forms.get("reopen") or F.ReopenForm(initial={"version": item.version}),
        "undo_form": forms.get("undo") or F.UndoAcceptanceForm(initial={"version": item.version}),
        "follow_up_form": forms.get("follow_up") or F.FollowUpRaiseForm(prefix="follow-up"),
        "can_follow_up": P.can_submit(user) and item.status in {C.Status.MOMENTUM, C.Status.CLOSED},
        "delta": item.delta_summary(),
        "open_form": forms.get("open_form", ""),
        "flash": extra.pop("flash", None),
        "conflict": extra.pop("conflict", None),
        "transition_error": forms.get("transition_error"),
    }
    if ctx["show_assess"]:
        ctx["assess_form"] = forms.get("assess") or F.AssessForm(
            initial={"version": item.version, "owner": item.owner_id}
        )
    if ctx["show_close"] or ctx["show_withdraw"]:
        withdraw_only = not ctx["show_close"]
        if forms.get("close"):
            ctx["close_form"], ctx["follow_up_formset"] = forms["close"]
        else:
            delta = S.measured_delta(item) if ctx["show_close"] else None
            initial = {"version": item.version, "realised_delta": display.number(delta) or None}
            if ctx["show_close"]:
                initial["outcome"] = S.default_outcome(item)  # never "successful" by default
            ctx["close_form"] = F.CloseForm(withdraw_only=withdraw_only, initial=initial)
            ctx["follow_up_formset"] = F.FollowUpFormSet(prefix=F.FOLLOW_UP_PREFIX)
        ctx["withdraw_only"] = withdraw_only
        indicator = item.delta_indicator() if ctx["show_close"] else None
        if indicator is not None and indicator.unit:
            ctx["close_form"].fields["realised_delta"].label = f"Realised delta ({indicator.unit})"
        ctx["close_delta_indicator"] = indicator
    ctx["evaluation_rows"] = None
    if item.evaluation_result or item.status == C.Status.EVALUATION:
        ctx["evaluation_rows"] = [i for i in ctx["indicators"] if i.role == C.IndicatorRole.PRIMARY]
    ctx.update(extra)
    return ctx


@login_required
@require_GET
def detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    item = _get_item(request, pk, full=True)
    return render(request, PAGE_TEMPLATE, _context(request, item))


@login_required
@require_GET
def timeline(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The timeline panel alone (htmx "show all"); a plain request gets the page with it unfolded."""
    item = _get_item(request, pk)
    show_all = request.GET.get("all") == "1"
    if not request.htmx:
        url = item.get_absolute_url() + ("?timeline=all" if show_all else "")
        return redirect(url + "#timeline")
    return render(request, TIMELINE_TEMPLATE, {"item": item, "timeline": _timeline(item, show_all=show_all)})


urlpatterns = [
    path("<int:pk>/", detail, name="detail"),
    path("<int:pk>/timeline/", timeline, name="item_timeline"),
]
