"""The `tikting` command: thin, hands over to Django's management commands.

`tikting register export ...` runs the `register` command, `tikting demo` the `demo` command, and
every Django command (migrate, runserver, check, db_worker ...) works as it does with manage.py.
"""

import os
import sys


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tikting.settings")
    from django.core.management import execute_from_command_line

    args = list(sys.argv if argv is None else argv)
    args[0] = "tikting"
    execute_from_command_line(args)


if __name__ == "__main__":
    main()
