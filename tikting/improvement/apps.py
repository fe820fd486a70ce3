from django.apps import AppConfig


class ImprovementConfig(AppConfig):
    name = "tikting.improvement"
    label = "improvement"
