"""The PostgreSQL health check asks the server only when the connection's socket says something:
a live idle connection costs no query; one the server ended is found and replaced."""

import time

import psycopg
import pytest
from django.db import connection

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's backend"),
]


def other_connection() -> psycopg.Connection:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("prepare_threshold", None)
    return psycopg.connect(**params, autocommit=True)


def last_query_of(pid: int) -> str:
    with other_connection() as other:
        row = other.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
        assert row is not None
        return str(row[0])


def test_the_backend_is_ours():
    assert connection.settings_dict["ENGINE"] == "tikting.core.pgbackend"
    assert connection.vendor == "postgresql"


def test_a_live_idle_connection_is_usable_without_a_query():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 'health check marker'")
        pid = connection.connection.info.backend_pid
    assert connection.is_usable()
    assert last_query_of(pid) == "SELECT 'health check marker'"  # no SELECT 1 was sent


def test_a_connection_the_server_ended_is_found_and_replaced():
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    with other_connection() as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
    for _ in range(50):  # the server's goodbye reaches the socket
        if not connection.is_usable():
            break
        time.sleep(0.02)
    assert not connection.is_usable()
    # As a request starts: the failed check closes the connection, the query gets a new one.
    setattr(connection, "health_check_done", False)  # noqa: B010 - not in the stubs
    connection.close_if_health_check_failed()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid
