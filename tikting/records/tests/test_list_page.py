"""A page of a list read by list_page() (its SQL compiled once per connection and shape of request)
is what the ORM gives for the same filters: apply_filters(), sliced, serialized, counted."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tikting.records import forms as F
from tikting.records import registry as R

pytestmark = pytest.mark.django_db

NOW = timezone.now()
KIND = R.KINDS["incident"]


@pytest.fixture
def incidents(cast):
    rows = []
    for n in range(1, 13):
        rows.append(
            R.create_record(
                "incident",
                actor=None,
                number=f"INC{n:03d}",
                short_description=("Printer jammed", "Mail bounces", "Kerberos ticket expired")[n % 3],
                description="The kerberos realm" if n % 4 == 0 else "",
                opened_at=NOW - dt.timedelta(days=n),
                priority=1 + n % 4,
                status=("new", "in_progress", "on_hold")[n % 3],
                service=(cast.email, cast.network, None)[n % 3],
                major=n % 5 == 0,
            )
        )
    return rows


def expected(params, offset, limit, fields):
    qs = F.apply_filters(KIND, KIND.model._default_manager.all(), params)
    ids = list(qs[offset : offset + limit].values_list("pk", flat=True))
    return F.serialize_ids(KIND, ids, fields=fields), qs.count()


REQUESTS = [
    ({}, 0, 5, None),
    ({}, 10, 5, ("status",)),  # a short page: counted from the page
    ({}, 50, 5, None),  # past the end: counted
    ({"status": "in_progress", "priority": "3"}, 0, 2, ("short_description", "status", "priority")),
    ({"status": "in_progress", "priority": "2"}, 0, 2, ("short_description", "status", "priority")),
    ({"status": "new,on_hold", "priority": "1,4"}, 1, 3, None),
    ({"service": "none"}, 0, 50, ("service",)),
    ({"major": "yes"}, 0, 50, None),
    ({"major": "no", "sort": "number"}, 2, 4, None),
    ({"q": "kerberos"}, 0, 3, ("short_description",)),
    ({"q": "printer"}, 0, 50, ("short_description",)),
    ({"q": "kerb realm"}, 0, 50, None),
    ({"q": "!!"}, 0, 50, None),  # no words: nothing
    ({"q": "mail", "sort": "-number"}, 0, 50, None),
    ({"date_from": (NOW - dt.timedelta(days=5)).date().isoformat()}, 0, 50, None),
    ({"date_to": (NOW - dt.timedelta(days=5)).date().isoformat(), "sort": "opened_at"}, 0, 3, None),
]


def test_every_shape_and_value_gives_what_the_orm_gives(cast, incidents):
    requests = [
        *REQUESTS,
        ({"service": str(cast.email.pk)}, 0, 50, None),
        ({"service": "E-mail"}, 0, 2, None),
    ]
    for _round in range(2):  # compiled, then bound
        for params, offset, limit, fields in requests:
            query = F.parse_filters(KIND, params)
            got = F.list_page(KIND, query, offset=offset, limit=limit, fields=fields)
            assert got == expected(params, offset, limit, fields), params


def test_a_shape_seen_before_runs_the_page_and_its_count_only(incidents):
    def page(status, priority):
        query = F.parse_filters(KIND, {"status": status, "priority": priority})
        return F.list_page(KIND, query, offset=0, limit=1, fields=("number",))

    page("new", "1")
    with CaptureQueriesContext(connection) as queries:
        items, count = page("in_progress", "2")
    assert len(queries) == 2  # the page, its count: nothing else to compile or look up
    # compiled SQL: the page's LIMIT and OFFSET are parameters (the ORM leaves out OFFSET 0), the
    # count counts the page's query (the ORM's is a COUNT(*) AS "__count" of its own)
    assert "OFFSET" in queries[0]["sql"] and "COUNT(*) FROM (SELECT" in queries[1]["sql"]
    assert (items, count) == expected({"status": "in_progress", "priority": "2"}, 0, 1, ("number",))


def test_bad_values_are_refused_naming_the_parameter_as_before(incidents):
    from django.core.exceptions import ValidationError

    for params, name in (
        ({"status": "nonsense"}, "status"),
        ({"priority": "high"}, "priority"),
        ({"major": "perhaps"}, "major"),
        ({"date_from": "yesterday"}, "date_from"),
        ({"sort": "colour"}, "sort"),
        ({"service": "no such service"}, "service"),
    ):
        with pytest.raises(ValidationError) as caught:
            F.parse_filters(KIND, params)
        assert set(caught.value.message_dict) == {name}, params


def test_no_kind_filters_on_a_parameter_name_the_lists_reserve():
    # the API hands a list request's parameters to the filters whole, limit, offset and fields too
    for kind in R.KINDS.values():
        assert not F.filterable(kind) & F.RESERVED, kind.slug
