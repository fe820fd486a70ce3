"""Quality of the recurring-incident detector on the ServiceNow event log: recall of the known problems.

    .venv/bin/python bench/signals_recurring_quality.py        # imports into a temporary SQLite file
    TIKTING_SERVICENOW_DB=/tmp/sn.sqlite3 .venv/bin/python bench/signals_recurring_quality.py
    TIKTING_SERVICENOW_DB=postgres://postgres@127.0.0.1:5432/sn \
        .venv/bin/python bench/signals_recurring_quality.py

`TIKTING_SERVICENOW_DB` is a database (a SQLite path or a DATABASE_URL) that already holds
`tikting import servicenow` of the log and nothing else; it is only read. Without it,
../shared/data/uci_incident_event_log/incident_event_log.zip (`--data FILE`) is imported into a
temporary SQLite file first (about 10 s).

The truth: the 35 problems with two or more linked incidents (`problem_id`). The detector's groups
(every group, whether it would propose a problem, an improvement or nothing because a problem has
it in hand) and the naive baseline's (same category, subcategory, symptom and CI within 30 days)
are scored the same way: problems recovered (two or more of their incidents in one group at most
3 times the problem's size), pair recall (in such groups, and in groups of any size), the mean
share of a problem's incidents found together, coverage (incidents in any group), the groups an
improvement manager would read, and two precision floors (pairs of linked incidents in one group
that share the problem; pairs of grouped incidents known to belong together). Precision against
links this sparse (1.5 % of the incidents have one) is a floor, not a verdict. `--sweep` also
scores the detector with one threshold changed at a time.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

DEFAULT_DATA = _common.ROOT.parent / "shared" / "data" / "uci_incident_event_log" / "incident_event_log.zip"


def database_url(value: str) -> str:
    return value if "://" in value else f"sqlite:///{Path(value).resolve()}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--sweep", action="store_true", help="Also change one threshold at a time.")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--import", dest="do_import", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.child:
        given = os.environ.get("TIKTING_SERVICENOW_DB")
        if given:
            url = database_url(given)
        else:
            if not args.data.is_file():
                sys.exit(f"no data at {args.data}")
            url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='tk_bench_')) / 'servicenow.sqlite3'}"
        extra = (
            ["--data", str(args.data)]
            + (["--import"] if not given else [])
            + (["--sweep"] if args.sweep else [])
        )
        sys.exit(_common.run_child(__file__, url, extra))
    _common.setup_django(migrate=args.do_import)
    from tikting.signals.detectors import _recurring_quality as Q

    if args.do_import:
        print(f"imported the event log in {Q.import_servicenow(args.data):.1f} s", flush=True)
    result = Q.compare(sweep=args.sweep)
    d = result.detector
    window, proposes = result.window, result.proposes
    print(
        f"window {window.start:%Y-%m-%d} to {window.end:%Y-%m-%d}: {result.incidents:,} incidents, "
        f"{d.problems} known problems with 2+ incidents ({d.pairs} pairs); "
        f"find_groups() {result.seconds:.1f} s"
    )
    print(
        f"detector groups: {proposes['problem']} propose a problem, {proposes['improvement']} an "
        f"improvement, {proposes['']} nothing (a linked problem has them in hand)"
    )
    header = (
        f"{'':44} {'groups':>6} {'largest':>7} {'coverage':>8}  {'recovered':>9} {'pair rec.':>9} "
        f"{'any size':>8} {'mean share':>10}  {'linked prec.':>14} {'known-pair floor':>16}"
    )
    print(header)
    for s in (result.baseline, result.detector):
        print(row(s.label, s))
    for change, s in result.sweep:
        print(row("  with " + ", ".join(f"{k}={v:g}" for k, v in change.items()), s))


def row(label: str, s: Any) -> str:  # s: a _recurring_quality.Score
    return (
        f"{label:44} {s.groups:6} {s.largest:7} {s.coverage:8.1%}  {s.recovered:4}/{s.problems:<4} "
        f"{s.pair_recall:9.3f} {s.pair_recall_any_size:8.3f} {s.mean_share:10.3f}  "
        f"{s.linked_pairs_same:5}/{s.linked_pairs:<5} {s.linked_precision:6.1%} {s.known_pair_floor:16.5f}"
    )


if __name__ == "__main__":
    main()
