"""What may carry attachments, registered by the apps that own those models.

This app sits below the register, the records and the reviews, so it cannot ask them who may see
or change one of their objects. Each of them registers its models in its AppConfig.ready() with
a Target: who may see the object (and so its files), who may attach to it, and the object whose
history records the upload (an item for its comments, a review for its minutes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import models

from tikting.accounts.models import Actor


@dataclass(frozen=True)
class Target:
    label: str  # "item", "incident", "comment" … (messages)
    can_view: Callable[[Actor, Any], bool]
    can_attach: Callable[[Actor, Any], bool]
    root: Callable[[Any], models.Model] = lambda obj: obj  # whose history shows the upload
    url: Callable[[Any], str] = lambda obj: ""  # the page that shows the object's attachments


_targets: dict[str, Target] = {}


def register_target(model: type[models.Model], target: Target) -> None:
    _targets[model._meta.label_lower] = target


def target_for(obj: models.Model) -> Target | None:
    return _targets.get(obj._meta.label_lower)


def key_of(obj: models.Model) -> str:
    """A target as text for forms and the API: '<app>.<model>:<pk>' ('improvement.item:12')."""
    return f"{obj._meta.label_lower}:{obj.pk}"


def resolve(key: str) -> tuple[models.Model, Target]:
    """The object a target key names, and its Target; ValidationError on `target` otherwise."""
    label, _, pk = (key or "").strip().partition(":")
    target = _targets.get(label.lower())
    if target is None or not pk:
        raise ValidationError(
            {"target": f"'{key[:80]}' is not something files attach to (e.g. improvement.item:12)."}
        )
    app_label, _, model_name = label.lower().partition(".")
    missing = ValidationError({"target": f"No {target.label} '{pk[:40]}'."})
    try:
        model = ContentType.objects.get_by_natural_key(app_label, model_name).model_class()
    except ContentType.DoesNotExist as exc:
        raise missing from exc
    if model is None:
        raise missing
    try:
        obj = model._default_manager.get(pk=pk)
    except (ObjectDoesNotExist, ValueError, ValidationError) as exc:
        raise missing from exc
    return obj, target
