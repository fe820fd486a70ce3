"""An item's life: assess (and undo an acceptance), move a step, block, escalate, evaluate, close,
raise follow-ups, reopen."""

from django.http import HttpRequest
from ninja import Status

from tikting.accounts.models import User
from tikting.core.api import errors

from .. import services as S
from .common import _actor, _detail, _get_item, _lookup, _resolve, router
from .inputs import (
    AssessIn,
    BlockIn,
    CloseIn,
    EscalateIn,
    EvaluateIn,
    FollowUpRaiseIn,
    ReopenIn,
    TransitionIn,
    UndoAcceptanceIn,
)
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
    """One step forward (preconditions checked: the 422 lists what is missing and what to do) or
    one step back; a blocked item moves neither way until unblocked."""
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
    lessons). The outcome defaults to the evaluation's; a better one needs its reason in the
    lessons. Refused while the item is blocked or an action is open (done or cancelled, each).
    Follow-ups become new child items."""
    item = _get_item(request, item_id)
    data = payload.dict()
    follow_ups = []
    for n, follow_up in enumerate(data.pop("follow_ups"), start=1):
        follow_up = {k: v for k, v in follow_up.items() if v is not None}
        follow_ups.append(_resolve(follow_up, prefix=f"follow_ups[{n}]."))
    S.close_item(item, actor=_actor(request), follow_ups=follow_ups, **data)
    return _detail(request, item_id)


@router.post(
    "/{item_id}/follow-ups",
    response={201: ItemDetail, **errors(403, 404, 422)},
    summary="Raise a follow-up",
)
def raise_follow_up(request: HttpRequest, item_id: Id, payload: FollowUpRaiseIn):
    """A new item, child of this one, to be assessed; also once the item is closed."""
    item = _get_item(request, item_id)
    child = S.raise_follow_up(item, actor=_actor(request), **payload.dict())
    return Status(201, _detail(request, child.pk))


@router.post(
    "/{item_id}/reopen",
    response={200: ItemDetail, **errors(403, 404, 409, 422)},
    summary="Reopen a closed or rejected item",
)
def reopen_item(request: HttpRequest, item_id: Id, payload: ReopenIn):
    """Managers, with a reason: a rejected item goes back to assessment, a closed one to the step
    it was closed or withdrawn from (its closure undone)."""
    item = _get_item(request, item_id)
    S.reopen_item(item, actor=_actor(request), **payload.dict())
    return _detail(request, item_id)


@router.post(
    "/{item_id}/undo-acceptance",
    response={200: ItemDetail, **errors(403, 404, 409, 422)},
    summary="Undo an acceptance",
)
def undo_acceptance(request: HttpRequest, item_id: Id, payload: UndoAcceptanceIn):
    """Managers, with a reason, while the item is still at step 1: back to New, to assess again."""
    item = _get_item(request, item_id)
    S.undo_acceptance(item, actor=_actor(request), **payload.dict())
    return _detail(request, item_id)
