"""Services of an item itself: submit, edit, rank the backlog, comment, link source records."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models, transaction

from tikting.accounts.models import Actor
from tikting.core import audit, events
from tikting.core.bounds import check_long_text

from .. import choices as C
from .. import permissions as P
from ..models import Comment, Item, SourceLink
from .common import (
    ITEM_FIELDS,
    MANAGER_FIELDS,
    _announce_owner,
    _check_fields,
    _check_owner,
    _check_writable,
    _lock,
    _pk,
    _save_item,
    _touch,
    _user,
)


@transaction.atomic
def create_item(*, actor: Actor, **data: Any) -> Item:
    """Submit an opportunity. It starts as New, to be assessed by an improvement manager."""
    P.check(actor, P.can_submit, what="submit an improvement opportunity")
    _check_fields(data, ITEM_FIELDS)
    if set(data) & MANAGER_FIELDS and any(data.get(f) is not None for f in MANAGER_FIELDS):
        P.check(actor, P.can_manage, what="assign an owner or rank")
    _check_owner(data.get("owner"))
    item = Item(**data)
    item.submitted_by = _user(actor)
    item.status = C.Status.NEW
    item.full_clean()
    item.save()
    audit.record(item, action="create", actor=actor, changes=audit.diff({}, audit.snapshot(item)))
    audit.record_status(item, old="", new=item.status, actor=actor, reason="submitted", at=item.identified_at)
    _announce_owner(item, item.owner_id, actor=actor)
    return item


@transaction.atomic
def update_item(item: Item, *, actor: Actor, expected_version: int | None = None, **changes: Any) -> Item:
    """Change the fields given (ITEM_FIELDS); owner and rank need a manager. ConflictError when
    the item changed since `expected_version`."""
    P.check(actor, P.can_edit, item, what=f"edit {item.ref}")
    _check_fields(changes, ITEM_FIELDS)
    locked = _lock(Item, item, expected_version)
    _check_writable(locked, "edit it")
    before = audit.snapshot(locked)
    if any(
        getattr(locked, f if f not in {"owner", "parent"} else f"{f}_id") != _pk(changes[f])
        for f in set(changes) & MANAGER_FIELDS
    ):
        P.check(actor, P.can_manage, what="assign an owner or rank")
    if "owner" in changes:
        _check_owner(changes["owner"])
    if "parent" in changes and changes["parent"] is not None and _pk(changes["parent"]) == locked.pk:
        raise ValidationError({"parent": "An item cannot be its own parent."})
    previous_owner = locked.owner_id
    for name, value in changes.items():
        setattr(locked, name, value)
    saved = _save_item(locked, before, actor=actor)
    if saved.owner_id != previous_owner:
        _announce_owner(saved, saved.owner_id, actor=actor)
    return saved


@transaction.atomic
def rank_items(ordered_ids: Sequence[int], *, actor: Actor) -> int:
    """Set the manual backlog order: the given items get ranks 1..n in that order."""
    P.check(actor, lambda u: P.can_manage(u), what="rank the backlog")
    ids = [int(i) for i in ordered_ids]
    items = {i.pk: i for i in Item.objects.select_for_update().filter(pk__in=ids)}
    missing = [i for i in ids if i not in items]
    if missing:
        raise ValidationError({"items": f"Unknown item ids: {missing[:10]}"})
    ended = [items[i].ref for i in ids if items[i].read_only]
    if ended:
        raise ValidationError(
            {"items": f"Only open items are ranked; closed or rejected: {', '.join(ended[:10])}."}
        )
    changed: list[Item] = []
    for position, pk in enumerate(ids, start=1):
        item = items[pk]
        if item.rank != position:
            audit.record(
                item,
                action="update",
                actor=actor,
                changes={"rank": [item.rank, position]},
                message="Backlog re-ranked",
            )
            item.rank = position
            item.version += 1
            changed.append(item)
    Item.objects.bulk_update(changed, ["rank", "version"])
    return len(changed)


@transaction.atomic
def add_comment(item: Item, *, actor: Actor, body: str, kind: str = Comment.Kind.COMMENT) -> Comment:
    """A comment (or lesson) on the item; the item counts as active again."""
    P.check(actor, P.can_comment, what="comment")
    body = (body or "").strip()
    if not body:
        raise ValidationError({"body": "A comment cannot be empty."})
    check_long_text(body=body)
    comment = Comment.objects.create(item=item, author=_user(actor), kind=kind, body=body)
    _touch(item)
    events.emit(
        events.Kind.COMMENTED,
        item,
        actor=actor,
        summary=f"{item.ref} {item.title}: {'a lesson' if kind == Comment.Kind.LESSON else 'a comment'}",
        text=body,
        data={"comment": comment.pk},
    )
    return comment


@transaction.atomic
def link_source(item: Item, *, actor: Actor, record: models.Model, is_origin: bool = True) -> SourceLink:
    """Link a record of any kind (incident, problem, CI, …) to the item. Also on a closed item: a
    link is evidence beside the record (the incidents of a slip back), not a change of it."""
    P.check(actor, P.can_edit, item, what=f"link records to {item.ref}")
    link, created = SourceLink.objects.get_or_create(
        item=item,
        content_type=ContentType.objects.get_for_model(record),
        object_id=str(record.pk),
        defaults={"label": str(record)[:200], "is_origin": is_origin},
    )
    if created:
        audit.record(link, action="create", actor=actor, root=item, changes={"record": [None, str(record)]})
        _touch(item)
    return link
