"""Fields and choices shared by the ITSM records (incidents, problems, changes, requests …)."""

from django.conf import settings
from django.db import models


class Priority(models.IntegerChoices):
    P1 = 1, "1 - Critical"
    P2 = 2, "2 - High"
    P3 = 3, "3 - Moderate"
    P4 = 4, "4 - Low"
    P5 = 5, "5 - Planning"


class Practice(models.TextChoices):
    """The ITIL 4 practices: what an improvement item, a metric or a record belongs to."""

    INCIDENT = "incident", "Incident management"
    PROBLEM = "problem", "Problem management"
    CHANGE = "change", "Change enablement"
    REQUEST = "request", "Service request management"
    KNOWLEDGE = "knowledge", "Knowledge management"
    ASSET = "asset", "IT asset & configuration management"
    SLA = "sla", "Service level management"
    SERVICE_DESK = "service_desk", "Service desk"
    MONITORING = "monitoring", "Monitoring & event management"
    RELEASE = "release", "Release & deployment management"
    SECURITY = "security", "Information security management"
    IMPROVEMENT = "improvement", "Continual improvement"
    OTHER = "other", "Other"


class Channel(models.TextChoices):
    PHONE = "phone", "Phone"
    EMAIL = "email", "E-mail"
    PORTAL = "portal", "Self-service portal"
    CHAT = "chat", "Chat"
    WALK_IN = "walk_in", "Walk-in"
    MONITORING = "monitoring", "Monitoring / event"
    IVR = "ivr", "IVR"
    OTHER = "other", "Other"


def service_fk(related_name: str):
    return models.ForeignKey(
        "cmdb.Service", null=True, blank=True, on_delete=models.SET_NULL, related_name=related_name
    )


def ci_fk(related_name: str):
    return models.ForeignKey(
        "cmdb.ConfigurationItem", null=True, blank=True, on_delete=models.SET_NULL, related_name=related_name
    )


def group_fk(related_name: str):
    return models.ForeignKey(
        "accounts.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name=related_name
    )


def user_fk(related_name: str = "+"):
    return models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name=related_name
    )
