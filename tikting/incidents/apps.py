from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_search_index(using: str = "default", **_kwargs: Any) -> None:
    """After every migrate: SQLite's full-text triggers back if a migration rebuilt the table."""
    from django.db import connections

    from tikting.incidents.search import ensure_index

    ensure_index(connections[using])


def _rebuild_search_index(vendor: str) -> None:
    """After a bulk load of incidents: the SQLite full-text index rebuilt from the table in one
    statement (its per-row triggers were off during the load). PostgreSQL's index is a generated
    column, computed by COPY itself: nothing to do."""
    from django.db import connection

    from tikting.incidents import search

    if vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute(search.SQLITE_REBUILD)


class IncidentsConfig(AppConfig):
    name = "tikting.incidents"
    label = "incidents"

    def ready(self) -> None:
        from tikting.core.loads import Rebuild, register_rebuild

        from . import search

        post_migrate.connect(_ensure_search_index, sender=self, dispatch_uid="incidents_search_index")
        register_rebuild(
            Rebuild(
                search.TABLE, {"sqlite": tuple(search.SQLITE_TRIGGERS)}, _rebuild_search_index, "full-text"
            )
        )
