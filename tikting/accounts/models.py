"""Users, their role in the improvement practice, teams and API tokens."""

import datetime as dt
import functools
import hashlib
import hmac
import secrets
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractUser, AnonymousUser
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import DEFAULT_DB_ALIAS, connection, connections, models
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


# A token's last use is written at most this often (seconds): a read does not become a write.
LAST_USED_GRANULARITY = 60


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    def authenticate(self, raw: str) -> "User | None":
        """The active user behind a raw token, or None.

        Every API request passes here, so it is one indexed query (the token's SHA-256 against the
        unique `key_hash`, joined to its user) written as SQL once per process, and the token's
        `last_used_at` is written only when it is more than LAST_USED_GRANULARITY seconds old. No
        key derivation: a token carries 256 random bits, so a plain SHA-256 is safe to store and
        look up (a slow hash protects guessable passwords, not random keys).
        """
        return self.authenticate_counting(raw, None)[0]

    def authenticate_counting(
        self,
        raw: str,
        failures_of: "tuple[str | None, dt.datetime | None] | None",
        check: "Callable[[int | None], None] | None" = None,
    ) -> "tuple[User | None, int | None]":
        """authenticate(), and in the same query the failed sign-ins of an address since a time
        (`failures_of` = (address, since or None); django-axes's count, as accounts.throttle sums
        it): one round trip to the database for both on every API request. The count is None when
        no active token matched (or none was asked for). `check(count)` runs when a token matched,
        before its last use is written, and may raise (a lockout)."""
        if not raw or not raw.startswith(ApiToken.PREFIX) or len(raw) > ApiToken.MAX_LENGTH:
            return None, None
        digest = ApiToken.hash(raw)
        counting = failures_of is not None
        since = failures_of[1] if failures_of is not None else None
        sql, user_fields = _token_query(counting, since is not None)
        params: list[Any] = []
        if failures_of is not None:
            params.append(failures_of[0])
            if since is not None:
                params.append(since)
        params.append(digest)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        failures = None
        if row is not None and counting:
            failures, row = int(row[0]), row[1:]
        if row is None or not hmac.compare_digest(row[0], digest):
            return None, None
        if check is not None:
            check(failures)
        token_id, last_used = row[1], row[2]
        user = User.from_db(self.db, user_fields, _user_values(row[3:]))
        now = timezone.now()
        last_used = _converted(ApiToken, "last_used_at", last_used)
        if last_used is None or (now - last_used).total_seconds() >= LAST_USED_GRANULARITY:
            ApiToken.objects.filter(pk=token_id).update(last_used_at=now)
        return user, failures


@functools.cache
def _token_query(counting: bool = False, since: bool = False) -> tuple[str, list[str]]:
    """SELECT key_hash, token id, last_used_at, the user's columns … for one key hash (built once);
    with `counting`, first the address's failed sign-ins (since a time, with `since`)."""
    qn = connection.ops.quote_name
    token, user = ApiToken._meta, User._meta
    fields = [f.attname for f in user.concrete_fields]
    columns = ", ".join(f"u.{qn(str(f.column))}" for f in user.concrete_fields)
    failures = ""
    if counting:
        # django-axes's table: the address (and the time) are parameters
        failures = (
            "(SELECT COALESCE(SUM(failures_since_start), 0) FROM axes_accessattempt "  # noqa: S608
            "WHERE ip_address = %s" + (" AND attempt_time >= %s" if since else "") + "), "
        )
    # Table and column names from the models; the key hash is a parameter.
    sql = (
        f"SELECT {failures}t.{qn('key_hash')}, t.{qn('id')}, t.{qn('last_used_at')}, {columns} "  # noqa: S608
        f"FROM {qn(token.db_table)} t JOIN {qn(user.db_table)} u ON u.{qn('id')} = t.{qn('user_id')} "
        f"WHERE t.{qn('key_hash')} = %s AND t.{qn('revoked_at')} IS NULL AND u.{qn('is_active')}"
    )
    return sql, fields


def _converters(model: type[models.Model], names: tuple[str, ...]) -> list[tuple[int, list[Any], Any]]:
    """(position, converters, column) of the columns `names` of `model` that the database's
    converters change (SQLite returns datetimes as text and booleans as integers; PostgreSQL
    none), worked out once per database connection: a token check is on every API request."""
    cache = connections[DEFAULT_DB_ALIAS].__dict__.setdefault("_tikting_converters", {})
    key = (model, names)
    if key not in cache:
        found = []
        for position, name in enumerate(names):
            field = model._meta.get_field(name)
            assert isinstance(field, models.Field)  # a column of the table, not a reverse relation
            column = field.get_col(model._meta.db_table)
            converters = connection.ops.get_db_converters(column) + field.get_db_converters(connection)
            if converters:
                found.append((position, converters, column))
        cache[key] = found
    return cache[key]


def _converted_row(model: type[models.Model], names: tuple[str, ...], values: Any) -> list[Any]:
    """Column values as the ORM would give them (the database's and the fields' converters)."""
    result = list(values)
    for position, converters, column in _converters(model, names):
        value = result[position]
        for converter in converters:
            value = converter(value, column, connection)
        result[position] = value
    return result


def _converted(model: type[models.Model], name: str, value: Any) -> Any:
    """One column's value as the ORM would give it."""
    return _converted_row(model, (name,), (value,))[0]


def _user_values(values: tuple[Any, ...]) -> list[Any]:
    return _converted_row(User, tuple(f.name for f in User._meta.concrete_fields), values)


class ApiToken(models.Model):
    """A bearer token for scripts. Only its SHA-256 is stored; the raw value is shown once."""

    PREFIX = "tkt_"
    MAX_LENGTH = 200  # longer than any token issued (tkt_ + 43 characters): not worth hashing

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
