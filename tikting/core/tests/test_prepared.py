"""Prepared queries give what the ORM gives, for every shape of their arguments, and fall back to
the ORM where a queryset cannot be prepared."""

import datetime as dt

import pytest
from django.db import connection, transaction
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tikting.core.prepared import Prepared
from tikting.incidents.models import Incident

pytestmark = pytest.mark.django_db

OPENED = timezone.now().replace(microsecond=123456) - dt.timedelta(days=3)


def values(obj):
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


@pytest.fixture
def incidents(cast):
    rows = []
    for n, priority, service in ((1, 2, cast.email), (2, 2, None), (3, 4, cast.network), (4, None, None)):
        rows.append(
            Incident.objects.create(
                number=f"INC{n}",
                short_description=f"Case {n}",
                opened_at=OPENED + dt.timedelta(hours=n),
                priority=priority,
                service=service,
                raw={"n": n, "nested": [1, "two"]},
            )
        )
    return rows


def by_priority_and_service(priority, service_id):
    return Incident.objects.filter(priority=priority, service_id=service_id).order_by("pk")


def test_rows_are_the_orms_for_every_value_and_shape(cast, incidents):
    prepared = Prepared(by_priority_and_service)
    for priority, service_id in [
        (2, cast.email.pk),
        (2, None),  # IS NULL: another shape
        (4, cast.network.pk),
        (2, cast.network.pk),  # nothing
        (None, None),
        (2, cast.email.pk),  # the first shape again, now compiled
    ]:
        got = prepared(priority, service_id)
        expected = list(by_priority_and_service(priority, service_id))
        assert [values(o) for o in got] == [values(o) for o in expected], (priority, service_id)
        assert all(o._state.db == "default" and not o._state.adding for o in got)


def test_dates_json_and_decimals_come_back_as_the_orm_makes_them(incidents):
    row = Prepared(lambda number: Incident.objects.filter(number=number)).first("INC3")
    assert row is not None
    assert row.opened_at == OPENED + dt.timedelta(hours=3) and row.opened_at.tzinfo is not None
    assert row.raw == {"n": 3, "nested": [1, "two"]}
    assert values(row) == values(Incident.objects.get(number="INC3"))


def test_the_second_call_compiles_nothing_and_runs_one_query(incidents):
    prepared = Prepared(lambda number: Incident.objects.filter(number=number))
    prepared.first("INC1")
    with CaptureQueriesContext(connection) as queries:
        second = prepared.first("INC2")
        assert second is not None and second.number == "INC2"
        assert prepared.first("nothing") is None
    assert len(queries) == 2


def test_a_transformed_value_falls_back_to_the_orm(incidents):
    # `contains` sends %value%: the stand-in is not among the parameters as it was given
    prepared = Prepared(lambda text: Incident.objects.filter(short_description__contains=text).order_by("pk"))
    assert [o.number for o in prepared("ase 2")] == ["INC2"]
    assert [o.number for o in prepared("Case")] == ["INC1", "INC2", "INC3", "INC4"]


def test_a_stand_in_looking_like_a_constant_falls_back(incidents):
    # the stand-in for the first integer is 30011: with that constant beside it, the ORM answers
    prepared = Prepared(lambda pk: Incident.objects.filter(pk=pk).exclude(reassignment_count=30_011))
    assert [o.number for o in prepared(incidents[0].pk)] == ["INC1"]
    assert [o.number for o in prepared(incidents[1].pk)] == ["INC2"]


def test_querysets_that_are_not_whole_rows_run_through_the_orm(incidents):
    joined = Prepared(lambda number: Incident.objects.select_related("service").filter(number=number))
    row = joined.first("INC1")
    assert row is not None and row.service.name  # the related row came with it
    deferred = Prepared(lambda number: Incident.objects.only("number").filter(number=number))
    only = deferred.first("INC2")
    assert only is not None and only.number == "INC2"


def test_for_update_inside_a_transaction(incidents):
    locked = Prepared(lambda pk: Incident.objects.select_for_update().filter(pk=pk))
    with transaction.atomic():
        row = locked.first(incidents[2].pk)
        assert row is not None and row.number == "INC3"
        row.short_description = "Locked and changed"
        row.save(update_fields=["short_description"])
    assert Incident.objects.get(pk=incidents[2].pk).short_description == "Locked and changed"


def test_a_small_integer_is_bound_not_compiled_in(incidents):
    # PostgreSQL's backend passes a smallint as psycopg's Int2: bound as such, the query prepared
    prepared = Prepared(lambda priority: Incident.objects.filter(priority=priority).order_by("pk"))
    assert [o.number for o in prepared(2)] == ["INC1", "INC2"]
    assert prepared._compiled((4,), "rows", "default", None) is not None
    assert [o.number for o in prepared(4)] == ["INC3"]


def test_an_argument_used_twice_is_bound_twice_and_a_constant_stays(incidents):
    def build(text):
        return (
            Incident.objects.filter(Q(short_description=text) | Q(number=text))
            .exclude(reassignment_count=30_011 + 7)  # the second variant's first stand-in
            .order_by("pk")
        )

    prepared = Prepared(build)
    assert [o.number for o in prepared("Case 2")] == ["INC2"]
    assert prepared._compiled(("INC3",), "rows", "default", None) is not None
    assert [o.number for o in prepared("INC3")] == ["INC3"]


def test_values_pages_and_counts_are_the_orms(cast, incidents):
    def build(shape, *priorities):
        return Incident.objects.filter(priority__in=priorities).order_by(shape).values_list("pk", "number")

    prepared = Prepared(build)
    for shape, priorities in (("pk", (2, 4)), ("-number", (2, 4)), ("pk", (2,)), ("pk", (4, 2))):
        orm = list(build(shape, *priorities))
        for offset, limit in ((0, 1), (1, 5), (0, None), (2, None)):
            got = prepared.values(*priorities, shape=shape, limit=limit, offset=offset)
            assert got == orm[offset : None if limit is None else offset + limit], (shape, offset, limit)
        assert prepared.count(*priorities, shape=shape) == len(orm)
    assert prepared._compiled((2, 4), "values", "default", "pk") is not None
    assert prepared._compiled((2, 4), "count", "default", "pk") is not None
    with CaptureQueriesContext(connection) as queries:
        prepared.values(1, shape="pk", limit=1)
        prepared.count(1, shape="pk")
    assert "OFFSET" in queries[0]["sql"] and "COUNT(*) FROM (SELECT" in queries[1]["sql"]
