from django.apps import AppConfig
from django.db.models.signals import post_migrate


class MetricsConfig(AppConfig):
    name = "tikting.metrics"
    label = "metrics"

    def ready(self) -> None:
        from .cache import after_migrate

        post_migrate.connect(after_migrate, sender=self, dispatch_uid="metrics_after_migrate")
