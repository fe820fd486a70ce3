"""A database created before the layers move (tests/fixtures/pre-layers.sqlite3.gz, README there)
migrates with `tikting migrate` and keeps every row, and today's code reads it.

The fixture was made by the code at commit 8763206 (before the record registry, the demo and the
import/export commands left `core`): `tikting migrate`, then `tikting demo --history-months 1`.
"""

from __future__ import annotations

import gzip
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "pre-layers.sqlite3.gz"
TABLES = [
    "improvement_item",
    "improvement_indicator",
    "improvement_measurement",
    "improvement_action",
    "improvement_sourcelink",
    "governance_reviewmeeting",
    "incidents_incident",
    "changes_change",
    "core_auditentry",
    "core_statuschange",
    "accounts_user",
]


def _counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        return {table: db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] for table in TABLES}  # noqa: S608


def _tikting(path: Path, tmp_path: Path, *args: str) -> str:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{path}",
        "DJANGO_SETTINGS_MODULE": "tikting.settings",
        "TIKTING_VAR_DIR": str(tmp_path / "var"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "tikting.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_database_from_before_the_move_migrates_and_keeps_its_rows(tmp_path):
    db = tmp_path / "old.sqlite3"
    with gzip.open(FIXTURE) as source, db.open("wb") as target:
        shutil.copyfileobj(source, target)
    before = _counts(db)
    assert before["improvement_item"] > 0 and before["incidents_incident"] > 0

    _tikting(db, tmp_path, "migrate", "--noinput")
    plan = _tikting(db, tmp_path, "showmigrations", "--plan")
    assert "[ ]" not in plan, plan

    assert _counts(db) == before
    out = _tikting(
        db,
        tmp_path,
        "shell",
        "-c",
        "from tikting.improvement.models import Item; from tikting.records.registry import KINDS; "
        "from tikting.demo.history import has_history; "
        "print(Item.objects.count(), KINDS['incident'].model.objects.count(), has_history())",
    )
    items, incidents, history = out.strip().splitlines()[-1].split()
    assert int(items) == before["improvement_item"]
    assert int(incidents) == before["incidents_incident"]
    assert history == "True"


@pytest.mark.skipif(not FIXTURE.exists(), reason="fixture missing")
def test_fixture_is_small():
    assert FIXTURE.stat().st_size < 1_000_000
