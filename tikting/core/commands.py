"""The base of tikting's own management commands (`tikting metrics …`, `tikting import …` …).

Django runs every system check before a command, and the URL checks import the whole URLconf:
every view module, the API's routers and their ninja/pydantic schemas, PDF and calendar
libraries — about 0.7 s of CPU, two thirds of what `tikting metrics list` took. The commands here
need none of it, so they skip the checks, as Django's own data commands do (`shell`, `dumpdata`,
`loaddata`). The checks still run where they belong: `tikting check [--deploy]`, `migrate`,
`runserver` and the long-running `tikting worker` (which validates the schedule before it starts).

Commands keep their heavy imports (PDF rendering, parsers, the import pipeline) inside the code
path that needs them, so listing or asking for help starts in a fraction of a second
(bench/cli_startup.py measures it).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand


class TiktingCommand(BaseCommand):
    requires_system_checks: list[str] = []
