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


def register() -> None:
    for kind in R.KINDS.values():
        register_target(
            kind.model,
            Target(
                label=kind.label.lower(),
                can_view=lambda user, obj: R.can_view_records(user),
                can_attach=lambda user, obj, kind=kind: R.can_edit_records(user, kind),
                url=lambda obj, kind=kind: reverse("records:detail", args=[kind.slug, obj.pk]),
            ),
        )
        register_list(
            SavedList(
                key=f"records:{kind.slug}",
                label=kind.label_plural,
                url=reverse_lazy("records:list", args=[kind.slug]),
                params=lambda kind=kind: _list_params(kind),
            )
        )


__all__: list[Any] = ["register"]
