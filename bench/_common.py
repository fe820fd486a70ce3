"""Shared plumbing of the benchmarks: one fresh database per run, each in its own process.

Settings are read when Django starts, so each database is measured in a child process started
with DATABASE_URL set (the script re-invokes itself with --child).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/{name}"


def targets(args: argparse.Namespace, pg_name: str) -> list[tuple[str, str]]:
    """(label, DATABASE_URL) pairs: --database-url as given, else a temporary SQLite file and PostgreSQL."""
    if args.database_url:
        return [(url.split(":", 1)[0], url) for url in args.database_url]
    sqlite_path = Path(tempfile.mkdtemp(prefix="tk_bench_")) / "bench.sqlite3"
    return [("sqlite", f"sqlite:///{sqlite_path}"), ("postgresql", DEFAULT_PG.format(name=pg_name))]


def fresh_database(url: str) -> None:
    """An empty database at `url`: the SQLite file removed, the PostgreSQL database dropped and created."""
    parts = urlsplit(url)
    if parts.scheme.startswith("sqlite"):
        path = Path(parts.path[1:] if parts.path.startswith("//") else parts.path)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        return
    import psycopg
    from psycopg import sql

    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def run_child(script: str, url: str, extra: list[str]) -> int:
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "tikting.settings"}
    env.setdefault("TIKTING_LOG_LEVEL", "WARNING")
    return subprocess.call([sys.executable, script, "--child", *extra], env=env, cwd=ROOT)


def setup_django(migrate: bool = True) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tikting.settings")
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)


def run_each_database(args: argparse.Namespace, pg_name: str, script: str, extra: list[str]) -> None:
    """Prepare each target database afresh and run the script's child in it; exit 1 if any failed.

    A database that cannot be prepared (PostgreSQL not running) is reported and skipped."""
    failures = 0
    for label, url in targets(args, pg_name):
        try:
            fresh_database(url)
        except Exception as exc:  # noqa: BLE001 - report and go on with the next database
            print(f"{label}: cannot prepare {url}: {exc}")
            failures += 1
            continue
        failures += run_child(script, url, extra) != 0
    sys.exit(1 if failures else 0)


def bpic_database(data: Path, keep: Path | None = None) -> tuple[str, bool]:
    """(DATABASE_URL, whether it needs the import) for the BPIC 2014 benchmarks: TIKTING_BPIC_DB
    (a SQLite path or a DATABASE_URL) when set, a database that already holds the import; else a
    fresh SQLite file (`keep`, or a temporary one) to import `data` into. Exits when neither is
    possible."""
    given = os.environ.get("TIKTING_BPIC_DB")
    if given:
        return (given if "://" in given else f"sqlite:///{Path(given).resolve()}"), False
    if not data.is_dir():
        sys.exit(f"no data at {data} (or set TIKTING_BPIC_DB to a database holding the import)")
    path = keep or Path(tempfile.mkdtemp(prefix="tk_bench_")) / "bpic.sqlite3"
    url = f"sqlite:///{path.resolve()}"
    fresh_database(url)
    return url, True


def vacuum_analyze(table: str) -> None:
    """PostgreSQL: VACUUM ANALYZE `table` after seeding (outside a transaction, as VACUUM must be), so
    that the planner knows the rows and index-only scans can be used."""
    from django.db import connection

    connection.ensure_connection()
    autocommit = connection.connection.autocommit
    connection.connection.autocommit = True  # VACUUM cannot run inside a transaction
    try:
        with connection.cursor() as cur:
            cur.execute(f"VACUUM ANALYZE {connection.ops.quote_name(table)}")
    finally:
        connection.connection.autocommit = autocommit
