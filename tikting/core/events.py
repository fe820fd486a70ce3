"""What happened, announced: the event vocabulary every layer may speak.

A service that changes something people care about calls `emit(kind, target, actor=…)` after its
write, in its own transaction. Apps above (the notifications app: in-app notices, e-mail, webhooks)
`subscribe()` in their AppConfig.ready(); the apps that emit never import them, whatever their layer
(records.registry.register_linker works the same way the other way round).

A subscriber runs inside the caller's transaction, in a savepoint of its own: what it writes (a
notice, a delivery to send) is rolled back with a refused action, and a subscriber that fails is
logged and rolled back alone: it never breaks the action that emitted (the sending itself happens in
the background worker).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import models, transaction

logger = logging.getLogger("tikting.events")


class Kind(models.TextChoices):
    """Every event kind, the words a preference page and a webhook subscription show."""

    ASSIGNED = "assigned", "Assigned to you (an item, an action, a record)"
    MENTIONED = "mentioned", "@mentioned in a comment or a review minute"
    COMMENTED = "commented", "A comment on what you own or follow"
    STATUS_CHANGED = "status_changed", "A status change of what you own or follow"
    ESCALATED = "escalated", "An item escalated"
    ACTION_DUE = "action_due", "An action of yours due soon"
    ACTION_OVERDUE = "action_overdue", "An action of yours overdue"
    MEASUREMENT_DUE = "measurement_due", "An indicator due for a measurement"
    DEFERRED_RETURNED = "deferred_returned", "A deferred item back for assessment"
    AGENDA_READY = "agenda_ready", "A register review planned: its agenda is ready"
    MINUTED = "minuted", "A review minute about an item you own or follow"


@dataclass(frozen=True)
class Event:
    """One announcement. `target` is what it is about (an item, a record, a review); `recipients`
    are users the emitter names (the new assignee, an action's owner), beside those the subscribers
    find themselves (owners, followers, people @mentioned in `text`); `key` makes a repeated
    announcement of the same fact (an action overdue, announced every night) recognisable."""

    kind: str
    target: models.Model
    actor: Any = None
    summary: str = ""
    text: str = ""
    recipients: tuple[int, ...] = ()
    key: str = ""
    data: dict[str, Any] = field(default_factory=dict)


Subscriber = Callable[[Event], None]
_subscribers: list[Subscriber] = []


def subscribe(subscriber: Subscriber) -> None:
    """`subscriber(event)` is called for every event emitted from now on (once, however often
    subscribed)."""
    if subscriber not in _subscribers:
        _subscribers.append(subscriber)


def unsubscribe(subscriber: Subscriber) -> None:
    if subscriber in _subscribers:
        _subscribers.remove(subscriber)


def _ids(users: Iterable[Any]) -> tuple[int, ...]:
    found: list[int] = []
    for user in users:
        pk = getattr(user, "pk", user)
        if pk is not None and int(pk) not in found:
            found.append(int(pk))
    return tuple(found)


def emit(
    kind: str,
    target: models.Model,
    *,
    actor: Any,
    summary: str = "",
    text: str = "",
    recipients: Iterable[Any] = (),
    key: str = "",
    data: dict[str, Any] | None = None,
) -> Event:
    """Announce `kind` about `target`, done by `actor` (None: the system). `recipients`: users or
    user ids the emitter knows should hear of it. Returns the event."""
    if kind not in Kind.values:
        raise ValueError(f"Unknown event kind {kind!r}; add it to tikting.core.events.Kind.")
    actor = actor if getattr(actor, "pk", None) else None
    event = Event(
        kind=kind,
        target=target,
        actor=actor,
        summary=summary[:300],
        text=text,
        recipients=_ids(recipients),
        key=key[:200],
        data=data or {},
    )
    for subscriber in list(_subscribers):
        try:
            with transaction.atomic():
                subscriber(event)
        except Exception:  # a subscriber never breaks the action that emitted
            logger.exception("Event %s on %r: subscriber %r failed", kind, target, subscriber)
    return event
