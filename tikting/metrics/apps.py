from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _mark_rollup_after_load(vendor: str) -> None:
    from .rollups import mark_after_load

    mark_after_load(vendor)


class MetricsConfig(AppConfig):
    name = "tikting.metrics"
    label = "metrics"

    def ready(self) -> None:
        from tikting.core.loads import Rebuild, register_rebuild

        from .cache import DATA_TABLES, after_migrate, bump_after_load, sqlite_trigger_names

        post_migrate.connect(after_migrate, sender=self, dispatch_uid="metrics_after_migrate")
        # Bulk loads (tikting.imports.bulk): SQLite's per-row triggers off for the load, their
        # work done once after it. The names are the ones rollups.SQLITE_TRIGGERS gives (not
        # imported here: the rollups module is heavy, and every command starts through here).
        for table in DATA_TABLES:
            register_rebuild(
                Rebuild(table, {"sqlite": sqlite_trigger_names(table)}, bump_after_load, "data stamp")
            )
        rollup = tuple(f"metrics_rollup_{event}" for event in ("insert", "update", "delete"))
        register_rebuild(Rebuild("incidents_incident", {"sqlite": rollup}, _mark_rollup_after_load, "rollup"))
