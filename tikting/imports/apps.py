from django.apps import AppConfig


def _rebuild_incident_index(vendor: str) -> None:
    """After a bulk load of incidents: the SQLite full-text index rebuilt from the table in one
    statement (its per-row triggers were off during the load). PostgreSQL's index is a generated
    column, computed by COPY itself: nothing to do."""
    from django.db import connection

    from tikting.incidents import search

    if vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute(search.SQLITE_REBUILD)


class ImportsConfig(AppConfig):
    name = "tikting.imports"
    label = "imports"

    def ready(self) -> None:
        from tikting.incidents import search

        from .bulk import Rebuild, register_rebuild

        register_rebuild(
            Rebuild(
                search.TABLE,
                {"sqlite": tuple(search.SQLITE_TRIGGERS)},
                _rebuild_incident_index,
                name="full-text",
            )
        )
