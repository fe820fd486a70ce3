from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo organisation: its register, reviews and history, loaded by `tikting demo`."""

    name = "tikting.demo"
    label = "demo"
