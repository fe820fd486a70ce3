"""What the register plugs into the apps below it: items and comments carry attachments, the
register list can be saved as a view (tikting/attachments, tikting/savedviews)."""

from __future__ import annotations

from typing import Any

from django.urls import reverse_lazy

from tikting.attachments.registry import Target, register_target
from tikting.savedviews.registry import SavedList, register_list

from . import permissions as P
from .filtersets import FILTER_FIELDS


def _sees(user: Any, obj: Any) -> bool:
    return P.can_view(user)


def _attach_to_comment(user: Any, comment: Any) -> bool:
    """A comment's author adds files to it, and managers."""
    return P.can_manage(user) or (P.can_comment(user) and comment.author_id == user.pk)


def register() -> None:
    from .models import Comment, Item

    register_target(
        Item,
        Target(
            label="item",
            can_view=_sees,
            # Whoever may comment may attach (a closed item takes comments and files as evidence).
            can_attach=lambda user, item: P.can_comment(user),
            url=lambda item: item.get_absolute_url(),
        ),
    )
    register_target(
        Comment,
        Target(
            label="comment",
            can_view=_sees,
            can_attach=_attach_to_comment,
            root=lambda comment: comment.item,
            url=lambda comment: comment.item.get_absolute_url() + "#timeline",
        ),
    )
    register_list(
        SavedList(
            key="register",
            label="Register",
            url=reverse_lazy("improvement:list"),
            params=lambda: {*FILTER_FIELDS, "sort"},
        )
    )
