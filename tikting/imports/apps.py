from django.apps import AppConfig


class ImportsConfig(AppConfig):
    name = "tikting.imports"
    label = "imports"
