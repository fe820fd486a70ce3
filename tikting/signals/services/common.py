"""Helpers the intake services share."""

from __future__ import annotations

from django.conf import settings

from tikting.accounts.models import Actor, User

CHUNK = 500  # fingerprints looked up per query


def _user(actor: Actor) -> User | None:
    return actor if isinstance(actor, User) and actor.pk else None


def regrowth() -> float:
    return float(settings.TIKTING_SIGNALS_REGROWTH)
