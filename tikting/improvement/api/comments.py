"""Comments and history of an item."""

from django.http import HttpRequest
from ninja import Status
from ninja.pagination import paginate

from tikting.core import audit
from tikting.core.api import errors

from .. import services as S
from .common import Page, _actor, _get_item, router
from .inputs import CommentIn
from .schemas import CommentOut, HistoryOut, Id


@router.get(
    "/{item_id}/comments", response={200: list[CommentOut], **errors(404, 422)}, summary="Comments of an item"
)
def list_comments(request: HttpRequest, item_id: Id):
    item = _get_item(request, item_id)
    return item.comments.select_related("author")


@router.post(
    "/{item_id}/comments", response={201: CommentOut, **errors(403, 404, 422)}, summary="Comment on an item"
)
def add_comment(request: HttpRequest, item_id: Id, payload: CommentIn):
    item = _get_item(request, item_id)
    return Status(201, S.add_comment(item, actor=_actor(request), body=payload.body, kind=payload.kind))


@router.get(
    "/{item_id}/history", response={200: list[HistoryOut], **errors(404, 422)}, summary="History of an item"
)
@paginate(Page)
def item_history(request: HttpRequest, item_id: Id):
    """Audit rows of the item and its indicators, measurements and actions, newest first."""
    return audit.history_for(_get_item(request, item_id))
