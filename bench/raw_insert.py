"""Benchmark baseline: a plain `executemany` of 690,000 nine-column rows into a fresh SQLite file.

    .venv/bin/python bench/raw_insert.py                 # 690,000 rows, prints the seconds
    .venv/bin/python bench/raw_insert.py --rows 100000 --path /tmp/me/raw.sqlite3

This is the yardstick of the import benchmarks (issue 16): what the database and Python's sqlite3
module alone need to store as many rows as the BPI Challenge 2014 data set has (≈ 690,000 over
its four files), with nothing of tikting in the way: no Django, no parsing, no lookups, no
indexes but the rowid. bench/import_bpic2014.py runs it in the same run as each import and prints
the ratio (import seconds / raw seconds); the target is 10×.

What is timed: one `executemany` INSERT of the pre-built rows into a new table of a new SQLite
file (journal and synchronous at SQLite's defaults, as a fresh file opened by Python has them) and
the COMMIT. What is not: building the rows in memory, creating the file and table. The rows are
short, like an incident's plain columns: a key, three short texts, two timestamps as ISO text and
three small integers (≈ 80 bytes a row). The import writes more than that (every record keeps its
source row as JSON in `raw`, and its tables have indexes): the baseline is the lower bound, not a
like-for-like copy, which makes the ratio a demanding one.

Runs in its own process when called from another benchmark (`measure()`), so that the rows held
in memory here do not count in the caller's peak RSS.
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROWS = 690_000
COLUMNS = 9


def build_rows(n: int) -> list[tuple[object, ...]]:
    return [
        (
            f"IM{i:07d}",
            "bpic2014",
            "closed",
            f"category {i % 13}",
            f"2013-{1 + i % 12:02d}-{1 + i % 28:02d} {i % 24:02d}:17:17",
            f"2013-{1 + i % 12:02d}-{1 + i % 28:02d} {(i + 5) % 24:02d}:51:17",
            1 + i % 5,
            i % 7,
            i % 3,
        )
        for i in range(n)
    ]


def run(path: Path, n: int) -> float:
    """Seconds for the executemany and COMMIT of `n` rows into a fresh file at `path`."""
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = build_rows(n)
    conn = sqlite3.connect(path)
    try:
        conn.execute(
            "CREATE TABLE raw_rows (id INTEGER PRIMARY KEY, k TEXT, source TEXT, status TEXT, category TEXT,"
            " opened_at TEXT, closed_at TEXT, priority INTEGER, reassignments INTEGER, reopens INTEGER)"
        )
        conn.commit()
        marks = ", ".join("?" * COLUMNS)
        start = time.perf_counter()
        conn.executemany(
            "INSERT INTO raw_rows (k, source, status, category, opened_at, closed_at, priority,"  # noqa: S608
            f" reassignments, reopens) VALUES ({marks})",
            rows,
        )
        conn.commit()
        return time.perf_counter() - start
    finally:
        conn.close()
        for suffix in ("", "-journal", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


def measure(n: int = ROWS, folder: Path | None = None) -> float:
    """run() in a child process (its rows stay out of the caller's memory); the seconds."""
    with tempfile.TemporaryDirectory(prefix="tk_raw_", dir=folder) as tmp:
        out = subprocess.run(
            [sys.executable, __file__, "--rows", str(n), "--path", str(Path(tmp) / "raw.sqlite3"), "--quiet"],
            check=True,
            capture_output=True,
            text=True,
        )
    return float(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--path", help="SQLite file to create (removed after); default: a temporary one")
    parser.add_argument("--quiet", action="store_true", help="Print the seconds only.")
    args = parser.parse_args()
    if args.path:
        seconds = run(Path(args.path), args.rows)
    else:
        with tempfile.TemporaryDirectory(prefix="tk_raw_") as tmp:
            seconds = run(Path(tmp) / "raw.sqlite3", args.rows)
    if args.quiet:
        print(f"{seconds:.4f}")
    else:
        what = f"raw executemany of {args.rows:,} {COLUMNS}-column rows into a fresh SQLite file"
        print(f"{what}: {seconds:.2f} s")


if __name__ == "__main__":
    main()
