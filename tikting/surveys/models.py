"""Customer satisfaction: survey responses and ticket feedback scores."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse

from tikting.core.itsm import service_fk
from tikting.core.models import SourcedRecord
from tikting.lib.display import when

__all__ = ["SurveyResponse"]


class SurveyResponse(SourcedRecord):
    """One CSAT answer (score 1-5), usually about one ticket."""

    score = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(5)])
    comment = models.TextField(blank=True)
    responded_at = models.DateTimeField(db_index=True)
    incident = models.ForeignKey(
        "incidents.Incident",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="survey_responses",
    )
    service_request = models.ForeignKey(
        "service_requests.ServiceRequest",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="survey_responses",
    )
    service = service_fk("survey_responses")

    class Meta(SourcedRecord.Meta):
        ordering = ["-responded_at", "-id"]
        constraints = [
            *SourcedRecord.Meta.constraints,
            models.CheckConstraint(condition=models.Q(score__gte=1, score__lte=5), name="survey_score_1_5"),
        ]

    def __str__(self) -> str:
        return f"CSAT {self.score} on {when(self.responded_at, 'date')}"

    def get_absolute_url(self) -> str:
        return reverse("records:detail", args=["survey", self.pk])
