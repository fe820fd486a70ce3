from django.apps import AppConfig


class SlasConfig(AppConfig):
    name = "tikting.slas"
    label = "slas"
