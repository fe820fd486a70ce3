"""Saving, changing and removing views. Only the owner changes a view; a shared view is seen by the
members of the team it was shared with (the owner's team at the time)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet

from tikting.accounts.models import Actor, User
from tikting.core import audit
from tikting.core.exceptions import ConflictError, PermissionDeniedError

from . import registry
from .models import QUERY_LIMIT, SavedView


def visible_to(user: Actor) -> QuerySet[SavedView]:
    if not isinstance(user, User) or not user.is_active:
        return SavedView.objects.none()
    shared = Q(team_id=user.team_id) if user.team_id else Q(pk__in=[])
    return SavedView.objects.filter(Q(owner=user) | shared).select_related("owner", "team")


def _owner(actor: Actor) -> User:
    if not isinstance(actor, User) or not actor.is_active:
        raise PermissionDeniedError("Sign in to save views.")
    return actor


def _check(name: str, list_key: str, query: str) -> tuple[str, str]:
    errors: dict[str, str] = {}
    name = " ".join((name or "").split())
    if not name:
        errors["name"] = "Give the view a name."
    elif len(name) > 80:
        errors["name"] = "At most 80 characters."
    saved = registry.get(list_key)
    if saved is None:
        choices = ", ".join(sorted(registry.all_lists()))
        errors["list_key"] = f"Unknown list '{list_key[:60]}'; choose from {choices}."
    elif len(query or "") > QUERY_LIMIT:
        errors["query"] = f"At most {QUERY_LIMIT} characters of filters."
    if errors:
        raise ValidationError(errors)
    assert saved is not None
    return name, registry.clean_query(saved, query or "")


def _team_of(owner: User, shared: bool) -> Any:
    if not shared:
        return None
    if owner.team_id is None:
        raise ValidationError({"shared": "You are in no team: a view is shared with your team."})
    return owner.team


def _save(view: SavedView) -> None:
    try:
        with transaction.atomic():
            view.save()
    except IntegrityError as exc:
        raise ValidationError(
            {"name": f"You already have a view called '{view.name}' of this list."}
        ) from exc


@transaction.atomic
def create_view(
    *, actor: Actor, name: str, list_key: str, query: str = "", shared: bool = False
) -> SavedView:
    owner = _owner(actor)
    name, query = _check(name, list_key, query)
    view = SavedView(owner=owner, name=name, list_key=list_key, query=query, team=_team_of(owner, shared))
    _save(view)
    audit.record(view, action="create", actor=actor, changes=audit.diff({}, audit.snapshot(view)))
    return view


@transaction.atomic
def update_view(
    view: SavedView, *, actor: Actor, expected_version: int | None = None, **changes: Any
) -> SavedView:
    """Rename, refilter or share / unshare (`shared`) a view: its owner only."""
    owner = _owner(actor)
    if view.owner_id != owner.pk:
        raise PermissionDeniedError("Only the owner of a view changes it.")
    unknown = set(changes) - {"name", "query", "shared"}
    if unknown:
        raise ValidationError(dict.fromkeys(sorted(unknown), "This field cannot be set."))
    locked = SavedView.objects.select_for_update().get(pk=view.pk)
    if expected_version is not None and locked.version != int(expected_version):
        raise ConflictError(locked, expected_version)
    before = audit.snapshot(locked)
    name, query = _check(
        changes.get("name", locked.name), locked.list_key, changes.get("query", locked.query)
    )
    locked.name, locked.query = name, query
    if "shared" in changes:
        locked.team = _team_of(owner, bool(changes["shared"]))
    locked.version += 1
    _save(locked)
    diff = audit.diff(before, audit.snapshot(locked))
    diff.pop("updated", None)
    audit.record(locked, action="update", actor=actor, changes=diff)
    return locked


@transaction.atomic
def delete_view(view: SavedView, *, actor: Actor) -> None:
    owner = _owner(actor)
    if view.owner_id != owner.pk:
        raise PermissionDeniedError("Only the owner of a view removes it.")
    audit.record(view, action="delete", actor=actor, changes=audit.diff(audit.snapshot(view), {}))
    view.delete()


def url_of(view: SavedView) -> str:
    saved = registry.get(view.list_key)
    base = str(saved.url) if saved else "/"
    return base + (f"?{view.query}" if view.query else "")
