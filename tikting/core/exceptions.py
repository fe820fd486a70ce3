from django.core.exceptions import ValidationError


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


__all__ = ["ConflictError", "PermissionDeniedError", "ValidationError"]
