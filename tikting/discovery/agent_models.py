"""The agent endpoint's model (tikting/discovery/agent/): agent tokens, the shared secrets discovery
agents authenticate with. A module of its own, imported by models.py, so that the models do not
import the endpoint's package."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models

__all__ = ["AgentToken"]


class AgentToken(models.Model):
    """A secret an administrator gives a group of discovery agents (FusionInventory, GLPI Agent):
    they send it as their HTTP basic-auth password to submit inventories. It opens the agent
    endpoint only, never the API or the pages. Only its SHA-256 is stored; the secret is shown
    once, when it is created."""

    PREFIX = "tkd_"

    name = models.CharField(max_length=100, help_text="Which agents use it (e.g. 'Paris workstations')")
    key_hash = models.CharField(max_length=64, unique=True)
    key_hint = models.CharField(max_length=12, help_text="First characters, to recognise a token")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"agent token {self.name} ({self.key_hint}…)"

    @staticmethod
    def hash(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()

    @classmethod
    def new_secret(cls) -> str:
        return cls.PREFIX + secrets.token_urlsafe(32)
