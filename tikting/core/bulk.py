"""Acting on many records at once, one at a time: each change in its own transaction, through the
same service as one by one (so the same checks, and a history row on each), and a report of what
was done and what was refused, record by record, with the service's own reason.

Unlike the intake queue's bulk triage (all or nothing), a refusal here stops nothing: the others
go through, and the refusal says which record and why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from .exceptions import ConflictError, PermissionDeniedError

BULK_LIMIT = 500  # records one request may act on (a page is 50)


@dataclass
class Outcome:
    ref: str
    title: str
    url: str
    ok: bool
    reason: str = ""


@dataclass
class BulkResult:
    action: str  # what was asked, as people say it ("Assign to Olga Owner")
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def done(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.ok]

    @property
    def refused(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    def summary(self) -> str:
        done, refused = len(self.done), len(self.refused)
        return f"{self.action}: {done} done, {refused} refused."


def reason_of(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        if hasattr(exc, "error_dict"):
            return " ".join(m for msgs in exc.message_dict.values() for m in msgs)
        return " ".join(exc.messages)
    if isinstance(exc, ConflictError):
        return "Someone changed it meanwhile: reload and try again."
    return str(exc)


def run_each(
    objects: Iterable[Any],
    change: Callable[[Any], Any],
    *,
    action: str,
    describe: Callable[[Any], tuple[str, str, str]],
) -> BulkResult:
    """`change(obj)` for each object in its own transaction; `describe(obj)` gives (ref, title, url)."""
    result = BulkResult(action)
    for obj in objects:
        ref, title, url = describe(obj)
        try:
            with transaction.atomic():
                change(obj)
        except (ValidationError, PermissionDeniedError, ConflictError) as exc:
            result.outcomes.append(Outcome(ref, title, url, False, reason_of(exc)))
        else:
            result.outcomes.append(Outcome(ref, title, url, True))
    return result


def parse_ids(values: Iterable[str]) -> list[int]:
    """The selected ids of a form (each once, in order); ValidationError on `ids` otherwise."""
    ids: list[int] = []
    for value in values:
        for part in str(value).split(","):
            part = part.strip()
            if not part:
                continue
            if not part.isdigit():
                raise ValidationError({"ids": f"'{part[:20]}' is not an id."})
            if int(part) not in ids:
                ids.append(int(part))
    if not ids:
        raise ValidationError({"ids": "Select at least one row."})
    if len(ids) > BULK_LIMIT:
        raise ValidationError({"ids": f"At most {BULK_LIMIT} rows at once."})
    return ids
