"""An item's life: assess, move a step, block, escalate, evaluate, close, reopen."""

from django.http import HttpRequest

from tikting.accounts.models import User
from tikting.core.api import errors

from .. import services as S
from .common import _actor, _detail, _get_item, _lookup, _resolve, router
from .inputs import AssessIn, BlockIn, CloseIn, EscalateIn, EvaluateIn, ReopenIn, TransitionIn
from .schemas import Id, ItemDetail


@router.post(
    "/{item_id}/assess", response={200: ItemDetail, **errors(403, 404, 409, 422)}, summary="Assess an item"
)
def assess_item(request: HttpRequest, item_id: Id, payload: AssessIn):
    """Accept (into step 1), defer (reason and future revisit date) or reject (reason). Managers."""
    item = _get_item(request, item_id)
    data = payload.dict()
    owner = _lookup(User, data.pop("owner"), "owner", is_active=True)
    S.assess_item(item, actor=_actor(request), owner=owner, **data)
    return _detail(request, item_id)


@router.post(
    "/{item_id}/transition",
    response={200: ItemDetail, **errors(403, 404, 409, 422)},
    summary="Move an item one step",
)
def transition_item(request: HttpRequest, item_id: Id, payload: TransitionIn):
    """One step forward (preconditions checked: the 422 says what is missing) or one step back."""
    item = _get_item(request, item_id)
    S.transition_item(item, actor=_actor(request), **payload.dict())
    return _detail(request, item_id)


@router.post(
    "/{item_id}/block", response={200: ItemDetail, **errors(403, 404, 409, 422)}, summary="Block or unblock"
)
def block_item(request: HttpRequest, item_id: Id, payload: BlockIn):
    item = _get_item(request, item_id)
    S.set_blocked(item, actor=_actor(request), **payload.dict())
    return _detail(request, item_id)


@router.post(
    "/{item_id}/escalate", response={200: ItemDetail, **errors(403, 404, 422)}, summary="Escalate a blocker"
)
def escalate_item(request: HttpRequest, item_id: Id, payload: EscalateIn):
    """Escalate to the register owner: recorded on the item and put on the review agenda."""
    item = _get_item(request, item_id)
    S.escalate_item(item, actor=_actor(request), note=payload.note)
    return _detail(request, item_id)


@router.post(
    "/{item_id}/evaluate",
    response={200: ItemDetail, **errors(403, 404, 409, 422)},
    summary="Evaluate (step 6)",
)
def evaluate_item(request: HttpRequest, item_id: Id, payload: EvaluateIn):
    """Compare each primary indicator's latest measurement with its target and record the result."""
    item = _get_item(request, item_id)
    S.evaluate_item(item, actor=_actor(request), **payload.dict())
    return _detail(request, item_id)


@router.post(
    "/{item_id}/close", response={200: ItemDetail, **errors(403, 404, 409, 422)}, summary="Close or withdraw"
)
def close_item(request: HttpRequest, item_id: Id, payload: CloseIn):
    """Close from step 7 with an outcome (and benefit), or withdraw from any open step (with
    lessons). Follow-ups become new child items."""
    item = _get_item(request, item_id)
    data = payload.dict()
    follow_ups = []
    for n, follow_up in enumerate(data.pop("follow_ups"), start=1):
        follow_up = {k: v for k, v in follow_up.items() if v is not None}
        follow_ups.append(_resolve(follow_up, prefix=f"follow_ups[{n}]."))
    S.close_item(item, actor=_actor(request), follow_ups=follow_ups, **data)
    return _detail(request, item_id)


@router.post(
    "/{item_id}/reopen", response={200: ItemDetail, **errors(403, 404, 422)}, summary="Reopen a rejected item"
)
def reopen_item(request: HttpRequest, item_id: Id, payload: ReopenIn):
    item = _get_item(request, item_id)
    S.reopen_item(item, actor=_actor(request), reason=payload.reason)
    return _detail(request, item_id)
