"""Checks for data that comes from outside (HTTP requests, imported files) before anything stores it.

- **NUL** (U+0000): PostgreSQL cannot store it in a text column (the write fails with a 500) and
  SQLite stores it silently; no legitimate text holds it. Every way in refuses it, naming the field.
- **Nesting**: JSON nested deeper than MAX_JSON_DEPTH is refused. Python's parser raises
  RecursionError at about a thousand levels, and code walking a value recursively fails sooner;
  nothing tikting reads (API bodies, `raw` objects, import rows) nests beyond a few levels.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

NUL = "\x00"
NUL_MESSAGE = "Text may not contain the NUL character (U+0000)."
MAX_JSON_DEPTH = 64
DEPTH_MESSAGE = f"The JSON is nested too deeply (more than {MAX_JSON_DEPTH} levels)."

# One problem: the field it is about (a dotted path into the value: `raw.events.0`; None for the
# whole input) and the message.
Problem = tuple[str | None, str]


class UntrustedInputError(ValueError):
    """The input cannot be taken as it is; `problems` names each field and why."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{field}: {msg}" if field else msg for field, msg in problems))


def shown(key: Any) -> str:
    """A key as it can be shown in a field path (a NUL in it written as the escape \\u0000)."""
    return str(key).replace(NUL, "\\u0000")


def problems_in(value: Any, *, max_depth: int = MAX_JSON_DEPTH, prefix: str = "") -> list[Problem]:
    """Every string (value or key) holding a NUL in a parsed JSON value, by path; or a single
    problem when the value nests deeper than `max_depth`. Iterative, so any depth is safe to walk."""
    found: list[Problem] = []
    stack: list[tuple[Any, str, int]] = [(value, prefix, 0)]
    while stack:
        current, path, depth = stack.pop()
        if isinstance(current, str):
            if NUL in current:
                found.append((path or None, NUL_MESSAGE))
            continue
        if not isinstance(current, dict | list | tuple):
            continue
        if depth >= max_depth:
            return [(None, DEPTH_MESSAGE)]
        items: Iterable[tuple[Any, Any]] = (
            current.items() if isinstance(current, dict) else enumerate(current)
        )
        children = []
        for key, child in items:
            child_path = f"{path}.{shown(key)}" if path else shown(key)
            if isinstance(key, str) and NUL in key:
                found.append((child_path, NUL_MESSAGE))
            children.append((child, child_path, depth + 1))
        stack.extend(reversed(children))
    return found


def check(value: Any, *, prefix: str = "") -> None:
    """Raise UntrustedInputError when `value` (parsed JSON, a row) holds a NUL or nests too deeply."""
    problems = problems_in(value, prefix=prefix)
    if problems:
        raise UntrustedInputError(problems)


def loads(text: str | bytes) -> Any:
    """json.loads, then `check`: a value nested too deeply or holding a NUL raises
    UntrustedInputError (invalid JSON still raises json.JSONDecodeError)."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise UntrustedInputError([(None, DEPTH_MESSAGE)]) from None
    check(value)
    return value
