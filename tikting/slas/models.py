"""Service level agreements: response and resolution targets per priority."""

from typing import Any

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse

from tikting.core.itsm import Priority, service_fk

__all__ = ["SLADefinition"]


class SLADefinition(models.Model):
    """Targets for one priority (and optionally one service): respond within N minutes, resolve within M.

    Business hours count only the hours between `day_start` and `day_end` on `weekdays`
    (0 = Monday); 24×7 counts every minute. A service-specific definition wins over a general one.
    """

    class Calendar(models.TextChoices):
        ALWAYS = "24x7", "24×7"
        BUSINESS = "business", "Business hours"

    name = models.CharField(max_length=120)
    service = service_fk("sla_definitions")
    priority = models.PositiveSmallIntegerField(choices=Priority.choices)
    response_minutes = models.PositiveIntegerField(null=True, blank=True)
    resolution_minutes = models.PositiveIntegerField()
    calendar = models.CharField(max_length=10, choices=Calendar.choices, default=Calendar.ALWAYS)
    day_start = models.PositiveSmallIntegerField(default=8, validators=[MaxValueValidator(23)])
    day_end = models.PositiveSmallIntegerField(
        default=18, validators=[MinValueValidator(1), MaxValueValidator(24)]
    )
    weekdays = models.CharField(max_length=20, default="0,1,2,3,4", help_text="Working days, 0 = Monday")
    active = models.BooleanField(default=True)

    # Not a field: the scope as loaded before a save (signals._remember), to tell what the save changed.
    _sla_before: dict[str, Any] | None

    class Meta:
        ordering = ["service__name", "priority"]
        constraints = [
            models.UniqueConstraint(fields=["service", "priority"], name="sla_one_per_service_priority"),
        ]
        verbose_name = "SLA definition"

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("records:detail", args=["sla", self.pk])
