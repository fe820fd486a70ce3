from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "tikting.incidents"
    label = "incidents"
