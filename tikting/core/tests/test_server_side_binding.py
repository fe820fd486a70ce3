"""On PostgreSQL a query a connection runs again and again is prepared by the server (settings.py,
TIKTING_DB_SERVER_SIDE_BINDING): parsed and planned once, not for every request."""

import pytest
from django.db import connection

from tikting.incidents.models import Incident

pytestmark = pytest.mark.django_db


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's prepared statements")
def test_a_repeated_query_is_prepared_by_the_server():
    assert connection.settings_dict["OPTIONS"].get("server_side_binding") is True
    for pk in range(1, 8):
        list(Incident.objects.filter(pk=pk, number=f"INC{pk}"))
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any('FROM "incidents_incident"' in sql and "$1" in sql for sql in prepared), prepared
