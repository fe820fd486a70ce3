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
        from .models import ROLLUP_SQLITE_TRIGGERS

        post_migrate.connect(after_migrate, sender=self, dispatch_uid="metrics_after_migrate")
        # Bulk loads (tikting.imports.bulk): SQLite's per-row triggers off for the load, their
        # work done once after it (the rollups module itself is heavy: imported only then).
        for table in DATA_TABLES:
            register_rebuild(
                Rebuild(table, {"sqlite": sqlite_trigger_names(table)}, bump_after_load, "data stamp")
            )
        rollup: dict[str, tuple[str, ...]] = {"sqlite": ROLLUP_SQLITE_TRIGGERS}
        register_rebuild(Rebuild("incidents_incident", rollup, _mark_rollup_after_load, "rollup"))
