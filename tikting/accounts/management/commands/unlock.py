"""`tikting unlock`: let a locked-out user (or address) sign in again at once.

tikting unlock mia                 # forget mia's failed sign-ins
tikting unlock --ip 203.0.113.7    # forget the failed sign-ins (passwords, API tokens) from an address
tikting unlock --list              # failed sign-ins on record
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from tikting.accounts import throttle
from tikting.core.commands import TiktingCommand


class Command(TiktingCommand):
    help = "Unlock sign-in for a username and/or an address (--ip), or --list the failed sign-ins."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", nargs="?", help="The username to unlock.")
        parser.add_argument("--ip", metavar="ADDRESS", help="An address to unlock.")
        parser.add_argument("--list", action="store_true", help="List the failed sign-ins on record.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["list"]:
            rows = throttle.attempts()
            for username, address, failures, at in rows:
                who = username if username is not None else "(API token)"
                self.stdout.write(f"{who}\t{address}\t{failures} failure(s)\tlast {at:%Y-%m-%d %H:%M} UTC")
            if not rows:
                self.stdout.write("No failed sign-ins on record.")
            return
        username, address = options["username"], options["ip"]
        if not username and not address:
            raise CommandError("Name a username, an --ip address, or use --list.")
        count = throttle.unlock(username=username, ip_address=address)
        who = " and ".join(part for part in (username, address) if part)
        self.stdout.write(f"Unlocked {who}: {count} record(s) of failed sign-ins removed.")
