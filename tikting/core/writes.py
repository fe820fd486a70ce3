"""The writes every edit makes, as SQL built once per connection (core.prepared's writing side).

`Model.save()` and `QuerySet.create()` build and compile their INSERT or UPDATE every time: for an
edit of an incident (the UPDATE of the columns that changed, the history row's INSERT) that was
about a third of the edit's CPU time. These two do what they do for a plain model, with the SQL
kept per connection and per (model, columns):

    writes.insert(AuditEntry(...))                       # obj.save() of a new row
    writes.save_fields(incident, {"status", "priority"})  # obj.save(update_fields=...)

The values go through the fields as they do in save(): `pre_save` (auto_now, auto_now_add) and
`get_db_prep_save` (JSON, dates, decimals). Where save() would do more than that, they call it
instead: a model with a save() of its own, one with a parent (several tables), one with
pre_save or post_save receivers (which would not be called), a field with its own SQL placeholder,
a value that is an expression (F(), a subquery), a model with order_with_respect_to.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar, cast

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, models, transaction
from django.db.models.signals import post_save, pre_save

M = TypeVar("M", bound=models.Model)


def _plain(model: type[models.Model]) -> bool:
    """Whether a save of `model` is one statement on one table with no receivers to call."""
    meta = model._meta
    return not (
        model.save is not models.Model.save  # a save() of its own: it is called
        or model.save_base is not models.Model.save_base
        or meta.proxy
        or meta.parents
        or meta.order_with_respect_to
        or pre_save.has_listeners(model)
        or post_save.has_listeners(model)
    )


def _cache(using: str) -> dict[Any, Any]:
    return connections[using].__dict__.setdefault("_tikting_writes", {})


def _values(obj: models.Model, fields: list[Any], add: bool, connection: Any) -> list[Any] | None:
    """Each field's value as the database takes it, or None when one needs save() (an expression,
    a placeholder of the field's own)."""
    values = []
    for field in fields:
        value = field.pre_save(obj, add)
        if hasattr(value, "resolve_expression") or hasattr(field, "get_placeholder"):
            return None
        values.append(field.get_db_prep_save(value, connection=connection))
    return values


@contextlib.contextmanager
def _statement(obj: models.Model, using: str) -> Iterator[Any]:
    """A cursor for the one statement of a save: an error marks the transaction for rollback, as
    save() does; afterwards `obj` is saved in `using`."""
    with transaction.mark_for_rollback_on_error(using), connections[using].cursor() as cursor:
        yield cursor
    obj._state.adding = False
    obj._state.db = using


def insert(obj: M, using: str | None = None) -> M:
    """obj.save() of a new `obj` whose primary key the database gives (an INSERT … RETURNING)."""
    model = type(obj)
    meta = model._meta
    using = using or DEFAULT_DB_ALIAS
    connection = connections[using]
    if not _plain(model) or obj.pk is not None or meta.auto_field is None:
        obj.save(force_insert=True, using=using)
        return obj
    cast(Any, obj)._prepare_related_fields_for_save(operation_name="save")  # as save() does
    key = ("insert", model)
    cached = _cache(using).get(key)
    if cached is None:
        fields = [f for f in meta.local_concrete_fields if not f.generated and f is not meta.auto_field]
        qn = connection.ops.quote_name
        sql = "INSERT INTO {} ({}) VALUES ({})".format(  # noqa: S608 - names from the model
            qn(meta.db_table), ", ".join(qn(str(f.column)) for f in fields), ", ".join(["%s"] * len(fields))
        )
        returning = connection.features.can_return_columns_from_insert
        if returning:
            sql += f" RETURNING {qn(str(meta.auto_field.column))}"
        cached = _cache(using)[key] = (sql, fields, returning)
    sql, fields, returning = cached
    values = _values(obj, fields, True, connection)
    if values is None:
        obj.save(force_insert=True, using=using)
        return obj
    with _statement(obj, using) as cursor:
        cursor.execute(sql, values)
        if returning:
            pk = cursor.fetchone()[0]
        else:
            pk = connection.ops.last_insert_id(cursor, meta.db_table, str(meta.auto_field.column))
    setattr(obj, meta.auto_field.attname, pk)
    return obj


def save_fields(obj: models.Model, names: Iterable[str], using: str | None = None) -> None:
    """obj.save(update_fields=names) of a saved `obj`: an UPDATE of those columns by primary key
    (DatabaseError when no row has it, as save() raises)."""
    model = type(obj)
    meta = model._meta
    using = using or obj._state.db or DEFAULT_DB_ALIAS
    wanted = frozenset(names)
    if not wanted:
        return
    if not _plain(model) or obj.pk is None:
        obj.save(update_fields=wanted, using=using)
        return
    connection = connections[using]
    key = ("update", model, wanted)
    cached = _cache(using).get(key)
    if cached is None:
        fields = [
            f
            for f in meta.local_concrete_fields
            if not f.primary_key and not f.generated and (f.name in wanted or f.attname in wanted)
        ]
        if len(fields) != len(wanted):  # a name that is no concrete column: save() says which
            obj.save(update_fields=wanted, using=using)
            return
        qn = connection.ops.quote_name
        sql = "UPDATE {} SET {} WHERE {} = %s".format(  # noqa: S608 - names from the model
            qn(meta.db_table), ", ".join(f"{qn(str(f.column))} = %s" for f in fields), qn(str(meta.pk.column))
        )
        cached = _cache(using)[key] = (sql, fields)
    sql, fields = cached
    cast(Any, obj)._prepare_related_fields_for_save(operation_name="save")  # as save() does
    values = _values(obj, fields, False, connection)
    if values is None:
        obj.save(update_fields=wanted, using=using)
        return
    values.append(meta.pk.get_db_prep_value(obj.pk, connection))
    with _statement(obj, using) as cursor:
        cursor.execute(sql, values)
        if cursor.rowcount < 1:
            raise DatabaseError("Save with update_fields did not affect any rows.")
