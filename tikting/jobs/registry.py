"""Actions an app above offers to "run now" on the jobs page (the signals app: one per detector).

The jobs app sits low in the layers and imports none of them: an app registers a provider in its
AppConfig.ready(), called when the page (or the API) lists the actions, so a detector added to the
settings shows without a restart of the registry (records.registry.register_linker does the same).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ImproperlyConfigured


@dataclass(frozen=True)
class Runnable:
    """`task(*args, **kwargs)` run on demand, known by `key` ("detector:major_incidents")."""

    key: str
    title: str
    task: str
    group: str = ""
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)


Provider = Callable[[], list[Runnable]]
_providers: list[Provider] = []


def register_runnables(provider: Provider) -> None:
    """`provider()` returns the actions an app offers; called each time they are listed."""
    if provider not in _providers:
        _providers.append(provider)


def runnables() -> tuple[list[Runnable], list[str]]:
    """Every registered action, and the configuration errors of providers that could not answer
    (shown on the jobs page instead of breaking it)."""
    found: list[Runnable] = []
    problems: list[str] = []
    for provider in _providers:
        try:
            found.extend(provider())
        except ImproperlyConfigured as exc:
            problems.append(str(exc))
    return found, problems
