"""Django's PostgreSQL backend, with a health check that asks the server only when it has spoken.

With `CONN_HEALTH_CHECKS` Django checks a kept connection before the first query of each request
with a `SELECT 1`: a round trip to the server on every request (a tenth of an API read's time on
PostgreSQL). A connection the server ended (a restart, a failover, `pg_terminate_backend`, an
idle timeout) is told so on its socket: PostgreSQL sends its last message and closes, and the
socket of an idle connection becomes readable. So: an idle socket with nothing to read is a live
connection as far as anyone can know without a query; when there is something to read (the
server's goodbye, or a notice), or the client already knows the connection is broken, Django's
own check decides with its `SELECT 1`, and a failed one gets a new connection before the query.

What neither check catches the same way: a peer that vanished without closing (a cable pulled):
the `SELECT 1` would wait for TCP to give up, this check lets the request's first query fail.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql.base import DatabaseWrapper as PostgreSQLDatabaseWrapper


class DatabaseWrapper(PostgreSQLDatabaseWrapper):
    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        try:
            readable, _, _ = select.select([connection.fileno()], [], [], 0)
        except (OSError, ValueError):  # no socket any more
            return False
        if not readable:
            return True
        return bool(super().is_usable())
