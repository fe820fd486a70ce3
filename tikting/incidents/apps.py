from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_search_index(using: str = "default", **_kwargs: Any) -> None:
    """After every migrate: SQLite's full-text triggers back if a migration rebuilt the table."""
    from django.db import connections

    from tikting.incidents.search import ensure_index

    ensure_index(connections[using])


class IncidentsConfig(AppConfig):
    name = "tikting.incidents"
    label = "incidents"

    def ready(self) -> None:
        post_migrate.connect(_ensure_search_index, sender=self, dispatch_uid="incidents_search_index")
