"""Full-text search of incidents (tikting/incidents/search.py) on the database the tests run on:
ranking, writes reflected (create, update, delete, bulk inserts the way imports write), the
triggers put back after a table rebuild (SQLite), and `q` in the API and the records list."""

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from tikting.accounts.models import ApiToken
from tikting.incidents import search
from tikting.incidents.models import Incident
from tikting.records import registry as R

pytestmark = pytest.mark.django_db

OPENED = timezone.make_aware(dt.datetime(2026, 3, 2, 9, 0))
# An incident row as an importer writes it without the ORM: every NOT NULL column.
COLUMNS = (
    "number, short_description, opened_at, external_key, created_at, updated_at, description, status, "
    "source, raw, version, reopen_count, major, category, subcategory, contact_channel, "
    "post_incident_review, closure_code"
)
CONSTANTS = ("", "new", "bpic2014", "{}", 1, 0, False, "", "", "", "", "")


def incident(number, title="", description="", actor=None):
    return R.create_record(
        "incident",
        actor=actor,
        number=number,
        short_description=title,
        description=description,
        opened_at=OPENED,
    )


def found(text):
    return [i.number for i in search.search(Incident.objects.all(), text).order_by(f"-{search.RANK}", "-pk")]


def test_a_title_match_ranks_above_a_description_match_and_all_words_must_match():
    incident("INC1", "Printer jammed on floor 3", "Paper everywhere")
    incident("INC2", "User cannot log in", "The printer driver update broke the login script")
    incident("INC3", "VPN down", "Nothing about printing devices here, jammed doors")
    assert found("printer") == ["INC1", "INC2"]
    assert found("printer jammed") == ["INC1"]
    prefixed = found("print")  # printer, printing
    assert prefixed[0] == "INC1" and set(prefixed) == {"INC1", "INC2", "INC3"}
    assert found("INC2") == ["INC2"]  # the number is indexed too
    assert found("  !!  ") == []  # no words: nothing, not everything


def test_prefixes_match_and_substrings_inside_words_do_not():
    incident("INC10", "Kerberos ticket expired")
    assert found("kerb") == ["INC10"]
    assert found("beros") == []


def test_an_update_is_reflected_and_a_deleted_incident_is_gone(cast):
    obj: Any = incident("INC20", "Mailbox full", "Quota reached", actor=cast.contributor)
    assert found("mailbox") == ["INC20"]
    obj = R.update_record(obj, actor=cast.contributor, expected_version=obj.version, status="in_progress")
    assert found("mailbox") == ["INC20"]  # no text changed: still there, once
    obj = R.update_record(
        obj, actor=cast.contributor, expected_version=obj.version, short_description="Disk full"
    )
    assert found("mailbox") == []
    assert found("disk") == ["INC20"]
    R.delete_record(obj, actor=cast.manager)
    assert found("disk") == []
    incident("INC21", "Disk full again")
    assert found("disk") == ["INC21"]  # the index holds no trace of the deleted one


def test_rows_inserted_in_bulk_are_found():
    """The importers write with bulk_create, executemany or (PostgreSQL) COPY: the index is kept by
    the database itself, whatever the path."""
    Incident.objects.bulk_create(
        [
            Incident(number=f"BULK{i}", short_description=f"Firewall rule {i}", opened_at=OPENED)
            for i in range(50)
        ]
    )
    now = timezone.now()
    rows = [(f"COPY{i}", "Certificate expired", OPENED, f"k{i}", now, now, *CONSTANTS) for i in range(1, 3)]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY incidents_incident ({COLUMNS}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join(["%s"] * len(rows[0]))
            insert = f"INSERT INTO incidents_incident ({COLUMNS}) VALUES ({marks})"  # noqa: S608
            cursor.executemany(insert, rows)
    assert len(found("firewall")) == 50
    assert "COPY1" in found("certificate")


def test_a_load_with_the_index_deferred_is_found_and_later_writes_are_indexed_again():
    incident("INC50", "Switch port flapping")
    with search.deferred_index():
        Incident.objects.bulk_create(
            [Incident(number=f"LOAD{i}", short_description="Toner low", opened_at=OPENED) for i in range(20)]
        )
    assert len(found("toner")) == 20
    assert found("switch") == ["INC50"]
    incident("INC51", "Toner empty")
    assert len(found("toner")) == 21


@pytest.mark.skipif(
    connection.vendor != "sqlite", reason="PostgreSQL keeps a generated column through any ALTER"
)
def test_sqlite_triggers_come_back_after_a_table_rebuild():
    incident("INC30", "Backup failed")
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TRIGGER {search.FTS}_ai")  # as a table rebuild by a migration does
    assert search.ensure_index() is True
    incident("INC31", "Backup slow")
    assert set(found("backup")) == {"INC30", "INC31"}
    assert search.ensure_index() is False


def test_q_in_the_api_and_the_records_list_uses_the_index_best_match_first(cast):
    incident("INC40", "Router reboot", "Scheduled")
    incident("INC41", "Slow pages", "The router in room 2 drops packets")
    incident("INC42", "Password reset", "Nothing to do with it")
    _, raw = ApiToken.issue(cast.viewer, "tests")
    client = Client(headers={"Authorization": f"Bearer {raw}"})
    page = client.get("/api/records/incident", {"q": "router"}).json()
    assert [row["number"] for row in page["items"]] == ["INC40", "INC41"]
    assert page["count"] == 2
    page = client.get("/api/records/incident", {"q": "router", "sort": "number", "limit": "1"}).json()
    assert [row["number"] for row in page["items"]] == ["INC40"] and page["count"] == 2
    web = Client()
    web.force_login(cast.viewer)
    html = web.get("/records/incident/", {"q": "router"}).content.decode()
    assert "INC40" in html and "INC41" in html and "INC42" not in html
