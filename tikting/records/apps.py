from django.apps import AppConfig


class RecordsConfig(AppConfig):
    """The record-kind registry and the generic record pages, API and forms over it."""

    name = "tikting.records"
    label = "records"

    def ready(self) -> None:
        from .hooks import register

        register()
