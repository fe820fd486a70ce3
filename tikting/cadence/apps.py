from django.apps import AppConfig


class CadenceConfig(AppConfig):
    name = "tikting.cadence"
    verbose_name = "Cadence"

    def ready(self) -> None:
        from .bulk import register

        register()
