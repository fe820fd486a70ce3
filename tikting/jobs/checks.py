"""`tikting check` validates the schedule: each entry's timing and arguments, and that its task
imports (a typo in TIKTING_SCHEDULE is reported before a worker starts, naming the entry)."""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from . import schedule


@checks.register()
def check_schedule(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    try:
        entries = schedule.entries()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="tikting.jobs.E001")]
    problems: list[checks.CheckMessage] = []
    for entry in entries:
        try:
            entry.load_task()
        except ImproperlyConfigured as exc:
            problems.append(checks.Error(str(exc), id="tikting.jobs.E002"))
    return problems
