"""Actions of an item (listed and planned under /items/{id}, changed under /actions/{id})."""

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from ninja import Status

from tikting.core.api import errors

from .. import services as S
from .common import _actor, _get_action, _get_item, _resolve, lookups, router
from .inputs import ActionCancelIn, ActionCreate, ActionPatch, ActionReinstateIn
from .schemas import ActionOut, Id

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


@lookups.post(
    "/actions/{action_id}/cancel",
    response={200: ActionOut, **errors(403, 404, 409, 422)},
    tags=["actions"],
    summary="Cancel an action",
)
def cancel_action(request: HttpRequest, action_id: Id, payload: ActionCancelIn):
    """An open action that will not be done, with the reason: it stays in the plan and no longer
    holds the item back from evaluation or closure."""
    S.cancel_action(_get_action(request, action_id), actor=_actor(request), **payload.dict())
    return _get_action(request, action_id)


@lookups.post(
    "/actions/{action_id}/reinstate",
    response={200: ActionOut, **errors(403, 404, 409, 422)},
    tags=["actions"],
    summary="Reinstate a cancelled action",
)
def reinstate_action(request: HttpRequest, action_id: Id, payload: ActionReinstateIn):
    S.reinstate_action(_get_action(request, action_id), actor=_actor(request), **payload.dict())
    return _get_action(request, action_id)


@lookups.delete("/actions/{action_id}", response={204: None, **errors(403, 404, 422)}, tags=["actions"])
def remove_action(request: HttpRequest, action_id: Id):
    """Only while the item is planning (up to step 4); later, cancel the action with a reason."""
    S.remove_action(_get_action(request, action_id), actor=_actor(request))
    return Status(204, None)
