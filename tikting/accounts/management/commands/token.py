"""`tikting token USERNAME`: issue, list or revoke a user's API tokens.

tikting token mia --name "nightly export"      # prints the raw token, once
tikting token mia --list
tikting token mia --revoke 3
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandError, CommandParser

from tikting.accounts.models import User
from tikting.accounts.services import issue_token, revoke_token
from tikting.core.commands import TiktingCommand


class Command(TiktingCommand):
    help = "Issue (default), list or revoke a user's API tokens. A new token is shown once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="cli", help="What the token is for (default: cli).")
        what = parser.add_mutually_exclusive_group()
        what.add_argument("--list", action="store_true", help="List the user's tokens.")
        what.add_argument("--revoke", type=int, metavar="ID", help="Revoke the token with this id.")
        parser.add_argument("--format", choices=["text", "json"], default="text")

    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"No user '{options['username']}'.")
        if options["list"]:
            self.list(user, options["format"])
        elif options["revoke"] is not None:
            self.revoke(user, options["revoke"])
        else:
            self.issue(user, options["name"], options["format"])

    def issue(self, user: User, name: str, fmt: str) -> None:
        if not user.is_active:
            raise CommandError(f"{user.username} is not active.")
        token, raw = issue_token(user, actor=None, name=name.strip() or "cli")
        if fmt == "json":
            self.stdout.write(json.dumps({"id": token.pk, "name": token.name, "token": raw}))
            return
        self.stdout.write(raw)
        self.stderr.write(
            f"Token {token.pk} '{token.name}' for {user.username}. Keep it now: it is not shown again."
        )

    def list(self, user: User, fmt: str) -> None:
        tokens = list(user.api_tokens.order_by("id"))
        if fmt == "json":
            rows = [
                {
                    "id": t.pk,
                    "name": t.name,
                    "hint": t.key_hint,
                    "created_at": t.created_at.isoformat(),
                    "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None,
                    "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
                }
                for t in tokens
            ]
            self.stdout.write(json.dumps(rows, indent=2))
            return
        if not tokens:
            self.stdout.write(f"{user.username} has no tokens.")
            return
        for t in tokens:
            state = f"revoked {t.revoked_at:%Y-%m-%d}" if t.revoked_at else "active"
            used = f"last used {t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never used"
            self.stdout.write(
                f"{t.pk:>4}  {t.key_hint}…  {t.name}  created {t.created_at:%Y-%m-%d}, {used}, {state}"
            )

    def revoke(self, user: User, pk: int) -> None:
        token = user.api_tokens.filter(pk=pk).first()
        if token is None:
            raise CommandError(f"{user.username} has no token {pk}.")
        if token.revoked_at:
            self.stdout.write(f"Token {pk} was already revoked on {token.revoked_at:%Y-%m-%d}.")
            return
        revoke_token(token, actor=None)
        self.stdout.write(self.style.SUCCESS(f"Revoked token {pk} '{token.name}' of {user.username}."))
