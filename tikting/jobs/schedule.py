"""The schedule: periodic tasks declared in settings, enqueued by the workers (`tikting worker`).

`settings.TIKTING_SCHEDULE` maps a name to an entry:

    "detectors": {"task": "tikting.signals.tasks.run_detectors", "every": "03:00"},
    "metrics":   {"task": "tikting.metrics.tasks.warm_metrics", "every": 1800, "kwargs": {}},

- `task`: the dotted path of a django-tasks task (a function decorated with `@task()`);
- `every`: a number of seconds (at least 1), or a daily time "HH:MM" in TIKTING_TIME_ZONE;
- `args` (a list) and `kwargs` (an object): the task's arguments, JSON as every task argument.

The defaults are in tikting/settings.py; `TIKTING_SCHEDULE` (JSON in the environment) and the file
named by `TIKTING_SCHEDULE_FILE` override them entry by entry (docs/signals.md, "The schedule").
This module only reads and checks the declaration; the rows the workers share are
`models.ScheduleEntry` and `services.enqueue_due` claims them.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from django.utils.module_loading import import_string
from django_tasks_db.compat import Task

DAILY = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
KEYS = frozenset({"task", "every", "args", "kwargs"})


@dataclass(frozen=True)
class Entry:
    """One declared entry: run `task(*args, **kwargs)` every `every_seconds`, or daily at `daily_at`."""

    name: str
    task: str
    every_seconds: int | None = None
    daily_at: dt.time | None = None
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def every(self) -> str:
        """How often, in words: "daily at 03:00", "every 30 min"."""
        if self.daily_at is not None:
            return f"daily at {self.daily_at:%H:%M}"
        seconds = self.every_seconds or 0
        for unit, size in (("h", 3600), ("min", 60)):
            if seconds >= size and seconds % size == 0:
                return f"every {seconds // size} {unit}"
        return f"every {seconds} s"

    def definition(self) -> dict[str, Any]:
        """The entry as JSON: a row whose stored definition differs was re-declared."""
        every: int | str = self.every_seconds if self.daily_at is None else f"{self.daily_at:%H:%M}"  # type: ignore[assignment]
        return {"task": self.task, "every": every, "args": self.args, "kwargs": self.kwargs}

    def next_run(self, after: dt.datetime) -> dt.datetime:
        """The first time strictly after `after` the entry is due again."""
        if self.daily_at is None:
            return after + dt.timedelta(seconds=self.every_seconds or 0)
        zone = timezone.get_current_timezone()
        local = timezone.localtime(after, zone)
        day = local.date()
        while True:
            due = timezone.make_aware(dt.datetime.combine(day, self.daily_at), zone)
            if due > after:
                return due
            day += dt.timedelta(days=1)

    def load_task(self) -> Task[Any, Any]:
        return load_task(self.task, where=f"TIKTING_SCHEDULE['{self.name}']['task']")


def load_task(path: str, *, where: str = "task") -> Task[Any, Any]:
    """The django-tasks Task at `path`; ImproperlyConfigured naming `where` when it is not one."""
    try:
        task = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"{where}: cannot import '{path}' ({exc}).") from exc
    if not isinstance(task, Task):
        raise ImproperlyConfigured(
            f"{where}: '{path}' is not a django-tasks task (decorate it with @task())."
        )
    return task


def parse_entry(name: str, spec: Any) -> Entry:
    """An Entry from one declaration; ImproperlyConfigured naming the entry and key that is wrong."""
    where = f"TIKTING_SCHEDULE['{name}']"
    if not isinstance(spec, dict):
        raise ImproperlyConfigured(f"{where}: expected an object with 'task' and 'every', got {spec!r}.")
    unknown = sorted(set(spec) - KEYS)
    if unknown:
        raise ImproperlyConfigured(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(KEYS))}."
        )
    task = spec.get("task")
    if not isinstance(task, str) or "." not in task:
        raise ImproperlyConfigured(f"{where}['task']: give the dotted path of a task, got {task!r}.")
    every = spec.get("every")
    every_seconds: int | None = None
    daily_at: dt.time | None = None
    if isinstance(every, bool) or every is None:
        raise ImproperlyConfigured(f"{where}['every']: give seconds (a number) or a daily time 'HH:MM'.")
    if isinstance(every, int | float):
        if every < 1 or int(every) != every:
            raise ImproperlyConfigured(f"{where}['every']: {every!r} is not a whole number of seconds ≥ 1.")
        every_seconds = int(every)
    elif isinstance(every, str) and every.strip().isdigit():
        every_seconds = int(every.strip())
        if every_seconds < 1:
            raise ImproperlyConfigured(f"{where}['every']: {every!r} is not a whole number of seconds ≥ 1.")
    elif isinstance(every, str) and DAILY.match(every.strip()):
        hours, minutes = DAILY.match(every.strip()).groups()  # type: ignore[union-attr]
        daily_at = dt.time(int(hours), int(minutes))
    else:
        raise ImproperlyConfigured(
            f"{where}['every']: {every!r} is neither seconds nor a daily time 'HH:MM'."
        )
    args = spec.get("args", [])
    kwargs = spec.get("kwargs", {})
    if not isinstance(args, list):
        raise ImproperlyConfigured(f"{where}['args']: expected a list, got {args!r}.")
    if not isinstance(kwargs, dict):
        raise ImproperlyConfigured(f"{where}['kwargs']: expected an object, got {kwargs!r}.")
    return Entry(name, task, every_seconds, daily_at, list(args), dict(kwargs))


def entries() -> list[Entry]:
    """The declared schedule, in name order (ImproperlyConfigured on the first bad entry)."""
    declared = getattr(settings, "TIKTING_SCHEDULE", {}) or {}
    if not isinstance(declared, dict):
        raise ImproperlyConfigured("TIKTING_SCHEDULE: expected an object of name → entry.")
    for name in declared:
        if not isinstance(name, str) or not name or len(name) > 100:
            raise ImproperlyConfigured(f"TIKTING_SCHEDULE: {name!r} is not a name (1 to 100 characters).")
    return [parse_entry(name, declared[name]) for name in sorted(declared)]
