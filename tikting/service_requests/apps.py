from django.apps import AppConfig


class ServiceRequestsConfig(AppConfig):
    name = "tikting.service_requests"
    label = "service_requests"
