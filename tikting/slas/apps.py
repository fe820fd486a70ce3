from django.apps import AppConfig


class SlasConfig(AppConfig):
    name = "tikting.slas"
    label = "slas"

    def ready(self) -> None:
        from . import signals  # noqa: F401 - connects the re-apply receivers
