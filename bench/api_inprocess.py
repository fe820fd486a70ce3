"""Benchmark: CPU time per incident API request, in-process (no HTTP server, no client).

    .venv/bin/python bench/api_inprocess.py                           # SQLite file, then PostgreSQL
    .venv/bin/python bench/api_inprocess.py --database-url sqlite:////tmp/me/api.sqlite3
    .venv/bin/python bench/api_inprocess.py --code /tmp/old-checkout  # another checkout's tikting/

The steadier companion of bench/rt_vs_tikting.py: Django's WSGIHandler is called directly with a
bearer token (the middleware, ninja, authentication, the view and the JSON answer all run; the
HTTP server and the client do not), DEBUG off, over a fresh database migrated from scratch, with 400
incidents created through the API (every second one in progress, priorities 1–4, one in 20
holding "kerberos"). The requests are rt_vs_tikting.py's:

- page: `GET /api/records/incident?status=in_progress&priority=3&limit=50&fields=…` (3 fields);
- text: the same with `q=kerberos` (20 matches: no count query);
- read: `GET /api/records/incident/{id}`;
- update: `PATCH /api/records/incident/{id}` with status, priority and the `expected_version`
  kept from the previous answer.

Prints, per request, the CPU and wall milliseconds per request: the minimum over `--runs` runs
of `--n` requests, after 30 uncounted ones. CPU is this process's (on PostgreSQL the server's
work is in the wall time only). To compare two versions of the code, run it twice, the other
time with `--code DIR` (a checkout, e.g. `git worktree add /tmp/base <ref>`): its tikting/ is
imported instead of this one's. Interleave such runs (A B A B) and compare within pairs.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

SEED = 400
FIELDS = "short_description,status,priority"
CLOSE = os.environ.get("NOCLOSE") is None


def child(args: argparse.Namespace) -> None:
    code = Path(args.code).resolve() if args.code else _common.ROOT
    sys.path.insert(0, str(code))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tikting.settings")
    # As production runs (docs/deployment.md): DEBUG off (no query log), a secret key of its own,
    # the database migrated by another process (a process that ran the migrations keeps their
    # objects, and every garbage collection after pays for them: about 15 % of a request).
    os.environ["TIKTING_DEBUG"] = "false"
    os.environ.setdefault("TIKTING_SECRET_KEY", secrets.token_urlsafe(50))
    migrate = [sys.executable, str(code / "manage.py"), "migrate", "--verbosity", "0"]
    subprocess.run(migrate, check=True, cwd=code)  # noqa: S603 - our own command
    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIHandler

    import tikting
    from tikting.accounts.models import ApiToken, Role, User

    user = User.objects.create_user("bench", email="bench@example.org", role=Role.ADMIN)
    _token, raw = ApiToken.issue(user, "bench")
    app = WSGIHandler()

    def call(method: str, path: str, body: Any = None) -> Any:
        path, _, query = path.partition("?")
        data = json.dumps(body).encode() if body is not None else b""
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "HTTP_HOST": "127.0.0.1:8000",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_AUTHORIZATION": f"Bearer {raw}",
            "HTTP_ACCEPT": "application/json",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(data)),
            "wsgi.input": io.BytesIO(data),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
        }
        status: list[str] = []
        response = app(environ, lambda s, _headers, _exc=None: status.append(s))
        answer = b"".join(response)
        if CLOSE:  # as a WSGI server does: Django's request_finished (connections checked, …)
            response.close()
        if not status[0].startswith("20"):
            raise SystemExit(f"{method} {path}: {status[0]} {answer[:300]!r}")
        return json.loads(answer) if answer else None

    for i in range(SEED):
        call(
            "POST",
            "/api/records/incident",
            {
                "number": f"B{i:07d}",
                "short_description": f"Printer {i} jams" + (" kerberos" if i % 20 == 0 else ""),
                "description": "text " * 20,
                "status": ("new", "in_progress")[i % 2],
                "priority": 1 + (i // 2) % 4,
                "opened_at": "2026-12-01T09:00:00Z",
            },
        )
    ids = [row["id"] for row in call("GET", "/api/records/incident?limit=50&fields=number")["items"]]
    versions: dict[int, int] = {}

    def update(k: int) -> None:
        record = ids[k % len(ids)]
        version = versions.get(record)
        if version is None:
            version = call("GET", f"/api/records/incident/{record}")["version"]
        body = {
            "status": ("in_progress", "on_hold")[k % 2],
            "priority": 1 + k % 4,
            "expected_version": version,
        }
        versions[record] = call("PATCH", f"/api/records/incident/{record}", body)["version"]

    requests = {
        "page": lambda k: call(
            "GET", f"/api/records/incident?status=in_progress&priority=3&limit=50&fields={FIELDS}"
        ),
        "text": lambda k: call("GET", f"/api/records/incident?q=kerberos&limit=50&fields={FIELDS}"),
        "read": lambda k: call("GET", f"/api/records/incident/{ids[k % len(ids)]}"),
        "update": update,
    }
    from django.db import connection

    print(f"{connection.vendor}: tikting from {Path(tikting.__file__).parent}, {SEED} incidents", flush=True)
    if args.show_queries:
        from django.db import connection as shown

        def show(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
            print(f"    {sql[:160]}", flush=True)
            return execute(sql, params, many, context)

        for name, request in requests.items():
            request(0)
            print(f"{name}:", flush=True)
            with shown.execute_wrapper(show):
                request(1)
        return
    if args.profile:
        import cProfile
        import pstats

        request = requests[args.profile]
        for k in range(30):
            request(k)
        profiler = cProfile.Profile(time.process_time) if args.cpu else cProfile.Profile()
        profiler.runcall(lambda: [request(k) for k in range(args.n)])
        stats = pstats.Stats(profiler).strip_dirs().sort_stats(args.sort)
        stats.print_stats(args.top)
        if args.callees:
            stats.print_callees(args.callees)
        return
    for name, request in requests.items():
        for k in range(30):
            request(k)
        cpu = wall = float("inf")
        for _run in range(args.runs):
            started, clock = time.process_time(), time.perf_counter()
            for k in range(args.n):
                request(k)
            cpu = min(cpu, (time.process_time() - started) / args.n * 1000)
            wall = min(wall, (time.perf_counter() - clock) / args.n * 1000)
        print(f"{connection.vendor}: {name:<7} {cpu:.3f} ms CPU, {wall:.3f} ms wall per request", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", action="append", help="Database to measure (repeatable).")
    parser.add_argument("--n", type=int, default=1000, help="Requests per run (default 1000).")
    parser.add_argument(
        "--runs", type=int, default=5, help="Runs per request; the minimum is kept (default 5)."
    )
    parser.add_argument("--code", help="A checkout whose tikting/ is measured instead of this one's.")
    parser.add_argument(
        "--profile",
        choices=("page", "text", "read", "update"),
        help="Instead of timing: cProfile --n requests of this kind and print the top functions.",
    )
    parser.add_argument("--cpu", action="store_true", help="--profile counts CPU time, not wall time.")
    parser.add_argument("--sort", default="cumulative", help="pstats sort key for --profile.")
    parser.add_argument("--top", type=int, default=60, help="Rows printed by --profile.")
    parser.add_argument("--callees", help="With --profile: also the callees of functions matching this.")
    parser.add_argument("--show-queries", action="store_true", help="Print each request's SQL, once.")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    extra = ["--n", str(args.n), "--runs", str(args.runs), *(["--code", args.code] if args.code else [])]
    if args.show_queries:
        extra.append("--show-queries")
    if args.profile:
        extra += ["--profile", args.profile, "--sort", args.sort, "--top", str(args.top)]
        extra += ["--callees", args.callees] if args.callees else []
        extra += ["--cpu"] if args.cpu else []
    _common.run_each_database(args, "tk_bench_api", __file__, extra)


if __name__ == "__main__":
    main()
