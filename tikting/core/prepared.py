"""Querysets on a hot path, compiled to SQL once per database connection.

Building and compiling a queryset costs Django a fraction of a millisecond each time (more for a
wide table: an incident's SELECT names 45 columns), which a request that runs a few of them pays
again and again for the same SQL. A `Prepared` query compiles its queryset the first time, on each
connection, for each "shape" of its arguments, and afterwards only binds the new values:

    by_pk = Prepared(lambda pk: Incident.objects.filter(pk=pk))
    incident = by_pk.first(42)

How the values are bound: the first call builds the queryset with stand-ins (integers and texts
nobody would use), compiles it and notes where each stand-in sits among the query's parameters.
An argument that is None, or of any type but int or str, gets no stand-in: its value is compiled
into the shape (None is `IS NULL`, not `= %s`), so it is compiled again for each such value (a
shape not reused is not kept: at most MAX_SHAPES per connection). When a stand-in does not come
out once, unchanged, among the parameters (a lookup that transforms its value), the query is run
through the ORM as usual, every time: the result is always the ORM's.

Rows become model instances with `Model.from_db` and the database's and fields' converters, as the
ORM would make them; only querysets of whole model rows (no select_related, annotations, values,
deferred fields) are prepared, others run through the ORM. FOR UPDATE is kept where the database
has it; the caller holds the transaction, as with the ORM.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from django.core.exceptions import EmptyResultSet, FullResultSet
from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.models import QuerySet

M = TypeVar("M", bound=models.Model)

MAX_SHAPES = 256
# Stand-ins: 30011, 30018 … (within a small integer field's range: Django compiles a lookup out of
# a field's range to "no rows" instead of a parameter).
_INT_BASE, _INT_STEP = 30_011, 7
_TEXT = "\u2063tikting-prepared-{}\u2063"  # invisible separators around: no real value looks so


def _stand_in(position: int, value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return _INT_BASE + _INT_STEP * position
    if isinstance(value, str):
        return _TEXT.format(position)
    return None


class _Compiled:
    """SQL, where each argument goes among its parameters, and how rows become instances."""

    def __init__(self, qs: QuerySet, stand_ins: list[Any], using: str) -> None:
        self.ok = False
        query = qs.query
        if query.select_related or query.annotations or query.values_select or query.deferred_loading[0]:
            return
        if query.extra or query.combinator:
            return
        compiler = query.get_compiler(using)
        try:
            sql, params = compiler.as_sql()
        except (EmptyResultSet, FullResultSet):  # the stand-ins changed the shape: not prepared
            return
        model = qs.model
        columns = [col for col, _sql, _alias in compiler.select]
        attnames = [getattr(getattr(col, "target", None), "attname", None) for col in columns]
        if compiler.klass_info is None or attnames != [f.attname for f in model._meta.concrete_fields]:
            return
        slots: list[tuple[int, int] | None] = []  # per parameter: (argument position) or a constant
        constants = list(params)
        for index, param in enumerate(params):
            found = [
                i for i, s in enumerate(stand_ins) if s is not None and type(param) is type(s) and param == s
            ]
            slots.append((index, found[0]) if found else None)
        used = [slot[1] for slot in slots if slot is not None]
        wanted = [i for i, s in enumerate(stand_ins) if s is not None]
        if sorted(used) != wanted:  # a stand-in missing, twice, or transformed: not prepared
            return
        self.sql = sql
        self.constants = constants
        self.slots = [slot for slot in slots if slot is not None]
        self.compiler = compiler
        self.converters = compiler.get_converters(columns)
        self.attnames = attnames
        self.model = model
        self.ok = True

    def run(self, args: tuple[Any, ...], using: str) -> list[Any]:
        params = list(self.constants)
        for index, position in self.slots:
            params[index] = args[position]
        with self.compiler.connection.cursor() as cursor:
            cursor.execute(self.sql, params)
            rows = cursor.fetchall()
        if self.converters:
            rows = list(self.compiler.apply_converters(rows, self.converters))
        return [self.model.from_db(using, self.attnames, row) for row in rows]


class Prepared(Generic[M]):
    """`build(*args)` gives a queryset of model rows; calling the Prepared gives its rows."""

    def __init__(self, build: Callable[..., QuerySet[M]]) -> None:
        self.build = build

    def __call__(self, *args: Any, using: str = DEFAULT_DB_ALIAS) -> list[M]:
        connection = connections[using]
        cache: dict[Any, _Compiled] = connection.__dict__.setdefault("_tikting_prepared", {})
        stand_ins = [_stand_in(i, a) for i, a in enumerate(args)]
        # The shape: which arguments are bound, and the compiled-in value of the others.
        key = (
            self,  # the object, not its id(): a freed Prepared's id may be reused
            tuple(
                type(a) if s is not None else ("value", repr(a)) for a, s in zip(args, stand_ins, strict=True)
            ),
        )
        compiled = cache.get(key)
        if compiled is None:
            if len(cache) >= MAX_SHAPES:
                cache.clear()
            compiled = cache[key] = _Compiled(
                self.build(*[s if s is not None else a for s, a in zip(stand_ins, args, strict=True)]).using(
                    using
                ),
                stand_ins,
                using,
            )
        if not compiled.ok:
            return list(self.build(*args).using(using))
        return compiled.run(args, using)

    def first(self, *args: Any, using: str = DEFAULT_DB_ALIAS) -> M | None:
        rows = self(*args, using=using)
        return rows[0] if rows else None
