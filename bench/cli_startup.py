"""Benchmark: how long the `tikting` command takes to start, whole process, as a user waits for it.

    .venv/bin/python bench/cli_startup.py                    # 10 runs of each command
    .venv/bin/python bench/cli_startup.py --runs 20 --vs-ref HEAD~3   # and the code of a git ref

Runs each command as its own process (`python -m tikting.cli …`, what the `tikting` script runs),
interleaved with `python -c pass` (the interpreter alone) so that a loaded machine moves both
alike, and prints per command the median wall and CPU seconds (user + system of the child), the
ratio to `python -c pass`, and — with --vs-ref — the same command from that git ref's code (a
`git archive` of tikting/ in a temporary directory, run with the same interpreter), interleaved
too. Then it checks which heavy modules a start-up imported (`-X importtime`): none of the URLconf,
the API (ninja, pydantic), PDF, calendar or discovery parsers should load for `metrics list`.

Target: `tikting metrics list` under **0.5 s** wall on an idle machine (it took about 1.5 s, 1.1 s of
it importing the URLconf for Django's system checks, ninja and pydantic as an app, and the
computation modules). On a loaded machine read the CPU seconds and the ratios.
The commands read no database (an empty SQLite file in a temporary directory is configured).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = [
    ["metrics", "list"],
    ["metrics", "--help"],
    ["import", "--help"],
    ["discover", "--help"],
    ["register", "--help"],
    ["help"],
]
# Modules a command that needs none of them must not import.
HEAVY = (
    "tikting.urls",
    "tikting.api",
    "ninja",
    "pydantic",
    "weasyprint",
    "icalendar",
    "jsonschema_rs",
    "defusedxml",
    "tikting.metrics.engine",
    "tikting.discovery.sources",
)
TARGET = 0.5


def run(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, cpu) seconds of one process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=env.get("_CWD", ROOT), capture_output=True, text=True)
    wall = time.perf_counter() - t
    if done.returncode:
        sys.exit(f"{' '.join(argv)} failed:\n{done.stderr[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def old_tree(ref: str, into: Path) -> Path:
    """tikting/ as it was at `ref`, unpacked under `into` (run with PYTHONPATH=into)."""
    archive = subprocess.run(["git", "archive", ref, "tikting"], cwd=ROOT, check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def imported(argv: list[str], env: dict[str, str]) -> tuple[int, list[str]]:
    """How many modules a start-up imports, and which of HEAVY."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *argv[1:]], env=env, cwd=ROOT, capture_output=True, text=True
    )
    names = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line][1:]
    heavy = sorted({h for h in HEAVY for n in names if n == h or n.startswith(h + ".")})
    return len(names), heavy


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument(
        "--vs-ref", metavar="GITREF", help="Also time the code of this git ref (e.g. HEAD~3)."
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tk_cli_"))
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp / 'cli.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "tikting.settings",
        "TIKTING_VAR_DIR": str(tmp / "var"),
    }
    env.pop("PYTHONPATH", None)
    old_env = None
    if args.vs_ref:
        (tmp / "old").mkdir()
        old_env = {**env, "PYTHONPATH": str(old_tree(args.vs_ref, tmp / "old")), "_CWD": str(tmp / "old")}
    bare = [sys.executable, "-c", "pass"]
    print(f"{args.runs} runs each, interleaved with `python -c pass`; medians")
    head = f"{'command':<22} {'wall s':>7} {'cpu s':>7} {'× bare':>7}"
    print(head + (f" {'old wall':>9} {'old cpu':>8} {'new/old wall':>13}" if old_env else ""))
    verdict: tuple[float, float] | None = None
    for command in COMMANDS:
        argv = [sys.executable, "-m", "tikting.cli", *command]
        run(argv, env)  # warm-up: byte-code compiled, files in the page cache
        walls, cpus, ratios, olds, old_cpus, versus = [], [], [], [], [], []
        for _ in range(args.runs):
            wall, cpu = run(argv, env)
            base, _ = run(bare, env)
            walls.append(wall)
            cpus.append(cpu)
            ratios.append(wall / base)
            if old_env:
                old, old_cpu = run(argv, old_env)
                olds.append(old)
                old_cpus.append(old_cpu)
                versus.append(wall / old)
        line = f"{' '.join(command):<22} {statistics.median(walls):7.3f} {statistics.median(cpus):7.3f}"
        line += f" {statistics.median(ratios):7.1f}"
        if old_env:
            line += f" {statistics.median(olds):9.3f} {statistics.median(old_cpus):8.3f}"
            line += f" {statistics.median(versus):13.2f}"
        print(line)
        if command == ["metrics", "list"]:
            verdict = (statistics.median(walls), statistics.median(cpus))
    count, heavy = imported([sys.executable, "-m", "tikting.cli", "metrics", "list"], env)
    print(f"`metrics list` imports {count} modules; heavy ones among them: {', '.join(heavy) or 'none'}")
    assert verdict is not None
    print(
        f"tikting metrics list: {verdict[0]:.3f} s wall, {verdict[1]:.3f} s CPU "
        f"(target < {TARGET} s wall on an idle machine, where wall is about the CPU time)"
    )


if __name__ == "__main__":
    main()
