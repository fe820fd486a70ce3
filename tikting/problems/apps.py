from django.apps import AppConfig


class ProblemsConfig(AppConfig):
    name = "tikting.problems"
    label = "problems"
