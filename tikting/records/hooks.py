"""What the record pages plug into the apps below them: every kind's records carry attachments
(who may change the record may attach to it; whoever reads records reads its files), and every
kind's list can be saved as a view."""

from __future__ import annotations

from typing import Any

from django.urls import reverse, reverse_lazy

from tikting.attachments.registry import Target, register_target
from tikting.savedviews.registry import SavedList, register_list

from . import forms as F
from . import registry as R


def _list_params(kind: R.RecordKind) -> set[str]:
    names = set(F.filterable(kind)) | {"q", "sort"}
    if kind.date_field:
        names |= {"date_from", "date_to"}
    return names


def _sees(user: Any, obj: Any) -> bool:
    return R.can_view_records(user)


def _target(kind: R.RecordKind) -> Target:
    def can_attach(user: Any, obj: Any) -> bool:
        return R.can_edit_records(user, kind)

    def url(obj: Any) -> str:
        return reverse("records:detail", args=[kind.slug, obj.pk])

    return Target(label=kind.label.lower(), can_view=_sees, can_attach=can_attach, url=url)


def _saved_list(kind: R.RecordKind) -> SavedList:
    def params() -> set[str]:
        return _list_params(kind)

    return SavedList(
        key=f"records:{kind.slug}",
        label=kind.label_plural,
        url=reverse_lazy("records:list", args=[kind.slug]),
        params=params,
    )


def register() -> None:
    for kind in R.KINDS.values():
        register_target(kind.model, _target(kind))
        register_list(_saved_list(kind))


__all__: list[Any] = ["register"]
