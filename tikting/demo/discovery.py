"""A discovery history for `tikting demo`: nine weeks of asset discovery over the demo CMDB, so the
CMDB health page (/discovery/) opens on real figures and trends, not on 0 % coverage.

`build_discovery(rng, users)` runs after the ITSM history (tikting/demo/history.py made the CIs):

1. the in-scope demo CIs get the identity a person typed when registering them (host name, serial
   number, maker, model, IP, location; an OS for the network gear) — reference data from before
   discovery began, bulk-written like the rest of the demo's reference data;
2. two sources then report every week, built as their parsers would hand them over
   (tikting.discovery.observations) and reconciled through the real service
   (tikting.discovery.reconcile, one transactional run each), with the time they saw it:
   - **glpi-agent**: the inventories of the servers, VMs and laptops (serial, UUID, MAC, OS …);
   - **nmap**: the weekly scan of the server and network ranges (addresses, names, OS guess,
     open ports), which also finds devices the CMDB lacks (printers, phones, cameras …);
3. a manager works the health page in between: registers three printers, accepts one drift.

The story the figures tell (what the hygiene detector, tikting/signals/detectors/cmdb_hygiene.py,
then finds against the snapshot a month older):

- coverage falls: twelve laptops stop reporting five weeks ago (their agent broke in a re-imaging)
  and are stale now; two CIs were never seen at all (nobody installed an agent);
- unregistered devices grow: a new floor's printers, IP phones and cameras appear on the scans;
- accuracy falls: the network team upgraded firmware without updating the CMDB (OS drifts
  against the values a person typed, which outrank nmap);
- duplicate candidates: a laptop registered twice under two names with one serial number, and an
  old record of an HR server kept beside the new one under the same host name.

Deterministic for a given `rng` and `now`. Every name, address and serial number is made up
(addresses in 10.20.0.0/16, the domain demo.tikting.example).
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Max, Min, Q
from django.utils import timezone

from tikting.accounts.models import User
from tikting.cmdb.models import ConfigurationItem as CI
from tikting.core.models import AuditEntry, StatusChange
from tikting.discovery import services as discovery_services
from tikting.discovery import snapshot
from tikting.discovery.models import (
    AccuracySnapshot,
    DiscoveredDevice,
    DiscoveryRun,
    DriftItem,
    DuplicateCandidate,
    MacAddress,
)
from tikting.discovery.observations import Interface, Observation, ParseResult, Port, Software
from tikting.discovery.precedence import RECONCILED
from tikting.discovery.reconcile import reconcile

__all__ = ["DOMAIN", "RUN_SOURCES", "build_discovery", "wipe_discovery"]

DOMAIN = "demo.tikting.example"
WEEKS = 9  # weekly runs of each source, the last one this week
AGENT = "glpi-agent"
NMAP = "nmap"
# The runs' source names as a person configured them (wipe_discovery deletes the runs by these).
RUN_SOURCES = {AGENT: "GLPI agents", NMAP: "nmap weekly scan"}
SCAN_RANGE = "10.20.0.0/22, 10.20.8.0/22"
# Laptops whose agent stopped reporting (re-imaged with a broken agent) this many weeks ago.
BROKEN_AGENT_WEEKS = 5
BROKEN_LAPTOPS = range(29, 41)  # LT-0029 … LT-0040
NO_AGENT = ("LT-0003", "LT-0017")  # never got an agent: never seen
UNSCANNED = ("WLC-01",)  # in a range the scan does not cover: never seen
# Network gear whose firmware was upgraded, from which week's scan (nmap reports the new OS).
UPGRADED = {"SW-ACC-02": 3, "SW-ACC-05": 3, "FW-EDGE-01": 6, "RTR-WAN-01": 7, "SW-CORE-01": 8}
MAKERS = {
    "server": ("Dell Inc.", "PowerEdge R650", "00:14:22"),
    "vm": ("VMware, Inc.", "VMware Virtual Platform", "00:50:56"),
    "workstation": ("LENOVO", "ThinkPad T14 Gen 3", "54:ee:75"),
    "network": ("Cisco", "Catalyst 9300", "00:1b:54"),
}
# The OS of the network gear as nmap names it (and a person typed it): before, after an upgrade.
NETWORK_OS = {
    "Core switch": ("Cisco IOS XE 17.6", "Cisco IOS XE 17.9"),
    "Access switch": ("Cisco IOS XE 17.3", "Cisco IOS XE 17.9"),
    "Firewall": ("Cisco FTD 7.0", "Cisco FTD 7.2"),
    "Wireless controller": ("Cisco AireOS 8.10", "Cisco AireOS 8.10"),
    "WAN router": ("Cisco IOS XE 17.3", "Cisco IOS XE 17.9"),
    "VPN gateway": ("Cisco ASA 9.16", "Cisco ASA 9.18"),
}
SERVER_OS = ("Debian GNU/Linux", "12")
WINDOWS_SERVERS = {"SRV-RADIUS-01", "SRV-WDS-01", "SRV-HR-01"}
# Devices the CMDB lacks: (name, kind, maker, model, OS, MAC prefix, ports, first week seen).
NEWCOMERS: list[tuple[str, str, str, str, str, str, tuple[int, ...], int]] = [
    ("prn-f1-01", "printer", "HP", "LaserJet M607", "HP embedded", "3c:d9:2b", (80, 443, 631, 9100), 0),
    ("prn-f1-02", "printer", "HP", "LaserJet M607", "HP embedded", "3c:d9:2b", (80, 443, 631, 9100), 0),
    ("prn-f2-01", "printer", "Brother", "MFC-L8900", "Brother embedded", "00:1b:a9", (80, 631, 9100), 1),
    ("nas-backup-01", "storage", "Synology", "RS1221+", "Linux 4.4", "00:11:32", (22, 443, 5001), 1),
    ("rpi-lab-07", "computer", "Raspberry Pi", "Pi 4 Model B", "Linux 5.15", "dc:a6:32", (22, 80), 2),
    *[
        (
            f"prn-f4-0{n}",
            "printer",
            "HP",
            "Color LaserJet E785",
            "HP embedded",
            "3c:d9:2b",
            (80, 443, 9100),
            5,
        )
        for n in range(1, 5)
    ],
    *[
        (f"sep-f4-{n:02d}", "phone", "Cisco", "IP Phone 8845", "Cisco SIP", "00:1b:54", (80, 5060), 6)
        for n in range(1, 9)
    ],
    *[
        (f"cam-f4-0{n}", "unknown", "Axis", "P3265-LVE", "Linux 4.9", "00:40:8c", (80, 443, 554), 7)
        for n in range(1, 6)
    ],
    ("unknown-10-20-9-201", "unknown", "", "", "", "f0:9f:c2", (22,), 8),
]
REGISTERED_PRINTERS = ("prn-f1-01", "prn-f1-02", "prn-f2-01")  # by the manager after week 2
TWINS = ("Laptop Ana Ferreira", "SRV-HR-01 (2019)")  # records a person made twice
KINDS = {
    "server": "computer",
    "vm": "virtual_machine",
    "workstation": "computer",
    "network": "network_equipment",
}
SCOPE = tuple(KINDS)


def wipe_discovery() -> int:
    """Delete the demo's discovery history: its runs, the CIs discovery made from the demo's
    devices and the records a person made twice, what discovery kept and wrote on the demo's CIs
    (devices, MACs, gaps, the discovered values, their history rows) and the accuracy snapshots.
    Returns rows deleted."""
    ci_type = ContentType.objects.get_for_model(CI)
    macs = [_newcomer_mac(n) for n in range(len(NEWCOMERS))]
    made = CI.objects.filter(
        Q(source="discovery", hostname__endswith=f".{DOMAIN}")
        | Q(source="discovery", mac_address__in=macs)
        | Q(source="demo", name__in=TWINS)
    )
    demo_cis = CI.objects.filter(source="demo")
    with transaction.atomic():
        ids = [str(pk) for pk in [*made.values_list("pk", flat=True), *demo_cis.values_list("pk", flat=True)]]
        deleted = 0
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            deleted += AuditEntry.objects.filter(
                root_content_type=ci_type, root_object_id__in=chunk
            ).delete()[0]
            deleted += StatusChange.objects.filter(content_type=ci_type, object_id__in=chunk).delete()[0]
        deleted += made.delete()[0]
        for model in (DiscoveredDevice, MacAddress, DriftItem, DuplicateCandidate):
            deleted += model.objects.filter(ci__source="demo").delete()[0]
        demo_cis.update(**dict.fromkeys(RECONCILED, ""), first_seen_at=None, last_seen_at=None,
                        discovery_source="", attribute_sources={})  # fmt: skip
        deleted += DiscoveryRun.objects.filter(source_name__in=RUN_SOURCES.values()).delete()[0]
        deleted += AccuracySnapshot.objects.all().delete()[0]
    return deleted


def _mac(prefix: str, n: int) -> str:
    return f"{prefix}:{(n >> 16) & 0xFF:02x}:{(n >> 8) & 0xFF:02x}:{n & 0xFF:02x}"


def _newcomer_mac(n: int) -> str:
    return _mac(NEWCOMERS[n][5], 0x2000 + n)


class Discovery:
    """The demo's world: what each CI really is, and what each source sees of it week by week."""

    def __init__(self, rng: random.Random, users: dict[str, User], now: dt.datetime) -> None:
        self.rng = rng
        self.manager = users["manager"]
        self.now = now
        self.counts: Counter[str] = Counter()
        self.cis = list(
            CI.objects.filter(source="demo", ci_class__in=SCOPE, status=CI.Status.ACTIVE).order_by("name")
        )
        self.truth: dict[str, dict[str, Any]] = {}

    # -- the CMDB as a person registered it

    def register_identities(self) -> None:
        """What a person typed for each in-scope CI (before discovery): names, serial numbers, an
        IP for the servers and gear, the location; a few mistakes and gaps, as in any CMDB."""
        changed = []
        for n, ci in enumerate(self.cis, start=1):
            maker, model, prefix = MAKERS[ci.ci_class]
            host = ci.name.lower()
            subnet = 8 if ci.ci_class == CI.CIClass.NETWORK else 0 if ci.ci_class != "workstation" else 40
            truth: dict[str, Any] = {
                "hostname": host,
                "fqdn": f"{host}.{DOMAIN}",
                "serial": f"{'VM' if ci.ci_class == 'vm' else 'SN'}{self.rng.randrange(16**7):07X}",
                "maker": maker,
                "model": model,
                "uuid": f"4c4c4544-{n:04x}-8{n % 10:03d}-b{n:03x}-{self.rng.randrange(16**12):012x}",
                "mac": _mac(prefix, 0x1000 + n),
                "ip": f"10.20.{subnet + n // 250}.{n % 250 + 2}",
            }
            if ci.ci_class == CI.CIClass.NETWORK:
                truth["os"] = NETWORK_OS.get(ci.ci_type, ("Cisco IOS XE 17.3", "Cisco IOS XE 17.9"))
            elif ci.name in WINDOWS_SERVERS:
                truth["os"] = ("Microsoft Windows Server 2019 Standard", "10.0.17763")
            elif ci.ci_class == CI.CIClass.WORKSTATION:
                truth["os"] = ("Microsoft Windows 11 Enterprise", "10.0.22631")
            else:
                truth["os"] = SERVER_OS
            self.truth[ci.name] = truth
            ci.hostname = host
            ci.location = "Data centre DC1" if ci.ci_class != CI.CIClass.WORKSTATION else "Head office"
            if ci.ci_class != CI.CIClass.WORKSTATION:
                ci.ip_address = truth["ip"]
                ci.serial_number, ci.manufacturer, ci.model_name = truth["serial"], maker, model
            elif n % 3 or ci.name == "LT-0012":  # two laptops in three: from the delivery note
                ci.serial_number, ci.manufacturer = truth["serial"], maker
            if ci.ci_class == CI.CIClass.NETWORK:
                ci.os_name = truth["os"][0]
            changed.append(ci)
        fields = [
            "hostname",
            "location",
            "ip_address",
            "serial_number",
            "manufacturer",
            "model_name",
            "os_name",
        ]
        CI.objects.bulk_update(changed, fields, batch_size=500)
        self.duplicates_registered()

    def duplicates_registered(self) -> None:
        """Records a person made twice: a laptop under its user's name with the same serial number,
        and the old record of the HR server, never retired, under the same host name."""
        laptop = next((ci for ci in self.cis if ci.name == "LT-0012"), None)
        hr = next((ci for ci in self.cis if ci.name == "SRV-HR-01"), None)
        twins = []
        if laptop is not None:
            twins.append(
                CI(
                    name=TWINS[0],
                    ci_class=CI.CIClass.WORKSTATION,
                    ci_type="Laptop",
                    status=CI.Status.ACTIVE,
                    source="demo",
                    external_key=TWINS[0],
                    service=laptop.service,
                    serial_number=self.truth["LT-0012"]["serial"],
                    manufacturer=MAKERS["workstation"][0],
                    location="Head office",
                )
            )
        if hr is not None:
            twins.append(
                CI(
                    name=TWINS[1],
                    ci_class=CI.CIClass.SERVER,
                    ci_type="Application server",
                    status=CI.Status.ACTIVE,
                    source="demo",
                    external_key=TWINS[1],
                    service=hr.service,
                    owner=hr.owner,
                    hostname="srv-hr-01",
                    location="Data centre DC1",
                )
            )
        CI.objects.bulk_create(twins)
        # registered back then, with the rest of the reference data (before the history using it)
        since = CI.objects.filter(source="demo").aggregate(first=Min("created_at"))["first"]
        CI.objects.filter(pk__in=[t.pk for t in twins]).update(created_at=since, updated_at=since)

    # -- what the sources see

    def agent_inventories(self, week: int, at: dt.datetime) -> list[Observation]:
        observations = []
        for i, ci in enumerate(self.cis):
            truth = self.truth[ci.name]
            if ci.ci_class == CI.CIClass.NETWORK or ci.name in NO_AGENT:
                continue
            if ci.ci_class == CI.CIClass.WORKSTATION:
                number = int(ci.name.split("-")[1])
                if number in BROKEN_LAPTOPS and week >= WEEKS - BROKEN_AGENT_WEEKS:
                    continue
                if self.rng.random() < 0.08:  # away that day (holiday, switched off)
                    continue
            os_name, os_version = truth["os"]
            if ci.ci_class == CI.CIClass.WORKSTATION and week >= 4:
                os_version = "10.0.26100"  # the fleet moved to 24H2
            seen = at + dt.timedelta(minutes=i * 7 % 180, seconds=i * 13 % 60)
            observations.append(
                Observation(
                    source=AGENT,
                    seen_at=seen,
                    where=f"{truth['hostname']}.json",
                    kind=KINDS[ci.ci_class],
                    hostname=truth["hostname"],
                    fqdn=truth["fqdn"],
                    serial=truth["serial"],
                    manufacturer=truth["maker"],
                    model=truth["model"],
                    uuid=truth["uuid"],
                    os_name=os_name,
                    os_version=os_version,
                    cpus=4 if ci.ci_class == CI.CIClass.WORKSTATION else 16,
                    memory_mb=16384 if ci.ci_class == CI.CIClass.WORKSTATION else 65536,
                    interfaces=[Interface(mac=truth["mac"], ipv4=(truth["ip"],), name="eth0")],
                    software=[
                        Software("Microsoft Edge", "131.0.2903", "Microsoft Corporation")
                        if os_name.startswith("Microsoft")
                        else Software("openssh-server", "1:9.2p1-2", "Debian"),
                        Software("GLPI Agent", "1.11", "Teclib'"),
                    ],
                )
            )
        return observations

    def scan(self, week: int, at: dt.datetime) -> list[Observation]:
        observations = []
        for i, ci in enumerate(self.cis):
            truth = self.truth[ci.name]
            if ci.ci_class == CI.CIClass.WORKSTATION or ci.name in UNSCANNED:
                continue
            if ci.ci_class == CI.CIClass.NETWORK:
                before, after = truth["os"]
                upgraded = UPGRADED.get(ci.name)
                os_name = after if upgraded is not None and week >= upgraded else before
            else:  # nmap's guess at a server's OS (the agent's inventory outranks it)
                os_name = (
                    "Linux 5.0 - 5.14"
                    if truth["os"][0].startswith("Debian")
                    else "Microsoft Windows Server 2019"
                )
            ports: tuple[int, ...] = (22, 443) if ci.ci_class == CI.CIClass.NETWORK else (22, 80, 443)
            observations.append(self._nmap_host(at, i, truth["fqdn"], truth["mac"], truth["ip"], os_name,
                                                KINDS[ci.ci_class], truth["maker"], ports))  # fmt: skip
        for n, (name, kind, maker, _model, os_name, _prefix, ports, first) in enumerate(NEWCOMERS):
            if week < first:
                continue
            ip = f"10.20.9.{200 - n}" if name.startswith("unknown") else f"10.20.{9 + n // 200}.{n + 20}"
            fqdn = "" if name.startswith("unknown") else f"{name}.{DOMAIN}"
            observations.append(self._nmap_host(at, 100 + n, fqdn, _newcomer_mac(n), ip, os_name, kind, maker,
                                                ports))  # fmt: skip
        return observations

    @staticmethod
    def _nmap_host(
        at: dt.datetime,
        i: int,
        fqdn: str,
        mac: str,
        ip: str,
        os_name: str,
        kind: str,
        vendor: str,
        ports: tuple[int, ...],
    ) -> Observation:
        return Observation(
            source=NMAP,
            seen_at=at + dt.timedelta(seconds=3 * i),
            where=f"host {ip}",
            kind=kind,
            fqdn=fqdn,
            os_name=os_name,
            interfaces=[Interface(mac=mac, ipv4=(ip,), vendor=vendor)],
            ports=[Port("tcp", p, service={22: "ssh", 80: "http", 443: "https"}.get(p, "")) for p in ports],
        )

    # -- the runs

    def run(self, source: str, observations: list[Observation], at: dt.datetime) -> DiscoveryRun:
        """One run of `source` started at `at`, through the real reconciliation; its rows then
        carry the time it ran (reconcile stamps the moment the demo is built) and the seconds a
        run of its size takes."""
        mark = AuditEntry.objects.aggregate(last=Max("id"))["last"] or 0
        fmt = "nmap-xml" if source == NMAP else "glpi-json"
        done = at + dt.timedelta(seconds=round(0.8 + 0.04 * len(observations) + self.rng.random(), 2))
        run = reconcile(
            ParseResult(fmt, observations),
            source_name=RUN_SOURCES[source],
            scan_range=SCAN_RANGE if source == NMAP else "",
            file_name="" if source == NMAP else f"{len(observations)} agent inventories",
            now=done,
        )
        DiscoveryRun.objects.filter(pk=run.pk).update(started_at=at, finished_at=done)
        AuditEntry.objects.filter(id__gt=mark).update(at=done)
        self.counts["discovery runs"] += 1
        return run

    def act(self, week: int, at: dt.datetime) -> None:
        """The manager on the health page: registers the first floor's printers after week 2,
        accepts the first firmware drift after week 4 (the CMDB takes the discovered version)."""
        mark = AuditEntry.objects.aggregate(last=Max("id"))["last"] or 0
        changes = StatusChange.objects.aggregate(last=Max("id"))["last"] or 0
        if week == 2:
            printers = CI.objects.filter(status=CI.Status.DISCOVERED, name__in=REGISTERED_PRINTERS)
            for ci in printers.order_by("name"):
                discovery_services.register_ci(ci, actor=self.manager, ci_class=CI.CIClass.PRINTER)
                self.counts["devices registered"] += 1
        if week == 4:
            drift = DriftItem.objects.filter(status="open", ci__name="SW-ACC-02").first()
            if drift is not None:
                discovery_services.accept_drift(drift, actor=self.manager)
                DriftItem.objects.filter(pk=drift.pk).update(decided_at=at)
                self.counts["drifts accepted"] += 1
        AuditEntry.objects.filter(id__gt=mark).update(at=at)
        StatusChange.objects.filter(id__gt=changes).update(at=at)

    def build(self) -> Counter[str]:
        self.register_identities()
        for week in range(WEEKS):
            monday = self.now - dt.timedelta(days=7 * (WEEKS - 1 - week) + 2)
            # the scan from 02:00 (38 min), imported when it ends; the agents' inventories of the
            # morning (07:30 to 10:30), imported together at 10:40
            scan_at = monday.replace(hour=2, minute=0, second=0, microsecond=0)
            agents_at = monday.replace(hour=7, minute=30, second=0, microsecond=0)
            self.run(NMAP, self.scan(week, scan_at), scan_at + dt.timedelta(minutes=38))
            self.run(AGENT, self.agent_inventories(week, agents_at), agents_at + dt.timedelta(minutes=190))
            self.act(week, agents_at + dt.timedelta(hours=4))
        snapshot.take(self.now)  # today's figures (the daily snapshot the worker also takes)
        self.counts["unregistered devices"] = CI.objects.filter(status=CI.Status.DISCOVERED).count()
        self.counts["drifts open"] = DriftItem.objects.filter(status="open").count()
        self.counts["duplicate candidates"] = DuplicateCandidate.objects.filter(status="open").count()
        return self.counts


def build_discovery(
    rng: random.Random, users: dict[str, User], *, now: dt.datetime | None = None
) -> dict[str, int]:
    """Nine weeks of discovery over the demo CMDB (the ITSM history's CIs must be there); replaces
    any earlier demo discovery history. Returns what was made, per kind. Run it inside the caller's
    transaction."""
    now = (now or timezone.now()).replace(second=0, microsecond=0)
    own = random.Random(rng.getrandbits(64))
    with transaction.atomic():
        wipe_discovery()
        counts = Discovery(own, users, now).build()
    return dict(counts)
