"""Who is told of what (docs/notifications.md, "Who is notified"), as one function per question.

- the people the emitter names (the new assignee, an action's owner, …): always, reason "named";
- the owner of the target (an item's owner, a record's assignee, a review's chair) and its
  followers: of comments, minutes, status changes and escalations (OWNER_AND_FOLLOWERS);
- improvement managers: of escalations and of deferred items back for assessment; with the owners of
  open items, of a review planned (its agenda is ready);
- people @mentioned in a comment's or a minute's words (existing, active users only): always, as
  a "mentioned" notice, whatever else they would have been told;
- never the person who acted, and never an inactive user.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.contenttypes.models import ContentType
from django.db import models

from tikting.accounts.models import Role, User
from tikting.core.events import Event, Kind
from tikting.core.prepared import Prepared
from tikting.governance.models import ReviewMeeting
from tikting.improvement.models import Item

from .models import Follow, Notification

R = Notification.Reason

OWNER_AND_FOLLOWERS = frozenset(
    {Kind.COMMENTED, Kind.MINUTED, Kind.STATUS_CHANGED, Kind.ESCALATED, Kind.DEFERRED_RETURNED}
)
TO_MANAGERS = frozenset({Kind.ESCALATED, Kind.DEFERRED_RETURNED, Kind.AGENDA_READY})
WITH_MENTIONS = frozenset({Kind.COMMENTED, Kind.MINUTED, Kind.ESCALATED})

# `@name`: Django's username characters; not inside an e-mail address (name@host) nor `@@`.
MENTION = re.compile(r"(?<![\w@.+-])@([\w.+-][\w.@+-]{0,149})")


@dataclass(frozen=True)
class Recipient:
    user_id: int
    kind: str
    reason: str


def owner_of(target: models.Model) -> int | None:
    """The person a target belongs to: an item's owner, a record's assignee, a review's chair."""
    if isinstance(target, Item):
        return target.owner_id
    if isinstance(target, ReviewMeeting):
        return target.chair_id
    return getattr(target, "assigned_to_id", None)


# Asked on every status change of every record: compiled once per connection.
_follows = Prepared(
    lambda type_id, object_id: Follow.objects.filter(content_type_id=type_id, object_id=object_id)
)


def followers_of(target: models.Model) -> list[int]:
    content_type = ContentType.objects.get_for_model(target, for_concrete_model=False)
    return [follow.user_id for follow in _follows(content_type.pk, str(target.pk))]


def managers() -> list[int]:
    roles = [Role.MANAGER, Role.ADMIN]
    wanted = models.Q(role__in=roles) | models.Q(is_superuser=True)
    return list(User.objects.filter(wanted, is_active=True).values_list("pk", flat=True))


def mentioned_names(text: str) -> list[str]:
    """The names written `@name` in `text`, in order, once each; a name followed by punctuation
    ("@olga," "@olga.") is read without it."""
    names: list[str] = []
    for match in MENTION.finditer(text or ""):
        name = match.group(1).rstrip(".@+-")
        if name and name not in names:
            names.append(name)
    return names


def mentioned_users(text: str) -> list[int]:
    """The existing, active users @mentioned in `text` (unknown names are ignored)."""
    names = mentioned_names(text)
    if not names:
        return []
    found = dict(User.objects.filter(username__in=names, is_active=True).values_list("username", "pk"))
    return [found[name] for name in names if name in found]


def recipients(event: Event) -> list[Recipient]:
    """Everyone to tell of `event`, once each, with the kind of notice and why; the actor never."""
    chosen: dict[int, Recipient] = {}

    def add(user_ids: Iterable[int | None], kind: str, reason: str) -> None:
        for pk in user_ids:
            if pk is not None and pk not in chosen:
                chosen[pk] = Recipient(pk, kind, reason)

    if event.kind in WITH_MENTIONS:
        add(mentioned_users(event.text), Kind.MENTIONED, R.MENTIONED)
    add(event.recipients, event.kind, R.NAMED)
    if event.kind in OWNER_AND_FOLLOWERS:
        add([owner_of(event.target)], event.kind, R.OWNER)
        add(followers_of(event.target), event.kind, R.FOLLOWER)
    if event.kind == Kind.AGENDA_READY:
        owners = Item.objects.open().exclude(owner=None).values_list("owner_id", flat=True).distinct()
        add(owners, event.kind, R.OWNER)
    if event.kind in TO_MANAGERS:
        add(managers(), event.kind, R.MANAGER)
    actor_id = getattr(event.actor, "pk", None)
    chosen.pop(actor_id, None)  # type: ignore[arg-type]
    if not chosen:  # nobody to tell (a status change of a record nobody follows): no query to build
        return []
    active = set(User.objects.filter(pk__in=chosen, is_active=True).values_list("pk", flat=True))
    return [r for pk, r in chosen.items() if pk in active]
