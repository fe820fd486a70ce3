"""A save refused because someone else saved first (ConflictError), shown field by field.

The edit pages (the register's item form, the record forms) compare three versions of each field:
as the user opened it, as saved now by the other person, as the user typed it. Nothing is written:
the form comes back merged (their change where the user left a field alone, the user's where they
changed it) against the current version, and one button saves it (templates/includes/conflict.html).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Side:
    """One version of a field: `value` to compare (plain: ids, ISO text, None for empty), `text` to show."""

    value: Any
    text: str


def conflict_row(label: Any, *, opened: Side, theirs: Side, yours: Side) -> dict[str, Any] | None:
    """The row of one field (`label`: text or a lazy translation), or None when neither side
    changed it."""
    they_changed = theirs.value != opened.value
    you_changed = yours.value != opened.value
    if not (they_changed or you_changed):
        return None
    return {
        "label": str(label),
        "opened": opened.text,
        "theirs": theirs.text,
        "yours": yours.text,
        "they_changed": they_changed,
        "you_changed": you_changed,
        "clash": they_changed and you_changed and yours.value != theirs.value,
        "same": they_changed and you_changed and yours.value == theirs.value,
    }


def who(names: list[str]) -> str:
    """The people who saved meanwhile, as a phrase: "Mia Moreau", "Mia Moreau and Ada Novak"."""
    unique = list(dict.fromkeys(n for n in names if n))
    if not unique:
        return "someone else"
    return unique[0] if len(unique) == 1 else ", ".join(unique[:-1]) + " and " + unique[-1]
