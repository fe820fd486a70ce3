from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "tikting.core"
    label = "core"
