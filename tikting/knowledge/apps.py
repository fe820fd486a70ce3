from django.apps import AppConfig


class KnowledgeConfig(AppConfig):
    name = "tikting.knowledge"
    label = "knowledge"
