"""Background tasks of the register (Django's Tasks API, run by `tikting db_worker`)."""

from __future__ import annotations

import datetime as dt

from django_tasks import task

from . import services as S


@task()
def housekeeping(as_of: str | None = None) -> dict[str, object]:
    """The daily housekeeping, as `tikting register housekeeping` does it: deferred items whose
    revisit date has come go back to assessment; closed items under watch are checked for slippage.

    `as_of` is an ISO date (task arguments must be JSON); returns the counts (kept as the result).
    """
    day = dt.date.fromisoformat(as_of) if as_of else None
    woken = S.wake_deferred(as_of=day)
    measured = S.take_computed_measurements(today=day)
    sustainment = S.check_sustainment(today=day)
    announced = S.announce_due_work(today=day)
    return {
        "woken": woken,
        "measured": measured,
        "sustainment": {str(k): v for k, v in sustainment.items()},
        "announced": announced,
    }
