from django.apps import AppConfig


class SurveysConfig(AppConfig):
    name = "tikting.surveys"
    label = "surveys"
