"""Benchmark: importing 1,000 GLPI / FusionInventory inventories, with their software lists.

    .venv/bin/python bench/discovery_glpi_1000.py                        # SQLite file and PostgreSQL
    .venv/bin/python bench/discovery_glpi_1000.py --inventories 200
    .venv/bin/python bench/discovery_glpi_1000.py --database-url sqlite:////tmp/g.sqlite3

The inventories of one shape's format are one run (runs.import_files groups files by source and
format: two runs here, fusioninventory JSON and XML). The inventories are generated from the
shape of the real samples (../shared/data/discovery/glpi-inventory, else tests/fixtures/discovery):
in turn a JSON laptop (computer_1: 6 software), a
JSON workstation (computer_3: 3,033 software, 7 interfaces), an XML laptop (xml__12: Windows, 8
software) and an XML workstation (xml__1: 42 software), each made a machine of its own (device id,
host name, FQDN, BIOS serial number, system UUID, MAC addresses, IPv4 addresses, log date) with its
software list kept as the sample has it. They are written as files, then imported through the CLI
path, one `tikting discover import FILE...` (call_command) over all of them: per file, the format
detected from the content, the parse (JSON checked against the published schema), one reconciled
run under the source's lock.

Each database is made afresh and migrated (PostgreSQL: `tk_bench_glpi`, dropped and created again)
and starts with an empty CMDB, so the first import creates one unregistered CI per inventory. The
same files are then imported again (every device confirmed, nothing changed). Printed: wall and
CPU seconds of each import, per inventory, the software entries and bytes read, runs, CIs, peak RSS.

Target (docs/discovery.md, "Figures"): 1,000 inventories in under 60 s.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

SHARED = _common.ROOT.parent / "shared" / "data" / "discovery" / "glpi-inventory"
FIXTURES = _common.ROOT / "tests" / "fixtures" / "discovery"
SHAPES = ["json__computer_1.json", "json__computer_3.json", "xml__12.xml", "xml__1.xml"]


def sample(name: str) -> str | None:
    for folder in (SHARED, FIXTURES):
        if (folder / name).exists():
            return (folder / name).read_text(encoding="utf-8")
    return None


def mac(i: int, n: int) -> str:
    return f"00:1c:{(i >> 16) & 0xFF:02x}:{(i >> 8) & 0xFF:02x}:{i & 0xFF:02x}:{n:02x}"


def json_inventory(template: dict[str, Any], i: int) -> str:
    doc = json.loads(json.dumps(template))
    content = doc["content"]
    doc["deviceid"] = f"pc-{i:05d}-2026-12-01-08-00-00"
    content.setdefault("hardware", {}).update(name=f"pc-{i:05d}", uuid=f"{i:08x}-1d3a-e411-8043-b05d95113232")
    content.setdefault("bios", {})["ssn"] = f"BENCH{i:07d}"
    if "operatingsystem" in content:
        content["operatingsystem"]["fqdn"] = f"pc-{i:05d}.corp.example"
    for n, net in enumerate(content.get("networks", [])):
        if net.get("mac") and net["mac"] != "00:00:00:00:00:00":
            net["mac"] = mac(i, n)
        if net.get("ipaddress") and not net["ipaddress"].startswith("127."):
            net["ipaddress"] = f"10.{(i >> 8) & 0xFF}.{i & 0xFF}.{n + 10}"
    content["accesslog"] = {"logdate": f"2026-12-01 08:{(i // 60) % 60:02d}:{i % 60:02d}"}
    return json.dumps(doc)


def xml_inventory(template: str, i: int) -> str:
    text = re.sub(
        r"<DEVICEID>[^<]*</DEVICEID>", f"<DEVICEID>pc-{i:05d}-2026-12-01-08-00-00</DEVICEID>", template
    )
    text = re.sub(r"(<HARDWARE>.*?<NAME>)[^<]*(</NAME>)", rf"\g<1>pc-{i:05d}\g<2>", text, count=1, flags=re.S)
    text = re.sub(r"<UUID>[^<]*</UUID>", f"<UUID>{i:08X}-F827-11DF-9297-47C0A301005A</UUID>", text, count=1)
    text = re.sub(r"<SSN>[^<]*</SSN>", f"<SSN>BENCHX{i:07d}</SSN>", text, count=1)
    text = re.sub(r"<FQDN>[^<]*</FQDN>", f"<FQDN>pc-{i:05d}.corp.example</FQDN>", text, count=1)
    text = re.sub(
        r"<LOGDATE>[^<]*</LOGDATE>",
        f"<LOGDATE>2026-12-01 09:{(i // 60) % 60:02d}:{i % 60:02d}</LOGDATE>",
        text,
    )
    counter = iter(range(1000))
    text = re.sub(
        r"<MACADDR>(?!00:00:00:00:00:00)[^<]*</MACADDR>",
        lambda _m: f"<MACADDR>{mac(i, next(counter))}</MACADDR>",
        text,
    )
    return re.sub(
        r"<IPADDRESS>(?!127\.)[^<]*</IPADDRESS>",
        f"<IPADDRESS>10.99.{(i >> 8) & 0xFF}.{i & 0xFF}</IPADDRESS>",
        text,
    )


def generate(folder: Path, count: int) -> tuple[list[Path], int, int]:
    """The inventory files, the software entries they hold and their bytes."""
    shapes = [(name, sample(name)) for name in SHAPES]
    shapes = [(name, text) for name, text in shapes if text is not None]
    if not shapes:
        sys.exit("no GLPI inventory samples found (../shared/data/discovery or tests/fixtures/discovery)")
    files, software, size = [], 0, 0
    for i in range(count):
        name, text = shapes[i % len(shapes)]
        if name.endswith(".json"):
            body = json_inventory(json.loads(text), i)
            software += len(json.loads(text)["content"].get("softwares", []))
        else:
            body = xml_inventory(text, i)
            software += text.count("<SOFTWARES>")
        path = folder / f"inventory-{i:05d}.{'json' if name.endswith('.json') else 'xml'}"
        path.write_text(body, encoding="utf-8")
        files.append(path)
        size += len(body.encode())
    print(f"  shapes: {', '.join(name for name, _ in shapes)}")
    return files, software, size


def timed_import(label: str, files: list[Path]) -> float:
    from django.core.management import call_command
    from django.core.management.base import CommandError

    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("discover", "import", *map(str, files), "--no-progress", stdout=out, stderr=err)
    except CommandError as exc:
        print(f"  {label}: {exc}\n{err.getvalue()[:2000]}")
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(
        f"  {label}: {len(files):,} inventories in {wall:.2f} s wall, {cpu:.2f} s CPU "
        f"({wall / len(files) * 1000:.1f} ms each); peak RSS {after.ru_maxrss / 1024:.0f} MB"
    )
    return wall


def child(count: int) -> None:
    _common.setup_django()
    from django.db import connection

    from tikting.cmdb.models import ConfigurationItem as CI
    from tikting.discovery.models import DiscoveryRun

    folder = Path(tempfile.mkdtemp(prefix="tk_bench_glpi_"))
    files, software, size = generate(folder, count)
    print(f"{connection.vendor}: {count:,} inventories, {software:,} software entries, {size / 1e6:.1f} MB")
    first = timed_import("first import", files)
    runs = DiscoveryRun.objects.count()
    created = sum(DiscoveryRun.objects.values_list("created_unregistered", flat=True))
    print(f"  runs {runs:,}, CIs {CI.objects.count():,} ({created:,} created unregistered)")
    last = DiscoveryRun.objects.order_by("-id").values_list("id", flat=True).first() or 0
    again = timed_import("re-import, nothing changed", files)
    rerun = DiscoveryRun.objects.filter(id__gt=last)
    confirmed = sum(rerun.values_list("confirmed", flat=True))
    updated = sum(rerun.values_list("updated", flat=True))
    print(
        f"  re-import: {confirmed:,} of {count:,} confirmed, {updated:,} updated; "
        f"re-import / first import: {again / first:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--inventories", type=int, default=1000)
    parser.add_argument("--database-url", action="append", default=[])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.inventories)
        return
    _common.run_each_database(args, "tk_bench_glpi", __file__, ["--inventories", str(args.inventories)])


if __name__ == "__main__":
    main()
