from django.apps import AppConfig


class CmdbConfig(AppConfig):
    name = "tikting.cmdb"
    label = "cmdb"
