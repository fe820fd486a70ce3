"""Knowledge articles and how they are used."""

from django.db import models
from django.urls import reverse

from tikting.core.itsm import service_fk, user_fk
from tikting.core.models import SourcedRecord

__all__ = ["Article"]


class Article(SourcedRecord):
    """A knowledge article (ITIL knowledge management): its use, its usefulness, its review cycle."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PUBLISHED = "published", "Published"
        RETIRED = "retired", "Retired"

    number = models.CharField(max_length=40, unique=True)
    title = models.CharField(max_length=300, blank=True)
    body = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PUBLISHED)
    service = service_fk("articles")
    author = user_fk("+")
    views = models.PositiveIntegerField(default=0)
    uses = models.PositiveIntegerField(default=0, help_text="Times attached to a ticket")
    helpful_yes = models.PositiveIntegerField(default=0)
    helpful_no = models.PositiveIntegerField(default=0)
    last_reviewed_at = models.DateField(null=True, blank=True)
    review_due = models.DateField(null=True, blank=True, db_index=True)

    class Meta(SourcedRecord.Meta):
        ordering = ["number"]

    def __str__(self) -> str:
        return f"{self.number} {self.title}".strip()

    def get_absolute_url(self) -> str:
        return reverse("records:detail", args=["article", self.pk])
