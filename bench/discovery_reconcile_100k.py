"""Benchmark: reconciling 100,000 discovered devices against a CMDB of 100,000 CIs.

    .venv/bin/python bench/discovery_reconcile_100k.py                     # SQLite file and PostgreSQL
    .venv/bin/python bench/discovery_reconcile_100k.py --devices 20000 --cmdb 20000
    .venv/bin/python bench/discovery_reconcile_100k.py --database-url sqlite:////tmp/d.sqlite3

Each database is made afresh and migrated (PostgreSQL: `tk_bench_discovery`, dropped and created
again), then seeded with `--cmdb` registered CIs (servers, workstations, network devices; serial
number and manufacturer on 60 %, a system UUID on 20 %, a MAC address on 70 %, an FQDN on 30 %, an
IP address on all, a location typed by a person on all). The input is `--devices` observations, as
a parser hands them over (tikting.discovery.observations), of which 95 % are CIs of the CMDB known
by one identity each, to exercise every rule: serial + manufacturer 40 %, UUID 15 %, MAC 20 %,
FQDN 5 %, host name 10 %, IP in the trusted range 5 %; the other 5 % are devices the CMDB lacks.
Every device reports an OS (the CMDB has none: the first run writes it, with its diff in each CI's
history), and one in fifty a location other than the CMDB's (a drift).

On PostgreSQL the CI table is analysed after seeding, as autovacuum would have done for a CMDB of
that size. Three runs of `reconcile()`, timed (wall, the Python process's CPU and, on PostgreSQL
running on this machine, the CPU of the server process serving the connection, from /proc) with
the peak resident memory of the process (ru_maxrss, Django and the input included; PostgreSQL's own memory
is its server's):

1. **first run**: every device bound, written, the new ones created unregistered;
2. **re-run, nothing changed**: the same input again; the writes it makes are counted
   (CaptureQueriesContext: INSERT/UPDATE/DELETE outside its own run row and temporary tables);
3. **re-run, 10 % changed**: one device in ten seen later with another OS version.

Targets (docs/discovery.md, "Figures"): the first run under 20 s on SQLite and PostgreSQL (aim: 5 s),
under 1 GB; the unchanged re-run under a third of the first and writing nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

MAKERS = ["Dell Inc.", "HP", "Lenovo", "Cisco", "Supermicro"]
TRUSTED = "10.200.0.0/14"


def mac(i: int) -> str:
    return "00:1b:" + ":".join(f"{(i >> s) & 0xFF:02x}" for s in (24, 16, 8, 0))


def uuid(i: int) -> str:
    return f"{i:08x}-4a5b-4c6d-8e7f-{i:012x}"


def ip(i: int, trusted: bool) -> str:
    return f"10.{(200 if trusted else 100) + (i >> 16)}.{(i >> 8) & 0xFF}.{i & 0xFF}"


def rule_of(i: int) -> int:
    """Which identity device i is known by: 0-7 serial + manufacturer (40 %), 8-10 UUID (15 %),
    11-14 MAC (20 %), 15 FQDN (5 %), 16-17 host name (10 %), 18-19 trusted IP (5 %)."""
    return i % 20


def seed(cmdb: int) -> None:
    """CI i has the identity its device is known by, and others besides (a CMDB is never uniform)."""
    from tikting.cmdb.models import ConfigurationItem as CI

    classes = [CI.CIClass.SERVER, CI.CIClass.WORKSTATION, CI.CIClass.NETWORK]
    batch = []
    for i in range(cmdb):
        r = rule_of(i)
        serial = r < 8 or i % 3 == 0
        batch.append(
            CI(
                name=f"host-{i}",
                hostname=f"host-{i}",
                ci_class=classes[i % 3],
                status=CI.Status.ACTIVE,
                source="bench",
                serial_number=f"SN{i:08d}" if serial else "",
                manufacturer=MAKERS[i % 5] if serial else "",
                system_uuid=uuid(i) if 8 <= r < 11 or i % 7 == 0 else "",
                mac_address=mac(i) if 11 <= r < 15 or i % 4 == 0 else "",
                fqdn=f"host-{i}.corp.example" if r == 15 or i % 5 == 0 else "",
                ip_address=ip(i, trusted=r >= 18),
                location=f"Room {i % 40}",
            )
        )
        if len(batch) == 5000:
            CI.objects.bulk_create(batch)
            batch = []
    CI.objects.bulk_create(batch)


def observations(devices: int, cmdb: int, seen: dt.datetime, *, changed: float = 0.0):
    """The input: one observation per device (see the module docstring); device i < 95 % is CI i."""
    from tikting.discovery.observations import Interface, Observation

    result = []
    known = min(int(devices * 0.95), cmdb)
    for i in range(devices):
        later = changed and i % int(1 / changed) == 0
        at = seen + dt.timedelta(hours=1) if later else seen
        os_version = "12.5" if later else "12.4"
        if i < known:
            r = rule_of(i)
            fields: dict = {}
            interfaces = []
            if r < 8:
                fields = {"serial": f"SN{i:08d}", "manufacturer": MAKERS[i % 5]}
            elif r < 11:
                fields = {"uuid": uuid(i).upper()}
            elif r < 15:
                interfaces = [Interface(mac=mac(i).upper().replace(":", "-"))]
            elif r == 15:
                fields = {"fqdn": f"HOST-{i}.corp.example"}
            elif r < 18:
                fields = {"hostname": f"host-{i}"}
            else:
                interfaces = [Interface(ipv4=(ip(i, trusted=True),))]
            extra = {"location": f"Hall {i % 7}"} if i % 50 == 0 else {}
            result.append(
                Observation(
                    source="glpi-agent", seen_at=at, where=f"device {i}", kind="computer",
                    os_name="Debian GNU/Linux", os_version=os_version, interfaces=interfaces, extra=extra,
                    **fields,
                )
            )  # fmt: skip
        else:
            result.append(
                Observation(
                    source="glpi-agent", seen_at=at, where=f"device {i}", kind="computer",
                    hostname=f"new-{i}", serial=f"NEW{i:08d}", manufacturer="Dell Inc.",
                    os_name="Windows 11", os_version=os_version,
                    interfaces=[Interface(mac=mac(10_000_000 + i), ipv4=(ip(i, trusted=False),))],
                )
            )  # fmt: skip
    return result


WRITE = re.compile(r'^\s*(?:\d+ times: )?(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM|COPY)\s+"?(\w+)', re.I)
OWN = re.compile(r"^(discovery_discoveryrun|tmp_discovery_\w+)$", re.I)


def server_cpu() -> float | None:
    """CPU seconds the PostgreSQL backend serving this connection has used (from /proc, when the
    server runs on this machine and its process is readable); None otherwise, and on SQLite (its
    work is the process's own CPU). On a shared machine this, with the process's CPU, is the work a
    run costs; the wall time adds the waiting for a core."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def timed(label: str, parse_result, source: str) -> tuple[float, object]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tikting.discovery.reconcile import reconcile

    before = resource.getrusage(resource.RUSAGE_SELF)
    server_before = server_cpu()
    start = time.perf_counter()
    with CaptureQueriesContext(connection) as captured:
        run = reconcile(parse_result, source_name=source)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    server_after = server_cpu()
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    server = (
        ""
        if server_before is None or server_after is None
        else (f"  server CPU {server_after - server_before:6.2f} s")
    )
    writes = [
        q["sql"]
        for q in captured.captured_queries
        if (m := WRITE.match(q["sql"])) and not OWN.match(m.group(1))
    ]
    print(
        f"  {label:<28} {wall:7.2f} s wall  {cpu:6.2f} s CPU{server}  "
        f"peak RSS {after.ru_maxrss / 1024:6.0f} MB  "
        f"queries {len(captured.captured_queries):4d}  writes outside its run: {len(writes)}"
    )
    print(
        f"  {'':<28} confirmed {run.confirmed:,}  updated {run.updated:,}  "
        f"created {run.created_unregistered:,}  duplicates {run.duplicate_candidates:,}  "
        f"drifts {run.drifts:,}  unidentified {run.unidentified:,}"
    )
    return wall, run


def child(devices: int, cmdb: int) -> None:
    os.environ["TIKTING_DISCOVERY_TRUSTED_RANGES"] = TRUSTED
    _common.setup_django()
    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    settings.TIKTING_DISCOVERY_TRUSTED_RANGES = [TRUSTED]
    start = time.perf_counter()
    seed(cmdb)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # A CMDB of 100,000 CIs has statistics (autovacuum): one just bulk-loaded has none yet.
            cursor.execute("ANALYZE cmdb_configurationitem")
    print(f"{connection.vendor}: {cmdb:,} CIs seeded in {time.perf_counter() - start:.1f} s")
    seen = timezone.now().replace(microsecond=0) - dt.timedelta(hours=3)
    from tikting.discovery.observations import ParseResult

    first_input = ParseResult("glpi-json", observations(devices, cmdb, seen))
    print(f"  input: {devices:,} observations; peak RSS before the first run "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")  # fmt: skip
    first, _ = timed("first run", first_input, "bench")
    again, _ = timed("re-run, nothing changed", first_input, "bench")
    changed_input = ParseResult("glpi-json", observations(devices, cmdb, seen, changed=0.1))
    timed("re-run, 10 % changed", changed_input, "bench")
    print(f"  re-run / first run: {again / first:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--cmdb", type=int, default=100_000)
    parser.add_argument("--database-url", action="append", default=[])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.devices, args.cmdb)
        return
    extra = ["--devices", str(args.devices), "--cmdb", str(args.cmdb)]
    _common.run_each_database(args, "tk_bench_discovery", __file__, extra)


if __name__ == "__main__":
    main()
