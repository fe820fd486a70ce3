"""What is done from the item page: lifecycle moves and edits of its indicators, measurements,
actions and comments.

Every action is a small POST view that checks permission, calls one service with
`actor=request.user` and then either redirects back with a message (plain POST) or returns the
re-rendered page body for htmx to swap. On a refusal the page is rendered again with the user's
input and the service's messages on the form that was sent: 422 for validation errors, 409 for a
conflict (the record changed since it was read), 403 when the user may not do it. The
bind-to-a-metric form is also fetched with GET, on demand: its choices query the records.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.views.decorators.http import require_http_methods

from tikting.core.exceptions import ConflictError, PermissionDeniedError
from tikting.lib import display
from tikting.metrics.definitions import DEFINITIONS

from .. import choices as C
from .. import item_forms as F
from .. import permissions as P
from .. import services as S
from ..forms_bind import BindIndicatorForm
from ..models import Action, Indicator, Item
from .item import (
    BIND_TEMPLATE,
    BODY_TEMPLATE,
    PAGE_TEMPLATE,
    HtmxHttpRequest,
    _binding,
    _context,
    _get_item,
    _item_queryset,
)

# --- Action views -----------------------------------------------------------------------------


def _respond(request: HtmxHttpRequest, item: Item, message: str, anchor: str = "") -> HttpResponse:
    """After a successful action: redirect back (plain POST) or the fresh page body (htmx)."""
    if request.htmx:
        fresh = get_object_or_404(_item_queryset(), pk=item.pk)
        return render(request, BODY_TEMPLATE, _context(request, fresh, flash=message))
    messages.success(request, message)
    return redirect(item.get_absolute_url() + (f"#{anchor}" if anchor else ""))


def _refuse(
    request: HtmxHttpRequest, item: Item, forms: dict[str, Any], status: int, conflict: str = ""
) -> HttpResponse:
    """The page again, with the forms that were sent (their input and errors kept)."""
    fresh = get_object_or_404(_item_queryset(), pk=item.pk)
    context = _context(request, fresh, forms, conflict=conflict)
    return render(request, BODY_TEMPLATE if request.htmx else PAGE_TEMPLATE, context, status=status)


def _forbidden(request: HtmxHttpRequest, message: str) -> HttpResponse:
    if request.htmx:
        # Shown by item.js with textContent; served as text so no browser ever renders it as HTML.
        return HttpResponseForbidden(message, content_type="text/plain; charset=utf-8")
    raise PermissionDenied(message)


def item_action(permission: Callable[[Any, Item], bool], what: str, methods: tuple[str, ...] = ("POST",)):
    """Decorate an action view: login, POST only (or `methods`), the item loaded, permission
    checked, 403 on PermissionDeniedError raised by the service."""

    def decorator(view):
        @login_required
        @require_http_methods(list(methods))
        @wraps(view)
        def wrapper(request: HtmxHttpRequest, pk: int, **kwargs: Any) -> HttpResponse:
            item = _get_item(request, pk)
            if not permission(request.user, item):
                return _forbidden(request, f"You may not {what} {item.ref}.")
            try:
                return view(request, item, **kwargs)
            except PermissionDeniedError as exc:
                return _forbidden(request, str(exc))

        return wrapper

    return decorator


def _run(
    request: HtmxHttpRequest,
    item: Item,
    form,
    forms: dict[str, Any],
    call: Callable[[], Any],
    message: str | Callable[[Any], str],
    anchor: str,
    field_map: dict[str, Any] | None = None,
) -> HttpResponse:
    """Validate `form`, then call the service; map its ValidationError onto `form`, its
    ConflictError to a 409. Invalid input or a refusal renders the page again with the forms."""
    if not form.is_valid():
        return _refuse(request, item, forms, 422)
    try:
        result = call()
    except ValidationError as exc:
        F.apply_errors(form, exc, field_map)
        return _refuse(request, item, forms, 422)
    except ConflictError as exc:
        return _refuse(request, item, forms, 409, conflict=str(exc))
    return _respond(request, item, message(result) if callable(message) else message, anchor)


def _version(form) -> int | None:
    return form.cleaned_data.get("version")


def _pick(form, *names: str) -> dict[str, Any]:
    """The named cleaned fields of a validated form, as service keyword arguments."""
    return {name: form.cleaned_data[name] for name in names}


@item_action(P.can_drive, "move")
def item_transition(request: HtmxHttpRequest, item: Item) -> HttpResponse:
    to = request.POST.get("to", "")
    form = F.TransitionForm(request.POST, auto_id=f"id_t_{to}_%s")
    forms: dict[str, Any] = {"transition": {to: form}, "open_form": "transition"}
    if not form.is_valid():
        forms["transition_error"] = "; ".join(str(m) for errs in form.errors.values() for m in errs)
        return _refuse(request, item, forms, 422)
    try:
        moved = S.transition_item(
            item,
            actor=request.user,
            to=form.cleaned_data["to"],
            reason=form.cleaned_data["reason"],
            expected_version=_version(form),
        )
    except ValidationError as exc:
        forms["transition_error"] = " ".join(exc.messages)
        return _refuse(request, item, forms, 422)
    except ConflictError as exc:
        return _refuse(request, item, forms, 409, conflict=str(exc))
    return _respond(request, moved, f"{moved.ref} is now at {moved.get_status_display()}.", "steps")


@item_action(lambda user, item: P.can_manage(user), "assess")
def item_assess(request: HtmxHttpRequest, item: Item) -> HttpResponse:
    form = F.AssessForm(request.POST)
    forms = {"assess": form}
    return _run(
        request,
        item,
        form,
        forms,
        lambda: S.assess_item(
            item,
            actor=request.user,
            decision=form.cleaned_data["decision"],
            reason=form.cleaned_data["reason"],
            revisit_date=form.cleaned_data["revisit_date"],
            owner=form.cleaned_data["owner"],
            expected_version=_version(form),
        ),
        lambda done: f"{done.ref} assessed: {done.get_status_display()}.",
        "assessment",
    )


def _with_reason(
    request: HtmxHttpRequest,
    item: Item,
    key: str,
    form_class: type[F.VersionedForm],
    service: Callable[..., Item],
    message: Callable[[Any], str],
    anchor: str,
) -> HttpResponse:
    """A manager's move that needs a reason (reopen, undo an acceptance): `service(item, actor,
    reason, expected_version)`."""
    form = form_class(request.POST)
    return _run(
        request,
        item,
        form,
        {key: form},
        lambda: service(
            item, actor=request.user, reason=form.cleaned_data["reason"], expected_version=_version(form)
        ),
        message,
        anchor,
    )


@item_action(lambda user, item: P.can_manage(user), "reopen")
def item_reopen(request: HtmxHttpRequest, item: Item) -> HttpResponse:
    def reopened(done: Item) -> str:
        return f"{done.ref} is reopened: {done.get_status_display()}."

    return _with_reason(request, item, "reopen", F.ReopenForm, S.reopen_item, reopened, "steps")


@item_action(lambda user, item: P.can_manage(user), "undo the acceptance of")
def item_undo_accept(request: HtmxHttpRequest, item: Item) -> HttpResponse:
    def undone(done: Item) -> str:
        return f"{done.ref} is back for assessment: its acceptance is undone."

    return _with_reason(request, item, "undo", F.UndoAcceptanceForm, S.undo_acceptance, undone, "acceptance")


@item_action(lambda user, item: P.can_submit(user), "raise follow-ups of")
def item_follow_up(request: HtmxHttpRequest, item: Item) -> HttpResponse:
    form = F.FollowUpRaiseForm(request.POST, prefix="follow-up")
    forms = {"follow_up": form, "open_form": "follow_up"}
    return _run(
        request,
        item,
        form,
        forms,
        lambda: S.raise_follow_up(
            item,
            actor=request.user,
            title=form.cleaned_data["title"],
            description=form.cleaned_data["description"],
        ),
        lambda child: f"Follow-up {child.ref} raised: it waits for assessment.",
        "closure",
    )


@item_action(P.can_drive, "change the blockers of")
def item_block(request: HtmxHttpRequest, item: Item) -> HttpResponse:
    form = F.BlockForm(request.POST)
    forms = {"block": form, "open_form": "block"}
    return _run(
        request,
        item,
        form,
        forms,
        lambda: S.set_blocked(
            item,
            actor=request.user,
            blocked=form.cleaned_data["blocked"],
            blocker=form.cleaned_data["blocker"],
            expected_version=_version(form),
        ),
        lambda done: f"{item.ref} is {'marked' if done.blocked else 'no longer'} blocked.",
        "blockers",
    )


@item_action(P.can_drive, "escalate")
def item_escalate(request: HtmxHttpRequest, item: Item) -> HttpResponse:
    form = F.EscalateForm(request.POST)
    forms = {"escalate": form, "open_form": "escalate"}
    return _run(
        request,
        item,
        form,
        forms,
        lambda: S.escalate_item(item, actor=request.user, note=form.cleaned_data["note"]),
        f"{item.ref} is escalated to the register owner.",
        "blockers",
    )


@item_action(P.can_drive, "evaluate")
def item_evaluate(request: HtmxHttpRequest, item: Item) -> HttpResponse:
    form = F.EvaluateForm(request.POST)
    forms = {"evaluate": form}
    return _run(
        request,
        item,
        form,
        forms,
        lambda: S.evaluate_item(
            item, actor=request.user, note=form.cleaned_data["note"], expected_version=_version(form)
        ),
        lambda done: f"{done.ref} evaluated: {done.get_evaluation_result_display()}.",
        "evaluation",
    )


@item_action(P.can_drive, "close")
def item_close(request: HtmxHttpRequest, item: Item) -> HttpResponse:
    withdraw_only = item.status != C.Status.MOMENTUM
    form = F.CloseForm(request.POST, withdraw_only=withdraw_only)
    formset = F.FollowUpFormSet(request.POST, prefix=F.FOLLOW_UP_PREFIX)
    forms = {"close": (form, formset), "open_form": "close"}
    if not (form.is_valid() & formset.is_valid()):
        return _refuse(request, item, forms, 422)
    rows = [row for row in formset.forms if row.has_content()]
    follow_ups = [
        {"title": row.cleaned_data["title"].strip(), "description": row.cleaned_data["description"].strip()}
        for row in rows
    ]
    # The service numbers follow-ups from 1 in the order given: send its keys back to their row.
    field_map = {f"follow_ups[{n}].title": (row, "title") for n, row in enumerate(rows, start=1)}
    data = form.cleaned_data
    return _run(
        request,
        item,
        form,
        forms,
        lambda: S.close_item(
            item,
            actor=request.user,
            outcome=data["outcome"],
            benefit_category=data["benefit_category"],
            realised_delta=data["realised_delta"],
            lessons=data["lessons"],
            follow_ups=follow_ups,
            expected_version=_version(form),
        ),
        lambda done: (
            f"{done.ref} closed: {done.get_outcome_display()}"
            + (f", {len(follow_ups)} follow-up item(s) created." if follow_ups else ".")
        ),
        "closure",
        field_map,
    )


@item_action(lambda user, item: P.can_comment(user), "comment on")
def item_comment(request: HtmxHttpRequest, item: Item) -> HttpResponse:
    form = F.CommentForm(request.POST)
    forms = {"comment": form}
    return _run(
        request,
        item,
        form,
        forms,
        lambda: S.add_comment(item, actor=request.user, body=form.cleaned_data["body"]),
        "Comment added.",
        "timeline",
    )


@item_action(P.can_edit, "add indicators to")
def indicator_add(request: HtmxHttpRequest, item: Item) -> HttpResponse:
    form = F.IndicatorForm(request.POST, prefix="ind-new")
    forms = {"indicator_add": form, "open_form": "indicator_add"}
    return _run(
        request,
        item,
        form,
        forms,
        lambda: S.add_indicator(item, actor=request.user, **form.service_data()),
        lambda indicator: f"Indicator “{indicator.name}” added.",
        "indicators",
    )


@item_action(P.can_edit, "edit indicators of")
def indicator_edit(request: HtmxHttpRequest, item: Item, indicator_pk: int) -> HttpResponse:
    indicator = get_object_or_404(Indicator.objects.select_related("item"), pk=indicator_pk, item=item)
    form = F.IndicatorForm(request.POST, prefix=f"ind{indicator.pk}")
    forms: dict[str, Any] = {"indicator_edit": {indicator.pk: form}, "open_form": f"indicator{indicator.pk}"}
    if not form.is_valid():
        return _refuse(request, item, forms, 422)
    try:
        S.update_indicator(
            indicator, actor=request.user, expected_version=_version(form), **form.service_data()
        )
    except ValidationError as exc:
        F.apply_errors(form, exc)
        return _refuse(request, item, forms, 422)
    except ConflictError as exc:
        current = Indicator.objects.get(pk=indicator.pk)
        kept = _kept_after_conflict(request, F.IndicatorForm, f"ind{indicator.pk}", current.version)
        forms["indicator_edit"] = {indicator.pk: kept}
        forms["indicator_conflict"] = {indicator.pk: {"message": str(exc), "current": current}}
        return _refuse(request, item, forms, 409, conflict=str(exc))
    return _respond(request, item, f"Indicator “{form.cleaned_data['name']}” saved.", "indicators")


def _kept_after_conflict(request: HtmxHttpRequest, form_class, prefix: str, version: int):
    """The user's input again, with the version now current: saving again is a deliberate choice
    made after seeing the other change, never a silent overwrite."""
    data = request.POST.copy()
    data[f"{prefix}-version"] = str(version)
    kept = form_class(data, prefix=prefix)
    kept.is_valid()
    return kept


@item_action(P.can_edit, "edit indicators of", methods=("GET", "POST"))
def indicator_bind(request: HtmxHttpRequest, item: Item, indicator_pk: int) -> HttpResponse:
    """GET: the bind form (alone for htmx, else the page with it open); POST: bind the indicator
    to a metric and compute its baseline from the records (`services.bind_indicator`)."""
    indicator = get_object_or_404(
        Indicator.objects.select_related("item__service"), pk=indicator_pk, item=item
    )
    prefix = f"bind{indicator.pk}"
    if request.method == "GET":
        form = BindIndicatorForm.for_indicator(indicator, prefix=prefix)
        if request.htmx and not request.htmx.boosted:
            return render(request, BIND_TEMPLATE, {"item": item, "ind": indicator, "form": form})
        fresh = get_object_or_404(_item_queryset(), pk=item.pk)
        return render(request, PAGE_TEMPLATE, _context(request, fresh, {"bind": {indicator.pk: form}}))
    form = BindIndicatorForm(request.POST, prefix=prefix)
    forms: dict[str, Any] = {"bind": {indicator.pk: form}}
    if not form.is_valid():
        return _refuse(request, item, forms, 422)
    try:
        bound = S.bind_indicator(
            indicator, actor=request.user, expected_version=_version(form), **form.service_data()
        )
    except ValidationError as exc:
        F.apply_errors(form, exc)
        return _refuse(request, item, forms, 422)
    except ConflictError as exc:
        current = Indicator.objects.get(pk=indicator.pk)
        kept = _kept_after_conflict(request, BindIndicatorForm, prefix, current.version)
        forms["bind"] = {indicator.pk: kept}
        forms["bind_conflict"] = {indicator.pk: {"message": str(exc), "binding": _binding(current)}}
        return _refuse(request, item, forms, 409, conflict=str(exc))
    label = DEFINITIONS[bound.metric_key].label
    assert bound.baseline_value is not None  # bind_indicator computes it, or refuses
    baseline = f"{display.number(bound.baseline_value)}{bound.unit and ' ' + bound.unit}"
    return _respond(request, item, f"“{bound.name}” bound to {label}: baseline {baseline}.", "indicators")


@item_action(lambda user, item: P.can_view(user), "record measurements of")
def measurement_add(request: HtmxHttpRequest, item: Item, indicator_pk: int) -> HttpResponse:
    """The item's driver, or the indicator's owner whatever their role above viewer."""
    indicator = get_object_or_404(Indicator.objects.select_related("item"), pk=indicator_pk, item=item)
    if not P.can_measure(request.user, indicator):
        return _forbidden(request, f"You may not record measurements of {indicator.name} ({item.ref}).")
    form = F.MeasurementForm(request.POST, prefix=f"m{indicator.pk}")
    forms = {"measure": {indicator.pk: form}, "open_form": f"measure{indicator.pk}"}
    return _run(
        request,
        item,
        form,
        forms,
        lambda: S.record_measurement(
            indicator,
            actor=request.user,
            value=form.cleaned_data["value"],
            measured_at=form.cleaned_data["measured_at"],
            note=form.cleaned_data["note"],
        ),
        lambda m: (
            f"Measured {indicator.name}: {display.number(m.value)}{indicator.unit and ' ' + indicator.unit}."
        ),
        "indicators",
    )


@item_action(P.can_drive, "plan actions for")
def action_add(request: HtmxHttpRequest, item: Item) -> HttpResponse:
    form = F.ActionForm(request.POST, prefix="action")
    forms = {"action": form, "open_form": "action"}
    return _run(
        request,
        item,
        form,
        forms,
        lambda: S.add_action(item, actor=request.user, **_pick(form, "title", "owner", "due_date")),
        lambda action: f"Action “{action.title}” planned.",
        "plan",
    )


@item_action(lambda user, item: P.can_view(user), "change actions of")
def action_toggle(request: HtmxHttpRequest, item: Item, action_pk: int) -> HttpResponse:
    """The item's driver, or the action's owner whatever their role above viewer."""
    action = get_object_or_404(Action.objects.select_related("item"), pk=action_pk, item=item)
    if not P.can_update_action(request.user, action):
        return _forbidden(request, f"You may not change the action “{action.title}” of {item.ref}.")
    form = F.ActionToggleForm(request.POST)
    forms = {"action_toggle": {action.pk: form}}
    return _run(
        request,
        item,
        form,
        forms,
        lambda: S.update_action(
            action, actor=request.user, expected_version=_version(form), done=form.cleaned_data["done"]
        ),
        lambda updated: f"Action “{action.title}” {'done' if updated.done else 'reopened'}.",
        "plan",
    )


@item_action(P.can_drive, "cancel actions of")
def action_cancel(request: HtmxHttpRequest, item: Item, action_pk: int) -> HttpResponse:
    action = get_object_or_404(Action.objects.select_related("item"), pk=action_pk, item=item)
    form = F.ActionCancelForm(request.POST, prefix=f"cancel{action.pk}")
    forms = {"action_cancel": {action.pk: form}, "open_form": f"cancel{action.pk}"}
    return _run(
        request,
        item,
        form,
        forms,
        lambda: S.cancel_action(
            action, actor=request.user, reason=form.cleaned_data["reason"], expected_version=_version(form)
        ),
        f"Action “{action.title}” cancelled.",
        "plan",
        {"cancel_reason": (form, "reason"), "cancelled": (form, "reason")},
    )


@item_action(P.can_drive, "reinstate actions of")
def action_reinstate(request: HtmxHttpRequest, item: Item, action_pk: int) -> HttpResponse:
    action = get_object_or_404(Action.objects.select_related("item"), pk=action_pk, item=item)
    form = F.ActionToggleForm(request.POST)
    forms = {"action_toggle": {action.pk: form}}
    return _run(
        request,
        item,
        form,
        forms,
        lambda: S.reinstate_action(action, actor=request.user, expected_version=_version(form)),
        f"Action “{action.title}” reinstated: it is open again.",
        "plan",
    )


@item_action(P.can_drive, "change actions of")
def action_remove(request: HtmxHttpRequest, item: Item, action_pk: int) -> HttpResponse:
    action = get_object_or_404(Action.objects.select_related("item"), pk=action_pk, item=item)
    try:
        S.remove_action(action, actor=request.user)
    except ValidationError as exc:
        form = F.ActionToggleForm({})
        form.is_valid()
        F.apply_errors(form, exc)
        return _refuse(request, item, {"action_toggle": {action.pk: form}}, 422)
    return _respond(request, item, f"Action “{action.title}” removed.", "plan")


urlpatterns = [
    path("<int:pk>/transition/", item_transition, name="item_transition"),
    path("<int:pk>/assess/", item_assess, name="item_assess"),
    path("<int:pk>/reopen/", item_reopen, name="item_reopen"),
    path("<int:pk>/undo-acceptance/", item_undo_accept, name="item_undo_accept"),
    path("<int:pk>/follow-ups/", item_follow_up, name="item_follow_up"),
    path("<int:pk>/blocker/", item_block, name="item_block"),
    path("<int:pk>/escalate/", item_escalate, name="item_escalate"),
    path("<int:pk>/evaluate/", item_evaluate, name="item_evaluate"),
    path("<int:pk>/close/", item_close, name="item_close"),
    path("<int:pk>/comments/", item_comment, name="item_comment"),
    path("<int:pk>/indicators/add/", indicator_add, name="indicator_add"),
    path("<int:pk>/indicators/<int:indicator_pk>/edit/", indicator_edit, name="indicator_edit"),
    path("<int:pk>/indicators/<int:indicator_pk>/measure/", measurement_add, name="measurement_add"),
    path("<int:pk>/indicators/<int:indicator_pk>/bind/", indicator_bind, name="indicator_bind"),
    path("<int:pk>/actions/add/", action_add, name="action_add"),
    path("<int:pk>/actions/<int:action_pk>/toggle/", action_toggle, name="action_toggle"),
    path("<int:pk>/actions/<int:action_pk>/cancel/", action_cancel, name="action_cancel"),
    path("<int:pk>/actions/<int:action_pk>/reinstate/", action_reinstate, name="action_reinstate"),
    path("<int:pk>/actions/<int:action_pk>/remove/", action_remove, name="action_remove"),
]
