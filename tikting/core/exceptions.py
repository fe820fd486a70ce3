from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import models


class ConflictError(Exception):
    """The record changed since the caller read it: their save is refused, nothing is overwritten."""

    def __init__(self, obj, expected_version: int | None = None):
        self.obj = obj
        self.expected_version = expected_version
        super().__init__(
            f"{obj} was changed by someone else since you opened it "
            f"(your version {expected_version}, current {getattr(obj, 'version', '?')}). "
            "Reload to see their change, then apply yours again."
        )


class PermissionDeniedError(Exception):
    """The acting user may not do this."""


def name_objects(objects: Iterable[models.Model], limit: int = 5) -> str:
    """Records named as people read them, by kind: `7 items (CI-00001 Improve mail, …, and 2 more)`
    (never a Python repr like `{<Item: …>}`)."""
    by_model: dict[type[models.Model], list[str]] = {}
    for obj in objects:
        by_model.setdefault(type(obj), []).append(str(obj))
    parts = []
    for model, names in sorted(by_model.items(), key=lambda pair: str(pair[0]._meta.verbose_name)):
        names.sort()
        shown = ", ".join(names[:limit]) + (f", and {len(names) - limit} more" if len(names) > limit else "")
        label = model._meta.verbose_name if len(names) == 1 else model._meta.verbose_name_plural
        parts.append(f"{len(names)} {label} ({shown})")
    return "; ".join(parts)


def in_use_message(obj: models.Model, exc: models.ProtectedError | models.RestrictedError) -> str:
    """Why `obj` cannot be deleted, naming what still uses it."""
    users = exc.protected_objects if isinstance(exc, models.ProtectedError) else exc.restricted_objects
    return f"{obj} cannot be deleted: it is still used by {name_objects(users)}."


__all__ = ["ConflictError", "PermissionDeniedError", "ValidationError", "in_use_message", "name_objects"]
