"""Users, their role in the improvement practice, teams and API tokens."""

import hashlib
import secrets
from decimal import Decimal

from django.contrib.auth.models import AbstractUser, AnonymousUser
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

__all__ = ["Actor", "Role", "User", "Team", "ApiToken"]


class Role(models.TextChoices):
    """Roles, from least to most capable; each includes what the ones before it may do."""

    VIEWER = "viewer", "Viewer"
    CONTRIBUTOR = "contributor", "Contributor"
    OWNER = "owner", "Improvement owner"
    MANAGER = "manager", "Improvement manager"
    ADMIN = "admin", "Administrator"


ROLE_LEVEL = {role: level for level, role in enumerate(Role)}


class Team(models.Model):
    """A team of people, and the assignment group tickets are routed to."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    source = models.CharField(max_length=40, blank=True, default="manual")
    # Protected improvement capacity (docs/cadence.md): each member's working week, and the share of
    # it planned for improvement work.
    working_hours_per_week = models.DecimalField(
        max_digits=5, decimal_places=2, default=Decimal("37.5"), validators=[MinValueValidator(Decimal("0"))]
    )
    improvement_share = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=Decimal("10"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
        help_text="Percent of working time planned for improvement",
    )
    active_from = models.DateField(
        null=True, blank=True, help_text="The team's first working day (blank: before any figure)"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.CONTRIBUTOR)
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="members")

    class Meta:
        ordering = ["username"]

    def __str__(self) -> str:
        return self.get_full_name() or self.username

    def has_role(self, role: str) -> bool:
        """True when the user's role is `role` or above. Superusers count as admins."""
        if not self.is_active:
            return False
        if self.is_superuser:
            return True
        return ROLE_LEVEL.get(Role(self.role), -1) >= ROLE_LEVEL[Role(role)]


# Who performs an operation, as services take it (`actor=`): the request's user (an anonymous one
# is refused by the permission checks), or None for the system (CLI set-up, scheduled tasks).
Actor = User | AnonymousUser | None


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    def authenticate(self, raw: str):
        """The active user behind a raw token, or None."""
        if not raw or not raw.startswith(ApiToken.PREFIX):
            return None
        token: ApiToken | None = (
            self.filter(key_hash=ApiToken.hash(raw), revoked_at__isnull=True).select_related("user").first()
        )
        if token is None or not token.user.is_active:
            return None
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
        return token.user


class ApiToken(models.Model):
    """A bearer token for scripts. Only its SHA-256 is stored; the raw value is shown once."""

    PREFIX = "tkt_"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    key_hash = models.CharField(max_length=64, unique=True)
    key_hint = models.CharField(max_length=12, help_text="First characters, to recognise a token")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.key_hint}…)"

    @staticmethod
    def hash(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()

    @classmethod
    def issue(cls, user: User, name: str) -> tuple["ApiToken", str]:
        """Create a token; returns it and the raw value (the only time it is known)."""
        raw = cls.PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(user=user, name=name, key_hash=cls.hash(raw), key_hint=raw[:10])
        return token, raw
