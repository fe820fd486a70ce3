from django.apps import AppConfig


class ChangesConfig(AppConfig):
    name = "tikting.changes"
    label = "changes"
