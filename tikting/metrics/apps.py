from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "tikting.metrics"
    label = "metrics"
