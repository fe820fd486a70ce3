"""The result cache: answers are reused while no record a metric reads has changed, and every
kind of write (ORM save, bulk update, raw SQL, delete, a label rename) makes the next answer fresh."""

import datetime as dt

import pytest
from django.db import connection

from tikting.accounts.models import Team
from tikting.incidents.models import Incident
from tikting.metrics import cache, engine
from tikting.metrics.engine import compute
from tikting.metrics.models import CachedResult

from .conftest import at, incident

pytestmark = pytest.mark.django_db


def mttr(**kw):
    return compute("mttr", **kw)


def test_second_answer_comes_from_the_cache(mttr_data, django_assert_max_num_queries):
    first = mttr(by="month")
    assert CachedResult.objects.count() == 1
    with django_assert_max_num_queries(2):  # the stamp and the stored answer
        again = mttr(by="month")
    assert again.as_dict() == first.as_dict()
    assert again.total.value == pytest.approx((1 + 2 + 4 + 10 + 3 + 20) / 6, abs=0.01)


@pytest.mark.parametrize(
    "write",
    [
        pytest.param(lambda email: incident(at(2024, 1, 9, 9), 100, service=email), id="orm-create"),
        pytest.param(
            lambda email: Incident.objects.filter(service=email).update(
                resolved_at=at(2024, 1, 20), status="closed"
            ),
            id="bulk-update",
        ),
        pytest.param(lambda email: Incident.objects.filter(service=email).delete(), id="delete"),
        pytest.param(
            lambda email: connection.cursor().execute(
                "UPDATE incidents_incident SET reopen_count = 0 WHERE status = 'in_progress'"
            ),
            id="raw-sql",
        ),
    ],
)
def test_every_write_makes_the_next_answer_fresh(mttr_data, write):
    email, _ = mttr_data
    mttr(by="month")
    stamp = cache.data_stamp()
    write(email)
    assert cache.data_stamp() > stamp
    assert mttr(by="month").as_dict() == compute("mttr", by="month", cache=False).as_dict()


def test_a_renamed_group_relabels_the_slices(mttr_data):
    assert [p.label for p in mttr(by="group").points] == ["Service desk", "(none)"]
    Team.objects.filter(name="Service desk").update(name="Front desk")
    assert [p.label for p in mttr(by="group").points] == ["Front desk", "(none)"]


def test_different_questions_do_not_share_an_answer(mttr_data):
    email_only = mttr(filters={"service": "E-mail"})
    everything = mttr()
    assert email_only.total.count != everything.total.count
    assert CachedResult.objects.count() == 2


def test_only_answers_as_of_now_expire_and_zero_turns_reuse_off(mttr_data, settings):
    mttr()
    compute("backlog", by="month")  # as of now: depends on the time
    compute("backlog", by="month", filters={"opened_to": "2024-03-31"})  # a fixed instant
    CachedResult.objects.update(computed_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    CachedResult.objects.filter(expires_at__isnull=False).update(
        expires_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    )
    assert CachedResult.objects.filter(expires_at__isnull=False).count() == 1
    assert cache.purge() == 1  # the expired backlog only: the others live until the data changes
    assert CachedResult.objects.count() == 2
    incident(at(2024, 1, 9, 9), 100)
    assert cache.purge() == 2  # computed at an older stamp
    settings.TIKTING_METRICS_CACHE_SECONDS = 0
    mttr()
    assert not CachedResult.objects.exists()


def test_no_filter_and_the_filter_none_are_different_questions(mttr_data):
    everything = mttr(filters={"service": None, "category": ""})
    without_service = mttr(filters={"service": "None"})  # "none" means: incidents without a service
    assert everything.total.count == 6 and without_service.total.count == 0
    assert mttr(filters={"service": "None"}).total.count == 0
    assert mttr().total.count == 6
    assert CachedResult.objects.count() == 2


def test_warm_computes_anew(mttr_data):
    mttr(by="month")
    CachedResult.objects.update(payload={"planted": True})
    engine.warm(["mttr"])
    assert mttr(by="month").total.value == pytest.approx(6.67, abs=0.01)


def test_triggers_come_back_after_migrate(db):
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("DROP TRIGGER metrics_data_stamp ON incidents_incident")
        else:
            cursor.execute("DROP TRIGGER metrics_data_stamp_incidents_incident_update")
    stamp = cache.data_stamp()
    cache.after_migrate(using=connection.alias)
    incident(at(2024, 1, 9, 9), 1)
    Incident.objects.update(reopen_count=0)
    # the UPDATE moved the stamp again: its trigger is back (SQLite counts rows, PostgreSQL statements)
    assert cache.data_stamp() >= stamp + 2


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_an_answer_computed_while_another_transaction_writes_is_not_kept(mttr_data):
    import psycopg

    settings_dict = connection.settings_dict
    other = psycopg.connect(
        host=settings_dict["HOST"] or None,
        port=settings_dict["PORT"] or None,
        user=settings_dict["USER"],
        dbname=settings_dict["NAME"],
    )
    try:
        other.execute(
            "INSERT INTO accounts_team (name, description, source, working_hours_per_week, improvement_share)"
            " VALUES ('in flight', '', 'x', 37.5, 10)"
        )
        assert cache.writers_in_flight()
        mttr()
        assert not CachedResult.objects.exists()  # answered, not kept: the writer may be invisible
    finally:
        other.rollback()
        other.close()
    assert not cache.writers_in_flight()
    mttr()
    assert CachedResult.objects.count() == 1


def test_an_explicit_now_is_never_cached(mttr_data):
    compute("backlog", by="month", now=at(2024, 4, 1))
    assert not CachedResult.objects.exists()


def test_triggers_exist_on_every_table_metrics_read(db):
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT DISTINCT event_object_table FROM information_schema.triggers "
                "WHERE trigger_name = 'metrics_data_stamp'"
            )
        else:
            cursor.execute("SELECT DISTINCT tbl_name FROM sqlite_master WHERE type = 'trigger'")
        tables = {row[0] for row in cursor.fetchall()}
    assert set(cache.DATA_TABLES) <= tables


def test_warm_fills_the_default_views(mttr_data):
    assert engine.warm(["mttr", "reopen_rate"]) == 2
    assert CachedResult.objects.count() == 2


def test_page_sources_are_each_distinct_source_once(services):
    from tikting.metrics.views import distinct_sources

    for source in ("servicenow", "bpic2014", "servicenow", ""):
        incident(at(2024, 1, 1), 1, source=source)
    assert distinct_sources() == ["", "bpic2014", "servicenow"]


def test_warm_command_and_task(mttr_data, settings):
    from django.core.management import CommandError, call_command

    from tikting.metrics.tasks import warm_metrics

    call_command("metrics", "warm", "mttr")
    assert CachedResult.objects.count() == 1
    with pytest.raises(CommandError, match="unknown nope"):
        call_command("metrics", "warm", "nope")
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    assert warm_metrics.enqueue(["reopen_rate"]).return_value == {"computed": 1, "purged": 0}
    assert CachedResult.objects.count() == 2
