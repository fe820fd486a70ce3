from django.apps import AppConfig


class DiscoveryConfig(AppConfig):
    name = "tikting.discovery"
    label = "discovery"
    verbose_name = "Odysseus: discovery and CMDB accuracy"
