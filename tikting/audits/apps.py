from django.apps import AppConfig


class AuditsConfig(AppConfig):
    name = "tikting.audits"
    label = "audits"
