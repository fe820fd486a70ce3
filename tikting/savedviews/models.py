"""A register or record list as someone filtered and sorted it, saved under a name."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse

QUERY_LIMIT = 2000  # characters of a saved query string


class SavedView(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_views")
    name = models.CharField(max_length=80)
    # Which list: "register", or "records:<kind>" (tikting/savedviews/registry.py).
    list_key = models.CharField(max_length=60)
    query = models.CharField(max_length=QUERY_LIMIT, blank=True, help_text="The list's query string")
    # Shared with this team's members (the owner's team when it was shared); empty: private.
    team = models.ForeignKey(
        "accounts.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "list_key", "name"], name="saved_view_unique_name")
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("savedviews:open", args=[self.pk])

    @property
    def shared(self) -> bool:
        return self.team_id is not None
