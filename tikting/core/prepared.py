"""Querysets on a hot path, compiled to SQL once per database connection.

Building and compiling a queryset costs Django a fraction of a millisecond each time (more for a
wide table: an incident's SELECT names 45 columns), which a request that runs a few of them pays
again and again for the same SQL. A `Prepared` query compiles its queryset the first time, on each
connection, for each "shape" of its arguments, and afterwards only binds the new values:

    by_pk = Prepared(lambda pk: Incident.objects.filter(pk=pk))
    incident = by_pk.first(42)

How the values are bound: the first call builds the queryset twice, with two sets of stand-ins
(integers and texts nobody would use), compiles both and notes which parameters changed with the
stand-ins: those are the arguments' (an argument may come more than once), the others constants of
the query (even one equal to a stand-in). An argument that is not exactly an int or str gets no
stand-in: its value is compiled into the shape (None is `IS NULL`, not `= %s`), so it is compiled
again for each such value (a shape not reused is not kept: at most MAX_SHAPES per connection).
When a stand-in does not come out unchanged among the parameters (a lookup that transforms its
value, `contains` sends %value%), the query is run through the ORM as usual, every time: the
result is always the ORM's. A `shape` (any hashable) can be given with the arguments: `build`
then gets it first, and it keys the compiled SQL, for querysets whose structure varies (which
filters a list request has, how many values each takes: tikting/records/forms.py list_page).

Rows become model instances with `Model.from_db` and the database's and fields' converters, as the
ORM would make them; only querysets of whole model rows (no select_related, annotations, values,
deferred fields) are prepared for that, others run through the ORM. FOR UPDATE is kept where the
database has it; the caller holds the transaction, as with the ORM. `values()` gives the rows of a
values_list() queryset as tuples (a page of them: LIMIT and OFFSET are parameters too) and
`count()` their number.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
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


def _bindable(value: Any) -> bool:
    return type(value) is int or type(value) is str


def _stand_in(position: int, value: Any, variant: int) -> Any:
    """The stand-in of an argument (None: the argument's value is compiled in); two variants."""
    if type(value) is int:
        return _INT_BASE + _INT_STEP * (2 * position + variant)
    if type(value) is str:
        return _TEXT.format(f"{position}-{variant}")
    return None


class _Compiled:
    """SQL, where each argument goes among its parameters, and how rows become instances or values."""

    def __init__(
        self, build: Callable[[list[Any]], QuerySet], args: tuple[Any, ...], mode: str, using: str
    ) -> None:
        self.ok = False
        firsts = [_stand_in(i, a, 0) for i, a in enumerate(args)]
        seconds = [_stand_in(i, a, 1) for i, a in enumerate(args)]
        first = self._compile(
            build([s if s is not None else a for s, a in zip(firsts, args, strict=True)]), mode, using
        )
        if first is None:
            return
        compiler, sql, params = first
        if not any(s is not None for s in firsts):  # nothing to bind: the SQL as it is
            slots: list[tuple[int, int, type | None]] = []
        else:
            # Compiled again with other stand-ins: a parameter that changed with them is an
            # argument's (wherever and however often it comes), one that did not is a constant of
            # the query, even one that happens to equal a stand-in.
            second = self._compile(
                build([s if s is not None else a for s, a in zip(seconds, args, strict=True)]), mode, using
            )
            if second is None or second[1] != sql or len(second[2]) != len(params):
                return
            slots = []
            for index, (one, two) in enumerate(zip(params, second[2], strict=True)):
                if one == two and type(one) is type(two):
                    continue
                found = [
                    i
                    for i, (a, b) in enumerate(zip(firsts, seconds, strict=True))
                    if a is not None
                    and isinstance(one, type(a))
                    and one == a
                    and isinstance(two, type(b))
                    and two == b
                ]
                if len(found) != 1 or type(one) is not type(two):  # derived from a stand-in: not prepared
                    return
                # The value as Django passes it: psycopg's Int2, Int4 … say a PostgreSQL type.
                slots.append((index, found[0], None if type(one) is type(firsts[found[0]]) else type(one)))
            if {slot[1] for slot in slots} != {i for i, s in enumerate(firsts) if s is not None}:
                return  # an argument that is not among the parameters as it was given
        self.sql = sql
        self.constants = list(params)
        self.slots = slots
        self.compiler = compiler
        columns = [col for col, _sql, _alias in compiler.select]
        self.converters = compiler.get_converters(columns)
        self.mode = mode
        if mode == "rows":
            self.model = compiler.query.model
            self.attnames = [f.attname for f in self.model._meta.concrete_fields]
        self.ok = True

    @staticmethod
    def _compile(qs: QuerySet, mode: str, using: str) -> tuple[Any, str, tuple[Any, ...]] | None:
        query = qs.query
        if query.combinator or query.select_related or (mode != "count" and query.is_sliced):
            return None
        if mode == "rows":
            if query.annotations or query.values_select or query.deferred_loading[0] or query.extra:
                return None
        elif not query.values_select or query.select_for_update:
            return None  # values and count: a values_list() of the columns wanted, not locked
        if mode == "count":
            query = query.chain()
            query.clear_ordering(force=True)
        compiler = query.get_compiler(using)
        try:
            sql, params = compiler.as_sql()
        except (EmptyResultSet, FullResultSet):  # the stand-ins changed the shape: not prepared
            return None
        if mode == "rows":
            model = qs.model
            targets = [
                getattr(getattr(col, "target", None), "attname", None) for col, _sql, _a in compiler.select
            ]
            if compiler.klass_info is None or targets != [f.attname for f in model._meta.concrete_fields]:
                return None
        if mode == "count":
            sql = f"SELECT COUNT(*) FROM ({sql}) counted"  # noqa: S608 - SQL compiled by Django
        return compiler, sql, tuple(params)

    def run(self, args: tuple[Any, ...], using: str, window: tuple[int, int] | None = None) -> list[Any]:
        params = list(self.constants)
        for index, position, wrapper in self.slots:
            params[index] = args[position] if wrapper is None else wrapper(args[position])
        sql = self.sql
        if window is not None:  # LIMIT and OFFSET as parameters: one SQL for every page
            sql = f"{sql} LIMIT %s OFFSET %s"
            params += list(window)
        with self.compiler.connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        if self.mode == "count":
            return [rows[0][0]]
        if self.converters:
            rows = list(self.compiler.apply_converters(rows, self.converters))
        if self.mode == "values":
            return [tuple(row) for row in rows]
        return [self.model.from_db(using, self.attnames, row) for row in rows]


class Prepared(Generic[M]):
    """`build(*args)` gives a queryset of model rows; calling the Prepared gives its rows.

    `values()` and `count()` are for a `build` that gives a values_list() queryset: its rows as
    tuples (a page of them with `limit` and `offset`), and how many rows it has. `shape`, when
    given, is passed to `build` before the arguments and keys the compiled SQL with them: for
    querysets whose structure (which filters, how many values) varies, not only their values.
    """

    def __init__(self, build: Callable[..., QuerySet[M]]) -> None:
        self.build = build

    def _compiled(self, args: tuple[Any, ...], mode: str, using: str, shape: Hashable) -> _Compiled | None:
        connection = connections[using]
        cache: dict[Any, _Compiled] = connection.__dict__.setdefault("_tikting_prepared", {})
        # The key: which arguments are bound, and the compiled-in value of the others.
        key = (
            self,  # the object, not its id(): a freed Prepared's id may be reused
            mode,
            shape,
            tuple(type(a) if _bindable(a) else ("value", repr(a)) for a in args),
        )
        compiled = cache.get(key)
        if compiled is None:
            if len(cache) >= MAX_SHAPES:
                cache.clear()

            def build(values: list[Any]) -> QuerySet[Any]:
                qs = self.build(*values) if shape is None else self.build(shape, *values)
                return qs.using(using)

            compiled = cache[key] = _Compiled(build, args, mode, using)
        return compiled if compiled.ok else None

    def _orm(self, args: tuple[Any, ...], using: str, shape: Hashable) -> QuerySet[Any]:
        return (self.build(*args) if shape is None else self.build(shape, *args)).using(using)

    def __call__(self, *args: Any, using: str = DEFAULT_DB_ALIAS, shape: Hashable = None) -> list[M]:
        compiled = self._compiled(args, "rows", using, shape)
        if compiled is None:
            return list(self._orm(args, using, shape))
        return compiled.run(args, using)

    def first(self, *args: Any, using: str = DEFAULT_DB_ALIAS, shape: Hashable = None) -> M | None:
        rows = self(*args, using=using, shape=shape)
        return rows[0] if rows else None

    def values(
        self,
        *args: Any,
        using: str = DEFAULT_DB_ALIAS,
        shape: Hashable = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[tuple[Any, ...]]:
        """The rows of a values_list() queryset as tuples, `limit` of them from `offset` (all: None)."""
        compiled = self._compiled(args, "values", using, shape)
        if compiled is None:
            qs = self._orm(args, using, shape)
            if limit is not None:
                qs = qs[offset : offset + limit]
            elif offset:
                qs = qs[offset:]
            return [tuple(row) if isinstance(row, tuple) else (row,) for row in qs]
        if limit is None and offset:
            return compiled.run(args, using)[offset:]
        return compiled.run(args, using, None if limit is None else (limit, offset))

    def count(self, *args: Any, using: str = DEFAULT_DB_ALIAS, shape: Hashable = None) -> int:
        """How many rows values() would give without a limit (the queryset's count())."""
        compiled = self._compiled(args, "count", using, shape)
        if compiled is None:
            return self._orm(args, using, shape).count()
        return int(compiled.run(args, using)[0])
