from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    name = "tikting.governance"
    label = "governance"
