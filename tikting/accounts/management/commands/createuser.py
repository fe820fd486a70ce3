"""`tikting createuser USERNAME --role ROLE`: add a user with a role in the improvement practice.

tikting createuser mia --role manager --email mia@example.org          # prompts for a password
echo "$PASSWORD" | tikting createuser bot --role contributor --password-stdin
"""

from __future__ import annotations

import getpass
import sys
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser
from django.db import transaction

from tikting.accounts.models import Role, User
from tikting.core import audit
from tikting.core.commands import TiktingCommand


class Command(TiktingCommand):
    help = "Create a user with a role (viewer, contributor, owner, manager, admin)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--email", default="")
        parser.add_argument("--first-name", default="")
        parser.add_argument("--last-name", default="")
        secret = parser.add_mutually_exclusive_group()
        secret.add_argument(
            "--password", help="The password (visible in the process list: prefer the prompt)."
        )
        secret.add_argument("--password-stdin", action="store_true", help="Read the password from stdin.")
        secret.add_argument(
            "--no-password", action="store_true", help="No password: the user signs in some other way."
        )
        parser.add_argument(
            "--skip-password-validation", action="store_true", help="Accept a password the validators reject."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        username = options["username"].strip()
        if not username:
            raise CommandError("Give a username.")
        if User.objects.filter(username=username).exists():
            raise CommandError(f"User '{username}' already exists.")
        password = self._password(options)
        user = User(
            username=username,
            email=options["email"],
            first_name=options["first_name"],
            last_name=options["last_name"],
            role=options["role"],
            # Administrators use Django's admin site as well.
            is_staff=options["role"] == Role.ADMIN,
            is_superuser=options["role"] == Role.ADMIN,
        )
        try:
            user.full_clean(exclude=["password"])
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from exc
        if password is not None and not options["skip_password_validation"]:
            try:
                validate_password(password, user)
            except ValidationError as exc:
                raise CommandError(
                    "Password rejected: "
                    + " ".join(exc.messages)
                    + " (--skip-password-validation to keep it)"
                ) from exc
        with transaction.atomic():
            if password is None:
                user.set_unusable_password()
            else:
                user.set_password(password)
            user.save()
            audit.record(
                user,
                action="create",
                actor=None,
                changes={"username": [None, username], "role": [None, user.role]},
                message="Created from the command line",
            )
        self.stdout.write(
            self.style.SUCCESS(f"Created {user.username} ({user.get_role_display()})")
            + ("" if password is not None else " without a password")
        )

    def _password(self, options: dict[str, Any]) -> str | None:
        if options["no_password"]:
            return None
        if options["password"] is not None:
            return options["password"]
        if options["password_stdin"]:
            password = sys.stdin.readline().rstrip("\r\n")
            if not password:
                raise CommandError("No password on standard input.")
            return password
        if not sys.stdin.isatty():
            raise CommandError(
                "Give --password, --password-stdin or --no-password (no terminal to prompt on)."
            )
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Password (again): "):
            raise CommandError("The passwords differ.")
        if not first:
            raise CommandError("An empty password is not allowed (use --no-password).")
        return first
