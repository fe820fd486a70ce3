"""Where search looks: one source per kind of thing (register items, each ITSM record kind of the
records registry, people), each turning a query into a few candidate results with what ranking
needs: a reference, a title, a text and a date.

A source narrows in the database: every word of the query must appear in one of the kind's search
fields (case-insensitive), and an exact reference is looked up by its index; the candidates are the
`cap` most recent matches, ranked in Python (ranking.py). A kind with a full-text index of its own
(incidents: LATEST) takes its most recent matches from that index instead of scanning its texts;
a few kinds are found by reference only (KEY_ONLY).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import models
from django.db.models import Q, QuerySet
from django.urls import reverse

from tikting.improvement.models import Item
from tikting.incidents import search as incident_search
from tikting.records import registry as R
from tikting.records.forms import record_url

from .query import Query


@dataclass(frozen=True)
class Candidate:
    kind: str  # the source's key: "item", a record kind's slug, "person"
    ref: str
    title: str
    text: str
    url: str
    when: dt.datetime | dt.date | None
    detail: str  # a short fact shown beside the title: a status, a role


@dataclass(frozen=True)
class Source:
    key: str
    label: str  # one of them
    label_plural: str
    find: Callable[[Query, int], list[Candidate]]


def _words_condition(fields: tuple[str, ...], query: Query) -> Q:
    """Every word in one of `fields` at least (icontains: LIKE on SQLite, ILIKE-like UPPER on PostgreSQL)."""
    condition = Q()
    for word in query.words:
        any_field = Q()
        for name in fields:
            any_field |= Q(**{f"{name}__icontains": word})
        condition &= any_field
    return condition


def _text_fields(model: type[models.Model], names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(
        name for name in names if isinstance(model._meta.get_field(name), models.CharField | models.TextField)
    )


def _latest(qs: QuerySet[Any], cap: int) -> list[Any]:
    return list(qs.order_by("-pk")[:cap])


def _merge(exact: list[Any], found: list[Any]) -> list[Any]:
    seen = {obj.pk for obj in exact}
    return exact + [obj for obj in found if obj.pk not in seen]


# --- Register items ---------------------------------------------------------------------------------


ITEM_FIELDS = ("title", "description", "expected_outcome", "source_reference")


def _item_pk(query: Query) -> int | None:
    """CI-00042, ci-42 or 42 (a single word) → 42."""
    if len(query.words) != 1:
        return None
    word = query.words[0].removeprefix("ci-").lstrip("0")
    return int(word) if word.isdigit() and len(word) < 10 else None


def find_items(query: Query, cap: int) -> list[Candidate]:
    base = Item.objects.all()
    pk = _item_pk(query)
    exact = list(base.filter(pk=pk)) if pk is not None else []
    found = _latest(base.filter(_words_condition(ITEM_FIELDS, query)), cap)
    return [
        Candidate(
            kind="item",
            ref=item.ref,
            title=item.title,
            text=" ".join(filter(None, (item.description, item.expected_outcome, item.source_reference))),
            url=item.get_absolute_url(),
            when=item.status_changed_at,
            detail=str(item.get_status_display()),
        )
        for item in _merge(exact, found)[:cap]
    ]


# --- ITSM records -------------------------------------------------------------------------------------


# Kinds found by their reference only: their rows carry no text worth ranking, and there are many
# of them (the BPI Challenge 2014 data holds 466,000 interactions: a substring scan costs hundreds of
# milliseconds for nothing a person would look for).
KEY_ONLY = frozenset({"interaction"})
# Kinds with a full-text index of their own: the ids of their most recent matches, from the index.
LATEST: dict[str, Callable[[str, int], list[int]]] = {"incident": incident_search.latest}


def _record_finder(kind: R.RecordKind) -> Callable[[Query, int], list[Candidate]]:
    def find(query: Query, cap: int) -> list[Candidate]:
        model = kind.model
        fields = _text_fields(model, kind.search_fields)
        base = model._default_manager.all()
        exact: list[Any] = []
        key_field = kind.key_field if kind.key_field != "id" else ""
        if key_field and len(query.words) == 1 and any(ch.isdigit() for ch in query.text):
            # a reference has a digit (INC0012345, KB0042, srv-01); a plain word is found by the text search
            # `=` rather than iexact, so that the key's unique index answers (INC… as typed or upper-cased)
            exact = list(base.filter(**{f"{key_field}__in": {query.text, query.text.upper()}}))
        latest_ids = LATEST.get(kind.slug)
        if kind.slug in KEY_ONLY:
            found: list[Any] = []
        elif latest_ids is not None:  # the kind's own full-text index: its most recent matches
            found = list(base.filter(pk__in=latest_ids(query.text, cap)).order_by("-pk"))
        else:
            found = _latest(base.filter(_words_condition(fields, query)), cap)
        records = _merge(exact, found)[:cap]
        title_fields = {"short_description", "title", "name", key_field}
        status = "status" if any(f.name == "status" for f in model._meta.concrete_fields) else ""
        return [
            Candidate(
                kind=kind.slug,
                ref=kind.key_of(obj),
                title=kind.title_of(obj),
                text=" ".join(str(getattr(obj, name) or "") for name in fields if name not in title_fields),
                url=record_url(obj),
                when=getattr(obj, kind.date_field, None) if kind.date_field else None,
                detail=_status(obj, status),
            )
            for obj in records
        ]

    return find


def _status(obj: models.Model, field: str) -> str:
    if not field:
        return ""
    shown = getattr(obj, f"get_{field}_display", None)
    return str(shown() if callable(shown) else getattr(obj, field, ""))


# --- People ---------------------------------------------------------------------------------------------


PEOPLE_FIELDS = ("username", "first_name", "last_name")


def find_people(query: Query, cap: int) -> list[Candidate]:
    User = get_user_model()
    people = _latest(User.objects.filter(is_active=True).filter(_words_condition(PEOPLE_FIELDS, query)), cap)
    register = reverse("improvement:list")
    return [
        Candidate(
            kind="person",
            ref=person.get_username(),
            title=person.get_full_name() or person.get_username(),
            text="",
            url=f"{register}?owner={person.pk}",
            when=None,
            detail=str(person.get_role_display()),
        )
        for person in people
    ]


def sources() -> list[Source]:
    """Every source, in the order ties are broken: the register first, then the records registry's
    kinds in its order, then people."""
    found = [Source("item", "Register item", "Register items", find_items)]
    found += [
        Source(kind.slug, kind.label, kind.label_plural, _record_finder(kind)) for kind in R.KINDS.values()
    ]
    found.append(Source("person", "Person", "People", find_people))
    return found
