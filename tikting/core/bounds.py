"""Bounds on free text that every app shares: one cap for long texts (descriptions, comments,
minutes, notes), enforced by model validation so that forms, the API and imports all refuse the
same input with the same message.

A text column without a cap takes a megabyte pasted by mistake (or on purpose) and every page
that shows it pays for it; 20,000 characters is about eight printed pages, more than any
description, comment or minute needs.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator

LONG_TEXT_LIMIT = 20_000


def long_text() -> list[MaxLengthValidator]:
    """The validators of a long text field (`models.TextField(validators=long_text())`)."""
    return [MaxLengthValidator(LONG_TEXT_LIMIT)]


def check_long_text(**fields: str | None) -> None:
    """Raise ValidationError naming each field whose text is over LONG_TEXT_LIMIT characters, with
    the message model validation gives (for texts stored without `full_clean()`)."""
    errors: dict[str, list[str]] = {}
    for name, value in fields.items():
        try:
            MaxLengthValidator(LONG_TEXT_LIMIT)(value or "")
        except ValidationError as exc:
            errors[name] = exc.messages
    if errors:
        raise ValidationError(errors)
