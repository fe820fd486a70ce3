"""Quality of the change detector on BPI Challenge 2014: recall and precision against the causal links.

    .venv/bin/python bench/signals_changes_quality.py         # imports into a temporary SQLite file
    TIKTING_BPIC_DB=/tmp/bpic.sqlite3 .venv/bin/python bench/signals_changes_quality.py
    TIKTING_BPIC_DB=postgres://postgres@127.0.0.1:5432/bpic .venv/bin/python bench/signals_changes_quality.py

`TIKTING_BPIC_DB` is a database (a SQLite path or a DATABASE_URL) that already holds
`tikting import bpic2014`; it is only read. Without it, the changes and incidents of
../shared/data/bpic2014 (`--data DIR`) are imported into a temporary SQLite file first (the
interactions and the activity log are not needed and are left out: about 15 s).

The truth: the `Related Change` links where the incident opened after the change ended (the rest
point at the change raised to fix the incident). The detector runs with `use_recorded_links = 0`:
the recorded links are the answer key, so it must find the incidents from CIs, services and time
alone. The baseline: a change followed by an incident on its CI within 48 h. Printed per row:
links (change, incident) proposed and the causal ones among them, recall and precision; the same
per change; and the number of candidates an improvement manager would read. Precision against
sparse links is a floor: an incident that followed a change but was never linked to it counts
against the detector.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

DEFAULT_DATA = _common.ROOT.parent / "shared" / "data" / "bpic2014"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--import", dest="do_import", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.child:
        url, needs_import = _common.bpic_database(args.data)
        sys.exit(
            _common.run_child(
                __file__, url, ["--data", str(args.data)] + (["--import"] if needs_import else [])
            )
        )
    _common.setup_django(migrate=args.do_import)
    from tikting.signals.detectors import _quality

    if args.do_import:
        seconds = _quality.import_changes_and_incidents(args.data)
        print(f"imported the changes and incidents in {seconds:.1f} s", flush=True)
    result = _quality.compare()
    window, truth = result.window, result.truth
    print(
        f"window {window.start:%Y-%m-%d} to {window.end:%Y-%m-%d}; truth: {len(truth)} causal links "
        f"over {len({c for c, _ in truth})} changes; detect() {result.seconds:.1f} s, "
        f"{result.proposal_count} proposals of every kind"
    )
    print(
        f"{'':44} {'links':>7} {'found':>6} {'recall':>7} {'precision':>9}   "
        f"{'changes':>7} {'found':>5} {'recall':>7} {'precision':>9}   {'candidates':>10}"
    )
    for s in (result.baseline, result.proposals, result.inferred):
        print(
            f"{s.label:44} {s.links:7} {s.links_found:6} {s.link_recall:7.3f} {s.link_precision:9.4f}   "
            f"{s.changes:7} {s.changes_found:5} {s.change_recall:7.3f} {s.change_precision:9.4f}   "
            f"{s.candidates:10}"
        )


if __name__ == "__main__":
    main()
