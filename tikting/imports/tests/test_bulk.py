"""Bulk loads (tikting.imports.bulk): indexes, foreign keys and rebuild triggers taken off a table
for its load and put back as they were; the writer's rows read back and compared."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from tikting.cmdb.models import ConfigurationItem, Service
from tikting.imports import bulk
from tikting.incidents.models import Incident

pytestmark = pytest.mark.django_db(transaction=False)

TABLE = Incident._meta.db_table


def catalog(table: str) -> dict[str, set[str]]:
    """The table's indexes, triggers and foreign keys as the database describes them."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT type, name, sql FROM sqlite_master WHERE tbl_name = %s", [table])
            rows = cursor.fetchall()
            return {
                "index": {f"{n} {s}" for t, n, s in rows if t == "index"},
                "trigger": {f"{n} {s}" for t, n, s in rows if t == "trigger"},
                "fk": set(),
            }
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", [table])
        indexes = {f"{n} {d}" for n, d in cursor.fetchall()}
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal",
            [f'"{table}"'],
        )
        triggers = {n for (n,) in cursor.fetchall()}
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass"
            " AND contype = 'f'",
            [f'"{table}"'],
        )
        return {"index": indexes, "trigger": triggers, "fk": {f"{n} {d}" for n, d in cursor.fetchall()}}


def create_counting_trigger() -> None:
    """A trigger on incidents that counts inserted rows in a side table (what an FTS trigger is
    to its index): bulk_audit_count(n)."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bulk_test_count (n integer NOT NULL)")
        cursor.execute("INSERT INTO bulk_test_count (n) VALUES (0)")
        if connection.vendor == "sqlite":
            cursor.execute(
                f'CREATE TRIGGER bulk_test_trg AFTER INSERT ON "{TABLE}" '  # noqa: S608
                "BEGIN UPDATE bulk_test_count SET n = n + 1; END"
            )
        else:
            cursor.execute(
                "CREATE FUNCTION bulk_test_fn() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN UPDATE bulk_test_count SET n = n + 1; RETURN NEW; END $$"
            )
            cursor.execute(
                f'CREATE TRIGGER bulk_test_trg AFTER INSERT ON "{TABLE}" '
                "FOR EACH ROW EXECUTE FUNCTION bulk_test_fn()"
            )


def counted() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT n FROM bulk_test_count")
        return int(cursor.fetchone()[0])


def rows(n: int, service: Service, start: int = 0) -> list[dict]:
    opened = dt.datetime(2024, 3, 31, 0, 30, tzinfo=dt.UTC)
    return [
        {
            "number": f"INC{i:05d}",
            "opened_at": opened + dt.timedelta(hours=i),
            "priority": 1 + i % 5,
            "service_id": service.pk,
            "first_contact_resolution": i % 2 == 0,
            "raw": {"n": str(i), "text": "café ü", "nested": {"a": [1, None]}},
            "source": "test",
            "external_key": f"K{i}",
        }
        for i in range(start, start + n)
    ]


def test_bulk_load_puts_indexes_triggers_and_foreign_keys_back_and_runs_the_rebuild():
    create_counting_trigger()
    rebuilt: list[str] = []

    def rebuild(vendor: str) -> None:  # what an FTS rebuild does: one statement over the table
        rebuilt.append(vendor)
        with connection.cursor() as cursor:
            cursor.execute(f'UPDATE bulk_test_count SET n = (SELECT count(*) FROM "{TABLE}")')  # noqa: S608

    bulk.register_rebuild(
        bulk.Rebuild(TABLE, {"sqlite": ("bulk_test_trg",), "postgresql": ("bulk_test_trg",)}, rebuild, "t")
    )
    try:
        before = catalog(TABLE)
        assert any("bulk_test_trg" in t for t in before["trigger"])
        service = Service.objects.create(name="S")
        writer = bulk.TableWriter(Incident, timezone.now())
        with transaction.atomic(), bulk.bulk_load(TABLE) as deferred:
            assert deferred is not None
            during = catalog(TABLE)
            # only indexes that enforce nothing are off; unique ones and the primary key stay
            assert deferred.indexes and len(during["index"]) == len(before["index"]) - len(deferred.indexes)
            assert not any("bulk_test_trg" in t for t in during["trigger"])
            if connection.vendor == "postgresql":
                assert deferred.foreign_keys and not during["fk"]
            writer.insert(rows(50, service))
            assert counted() == 0  # the trigger did not fire per row
        assert catalog(TABLE) == before
        assert rebuilt == [connection.vendor]
        assert counted() == 50
        writer.insert(rows(1, service, start=50))  # the trigger is back
        assert counted() == 51
    finally:
        bulk.unregister_rebuild(TABLE, "t")


def test_bulk_load_off_changes_nothing():
    before = catalog(TABLE)
    with transaction.atomic(), bulk.bulk_load(TABLE, enabled=False) as deferred:
        assert deferred is None
        assert catalog(TABLE) == before


def test_unique_indexes_off_only_when_asked_and_a_repeated_key_fails_when_they_come_back():
    """unique=True: the (source, external_key) unique index is off for the load too (never the
    primary key, never the number's UNIQUE constraint), built again after it: the keys are checked
    all at once, and a repeated key fails the load (its rows and DDL rolled back)."""
    service = Service.objects.create(name="S")
    before = catalog(TABLE)
    with transaction.atomic(), bulk.bulk_load(TABLE, unique=True) as deferred:
        assert deferred is not None
        names = " ".join(sql for _name, sql in deferred.indexes)
        assert "external_key" in names and "UNIQUE" in names.upper()
        assert '"number"' not in names and "(number)" not in names  # the constraint's index stays
        bulk.TableWriter(Incident, timezone.now()).insert(rows(3, service))
    assert catalog(TABLE) == before
    assert Incident.objects.count() == 3
    repeated = rows(2, service, start=10)
    repeated[1]["external_key"] = repeated[0]["external_key"]
    with pytest.raises(IntegrityError), transaction.atomic(), bulk.bulk_load(TABLE, unique=True):
        bulk.TableWriter(Incident, timezone.now()).insert(repeated)
    assert Incident.objects.count() == 3 and catalog(TABLE) == before


def test_a_failed_load_is_rolled_back_with_its_ddl():
    before = catalog(TABLE)
    with pytest.raises(RuntimeError), transaction.atomic(), bulk.bulk_load(TABLE):
        raise RuntimeError("file unreadable")
    assert catalog(TABLE) == before


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite checks foreign keys per row")
def test_postgresql_a_broken_foreign_key_fails_the_load_when_the_keys_come_back():
    service = Service.objects.create(name="S")
    broken = rows(2, service)
    broken[1]["service_id"] = service.pk + 1000
    with pytest.raises(IntegrityError), transaction.atomic(), bulk.bulk_load(TABLE):
        bulk.TableWriter(Incident, timezone.now()).insert(broken)
    assert not Incident.objects.exists()


def test_writer_rows_read_back_unchanged_changed_and_as_the_orm_wrote_them():
    service = Service.objects.create(name="S")
    writer = bulk.TableWriter(Incident, timezone.now())
    written = rows(3, service)
    writer.insert([dict(r) for r in written])
    fields = ["number", "opened_at", "priority", "service_id", "first_contact_resolution", "raw", "closed_at"]
    stored = writer.existing("test", ["K0", "K1", "K2", "K9"], fields)
    assert set(stored) == {"K0", "K1", "K2"}
    for r in written:
        r.setdefault("closed_at", None)
        _pk, version, values = stored[r["external_key"]]
        assert version == 1
        assert writer.unchanged(values, r, fields)
    incident = Incident.objects.get(external_key="K1")
    assert incident.raw == written[1]["raw"] and incident.opened_at == written[1]["opened_at"]
    assert incident.first_contact_resolution is False and incident.service == service
    # a value that differs
    assert not writer.unchanged(stored["K0"][2], {**written[0], "raw": {"n": "other"}}, fields)
    assert not writer.unchanged(stored["K0"][2], {**written[0], "priority": 5}, fields)
    later = written[0]["opened_at"] + dt.timedelta(seconds=1)
    assert not writer.unchanged(stored["K0"][2], {**written[0], "opened_at": later}, fields)
    # the same instant in another zone is the same value
    cet = dt.timezone(dt.timedelta(hours=1))
    assert writer.unchanged(
        stored["K0"][2], {**written[0], "opened_at": written[0]["opened_at"].astimezone(cet)}, fields
    )
    # a row the ORM wrote (its JSON and datetime text) compares as unchanged too
    Incident.objects.filter(pk=incident.pk).update(
        raw={"text": "café ü", "nested": {"a": [1, None]}, "n": "1"}
    )
    again = writer.existing("test", ["K1"], fields)["K1"][2]
    assert writer.unchanged(again, written[1], fields)


def test_writer_leaves_other_sources_and_empty_keys_out():
    service = Service.objects.create(name="S")
    ConfigurationItem.objects.create(name="ci", source="test", external_key="")
    writer = bulk.TableWriter(Incident, timezone.now())
    writer.insert([{**rows(1, service)[0], "source": "other"}])
    assert writer.existing("test", ["K0"], ["number"]) == {}
    assert set(writer.existing("other", ["K0"], ["number"])) == {"K0"}
