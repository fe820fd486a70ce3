"""Reconciliation: what a discovery source saw, held against the CMDB in one run.

    reconcile(result: ParseResult, *, source_name: str, actor=None) -> DiscoveryRun

One transaction, set work in the database (docs/discovery.md, "Reconciliation"):

1. **Staging.** The observations are normalised (identity.py) and bulk-loaded into a temporary
   table (COPY on PostgreSQL, executemany on SQLite), with their identity MACs in a second one.
   Hosts a source reports down are not evidence of presence and are left out; devices with no
   identity the rules can use are listed as unidentified and left out.
2. **Identification.** The rules of TIKTING_DISCOVERY_IDENTIFICATION are tried in order, each one
   a join between the staged rows still unmatched and the CIs (retired ones excepted) on the
   rule's attribute, refused where a stronger identity conflicts (docs/discovery.md). A row that
   matches several CIs goes to the registered, then the oldest one, and the CIs become duplicate
   candidates. Rows left unmatched become CIs in status "discovered, unregistered", in waves: the
   first of the rows sharing an identity value makes the CI, the others then match it.
3. **Devices.** Per CI and source, the last observation is kept (DiscoveredDevice): inserted when
   new, updated when its values changed or it is newer; an observation older than what is kept
   changes nothing.
4. **Precedence.** For the CIs whose devices changed (and those with an open drift, and those a
   person edited since the last run), precedence.decide() gives each attribute's value: written
   with its diff in the CI's history (core.audit), or a drift when the CI's value comes from a
   higher-ranked source. Written with one UPDATE … FROM a loaded table.
5. **Duplicates, stale CIs, the accuracy snapshot** (snapshot.py).

Importing the same input twice changes nothing the second time: the observations carry the time
the source saw them, so nothing is newer and nothing differs; the second run writes only its own
DiscoveryRun row and the temporary tables.
"""

# ruff: noqa: S608 - the SQL here is built from this module's own table and column names only; every
# value is a query parameter or a loaded row.
from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
from django.db.models import Max
from django.db.models.expressions import RawSQL
from django.utils import timezone

from tikting.accounts.models import Actor, User
from tikting.cmdb.models import ConfigurationItem
from tikting.core import audit
from tikting.core.middleware import current_request_id
from tikting.core.models import AuditEntry

from . import identity, snapshot
from .models import Decision as Status
from .models import DiscoveredDevice, DiscoveryRun, DriftItem, DuplicateCandidate, MacAddress
from .observations import Observation, ParseResult
from .precedence import MANUAL, RECONCILED, Sighting, decide, rankings

__all__ = ["RULES", "reconcile"]

RULES = ("serial_manufacturer", "uuid", "mac", "fqdn", "hostname", "ip")
STAGE = "tmp_discovery_stage"
STAGE_MAC = "tmp_discovery_stage_mac"
MATCH = "tmp_discovery_match"
BOUND = "tmp_discovery_bound"
WINNER = "tmp_discovery_winner"
RECHECK = "tmp_discovery_recheck"
CI_UPDATE = "tmp_discovery_ci_update"
CI = ConfigurationItem._meta.db_table
DEVICE = DiscoveredDevice._meta.db_table
MAC = MacAddress._meta.db_table
# Values shared by more CIs than this are placeholders nobody listed, not duplicates.
MAX_DUPLICATE_GROUP = 20
# Unidentified devices listed on a run (all are counted).
MAX_LISTED = 1000
# Device kinds → the class a CI discovered with it gets (a person can change it on registering).
KIND_CLASSES = {
    "network_equipment": ConfigurationItem.CIClass.NETWORK,
    "printer": ConfigurationItem.CIClass.PRINTER,
    "virtual_machine": ConfigurationItem.CIClass.VM,
}
SERVER_OS = ("server", "linux", "bsd", "unix", "solaris", "aix", "esxi", "hp-ux")

# The staged columns, in load order (row_no first).
STAGE_COLUMNS = (
    "row_no",
    "source",
    "seen_at",
    "kind",
    "hostname",
    "fqdn",
    "serial",
    "serial_key",
    "manufacturer",
    "manufacturer_key",
    "model",
    "uuid",
    "os_name",
    "os_version",
    "ip",
    "ip_trusted",
    "mac",
    "has_mac",
    "location",
    "addresses",
    "details",
    "fingerprint",
)
# Device columns filled from the stage of the same name (besides ci, source, times, run, rule).
DEVICE_VALUES = (
    "kind",
    "hostname",
    "fqdn",
    "serial",
    "manufacturer",
    "model",
    "uuid",
    "os_name",
    "os_version",
    "ip",
    "mac",
    "location",
    "addresses",
    "details",
    "fingerprint",
)
# The CI attributes duplicate candidates are found by: a CI whose values of them changed is checked.
IDENTITY = frozenset({"serial_number", "system_uuid", "mac_address", "fqdn", "hostname"})
CI_UPDATE_COLUMNS = (
    "id",
    *RECONCILED,
    "first_seen_at",
    "last_seen_at",
    "discovery_source",
    "attribute_sources",
    "version",
    "updated_at",
)


# --- Settings -------------------------------------------------------------------------------------


def rules() -> list[str]:
    """The identification rules in force, in order; ImproperlyConfigured naming an unknown one."""
    chosen = list(settings.TIKTING_DISCOVERY_IDENTIFICATION)
    unknown = [r for r in chosen if r not in RULES]
    if unknown:
        raise ImproperlyConfigured(
            f"TIKTING_DISCOVERY_IDENTIFICATION: unknown rule {', '.join(unknown)}; "
            f"the rules are {', '.join(RULES)}."
        )
    return chosen


def trusted_ranges() -> list[identity.Network]:
    try:
        return identity.networks(settings.TIKTING_DISCOVERY_TRUSTED_RANGES)
    except ValueError as exc:
        raise ImproperlyConfigured(str(exc)) from exc


# --- Staging: one row per observation --------------------------------------------------------------


@dataclass
class Staged:
    """The staged rows and MACs of a result, and what was left out (down, unidentified)."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    macs: list[tuple[int, str]] = field(default_factory=list)
    down: int = 0
    unidentified: list[dict[str, str]] = field(default_factory=list)


# json.dumps(sort_keys=True, default=str) as one encoder: dumps() makes a new encoder per call
# whenever an option is given (two per observation, 200,000 a run of 100,000 devices).
_sorted_json = json.JSONEncoder(sort_keys=True, default=str).encode


def _text(value: Any, limit: int) -> str:
    return str(value or "").strip()[:limit]


def _details(obs: Observation) -> dict[str, Any]:
    """Everything but the identity and the attributes reconciliation writes, JSON-safe."""
    return {
        key: value
        for key, value in (
            ("ports", [[p.protocol, p.number, p.state, p.service, p.product, p.version] for p in obs.ports]),
            ("software", [[s.name, s.version, s.publisher] for s in obs.software]),
            ("cpus", obs.cpus),
            ("memory_mb", obs.memory_mb),
            ("uptime_seconds", obs.uptime_seconds),
            ("virtual_machines", obs.virtual_machines),
            ("extra", {k: v for k, v in obs.extra.items() if k != "location"}),
            ("where", obs.where),
        )
        if value not in (None, [], {}, "")
    }


def stage_rows(
    result: ParseResult, rules_in_force: Sequence[str], ranges: Sequence[identity.Network]
) -> Staged:
    """The observations as staged rows (STAGE_COLUMNS, seen_at as the database stores it)."""
    staged = Staged()
    adapt = functools.lru_cache(maxsize=4096)(connection.ops.adapt_datetimefield_value)
    for row_no, obs in enumerate(result.observations, start=1):
        if not obs.up:
            staged.down += 1
            continue
        hostname, fqdn = identity.hostname_and_fqdn(obs.hostname, obs.fqdn)
        serial = _text(obs.serial, 100)
        serial_key = identity.serial_key(serial)
        if not serial_key:
            serial = ""
        manufacturer = _text(obs.manufacturer, 100)
        uuid = identity.uuid_key(obs.uuid)
        macs: list[str] = []
        all_macs: list[str] = []
        ipv4: list[str] = []
        ipv6: list[str] = []
        for interface in obs.interfaces:
            mac = identity.identity_mac(interface.mac or "", virtual=interface.virtual)
            if mac and mac not in macs:
                macs.append(mac)
            shown = identity.canonical_mac(interface.mac or "")
            if shown and shown not in all_macs:
                all_macs.append(shown)
            ipv4 += [a for a in interface.ipv4 if a not in ipv4]
            ipv6 += [a for a in interface.ipv6 if a not in ipv6]
        ip = identity.primary_ip(ipv4, ipv6)
        ip_trusted = identity.trusted(ip, ranges)
        keys = {
            "serial_manufacturer": bool(serial_key),
            "uuid": bool(uuid),
            "mac": bool(macs),
            "fqdn": bool(fqdn),
            "hostname": bool(hostname),
            "ip": ip_trusted,
        }
        if not any(keys[r] for r in rules_in_force):
            if len(staged.unidentified) < MAX_LISTED:
                staged.unidentified.append(
                    {
                        "where": obs.where,
                        "message": "No identity the rules can use (serial number, UUID, a real MAC, a "
                        f"name{', an IP in a trusted range' if 'ip' in rules_in_force else ''}"
                        f"{': ' + ip if ip else ''}): not reconciled.",
                    }
                )
            else:
                staged.unidentified.append({})
            continue
        addresses = {"macs": all_macs, "ipv4": ipv4, "ipv6": ipv6}
        details = _details(obs)
        location = _text(obs.extra.get("location"), 200)
        values = [
            _text(obs.kind, 30),
            hostname,
            fqdn,
            serial,
            serial_key,
            manufacturer,
            identity.manufacturer_key(manufacturer) if serial_key else "",
            _text(obs.model, 100),
            uuid,
            _text(obs.os_name, 100),
            _text(obs.os_version, 100),
            ip[:45],
            int(ip_trusted),
            macs[0] if macs else "",
            int(bool(macs)),
            location,
        ]
        addresses_json = _sorted_json(addresses)
        details_json = _sorted_json(details)
        digest = hashlib.sha256(
            "\x1f".join([*map(str, values), addresses_json, details_json]).encode()
        ).hexdigest()
        source = _text(obs.source, 40) or "unknown"
        staged.rows.append(
            (row_no, source, adapt(obs.seen_at), *values, addresses_json, details_json, digest)
        )
        staged.macs += [(row_no, mac) for mac in macs]
    return staged


# --- SQL helpers ------------------------------------------------------------------------------------


def _postgres() -> bool:
    return connection.vendor == "postgresql"


def _json(expression: str) -> str:
    """A text column as the JSON column type of the backend."""
    return f"CAST({expression} AS jsonb)" if _postgres() else expression


def _datetime_type() -> str:
    return "timestamp with time zone" if _postgres() else "datetime"


def _load(cursor: CursorWrapper, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Bulk-load rows into a (temporary) table: COPY on PostgreSQL, executemany on SQLite."""
    names = ", ".join(columns)
    if _postgres():
        sql = f"COPY {table} ({names}) FROM STDIN"
        start, count = time.monotonic(), 0
        with cursor.cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)
                count += 1
        if connection.queries_logged:  # COPY bypasses Django's cursor: logged here, as it would be
            connection.queries_log.append(
                {"sql": f"{sql} -- {count} rows", "time": f"{time.monotonic() - start:.3f}"}
            )
    else:
        marks = ", ".join(["%s"] * len(columns))
        cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", list(rows))  # noqa: S608


def _drop_temporary(cursor: CursorWrapper) -> None:
    for table in (STAGE, STAGE_MAC, MATCH, BOUND, WINNER, RECHECK, CI_UPDATE):
        cursor.execute(f"DROP TABLE IF EXISTS {table}")


def _create_temporary(cursor: CursorWrapper) -> None:
    when = _datetime_type()
    # SQLite: text columns without a declared type (no affinity), or it would not use the CIs'
    # expression indexes (UPPER(serial_number), …) to join on them and would scan the CIs per row.
    text = "text" if _postgres() else ""
    cursor.execute(
        f"CREATE TEMPORARY TABLE {STAGE} (row_no integer PRIMARY KEY, source varchar(40) NOT NULL, "
        f"seen_at {when} NOT NULL, kind {text}, hostname {text}, fqdn {text}, serial {text}, "
        f"serial_key {text}, manufacturer {text}, manufacturer_key {text}, model {text}, uuid {text}, "
        f"os_name {text}, os_version {text}, ip {text}, ip_trusted integer, mac {text}, has_mac integer, "
        f"location {text}, addresses {text}, details {text}, fingerprint {text})"
    )
    cursor.execute(
        f"CREATE TEMPORARY TABLE {WINNER} (row_no integer PRIMARY KEY, ci_id bigint NOT NULL, rule {text}, "
        "touched integer NOT NULL)"
    )
    cursor.execute(f"CREATE TEMPORARY TABLE {STAGE_MAC} (row_no integer NOT NULL, mac {text} NOT NULL)")
    cursor.execute(
        f"CREATE TEMPORARY TABLE {MATCH} (row_no integer NOT NULL, ci_id bigint NOT NULL, pref bigint)"
    )
    # Which CI each row is bound to, by which rule ("created": it made the CI). Kept apart from the
    # (wide, indexed) staged rows: binding inserts a narrow row instead of rewriting a staged one.
    cursor.execute(
        f"CREATE TEMPORARY TABLE {BOUND} (row_no integer PRIMARY KEY, ci_id bigint NOT NULL, rule {text}, "
        "created integer NOT NULL DEFAULT 0)"
    )
    cursor.execute(f"CREATE TEMPORARY TABLE {RECHECK} (ci_id bigint PRIMARY KEY)")
    columns = [f"{name} {text}" for name in RECONCILED]
    cursor.execute(
        f"CREATE TEMPORARY TABLE {CI_UPDATE} (id bigint PRIMARY KEY, {', '.join(columns)}, "
        f"first_seen_at {when}, last_seen_at {when}, discovery_source {text}, attribute_sources {text}, "
        f"version integer, updated_at {when})"
    )


def _index_stage(cursor: CursorWrapper) -> None:
    """Indexes for the joins, made after the load (cheaper than maintaining them while loading).
    PostgreSQL joins the staged rows by hashing them: it needs no index on their identity columns
    (five index builds of every row saved a run); SQLite joins by index lookups only."""
    for column in () if _postgres() else ("serial_key", "uuid", "fqdn", "hostname", "ip"):
        cursor.execute(f"CREATE INDEX tmp_discovery_stage_{column} ON {STAGE} ({column})")
    cursor.execute(f"CREATE INDEX tmp_discovery_stage_mac_mac ON {STAGE_MAC} (mac)")
    cursor.execute(f"CREATE INDEX tmp_discovery_stage_mac_row ON {STAGE_MAC} (row_no)")
    if _postgres():
        cursor.execute(f"ANALYZE {STAGE}")
        cursor.execute(f"ANALYZE {STAGE_MAC}")


def _fresh_statistics(cursor: CursorWrapper, table: str, written: int = 0) -> None:
    """PostgreSQL plans a join by the tables' statistics: a table never analysed, or just filled,
    is planned as nearly empty and joined row by row. After a bulk write of more than a tenth of
    what its statistics know (and at least 1,000 rows), or when it has none, they are refreshed (as
    autovacuum would a minute later). No writes to the table; SQLite plans without statistics."""
    if not _postgres():
        return
    cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [table])
    row = cursor.fetchone()
    known = float(row[0]) if row else -1.0
    if known < 0 or written > max(1000, 0.1 * known):
        cursor.execute(f"ANALYZE {table}")


def _scalar(cursor: CursorWrapper, sql: str, params: Sequence[Any] = ()) -> int:
    cursor.execute(sql, params)
    row = cursor.fetchone()
    return int(row[0] or 0) if row else 0


# --- Identification ------------------------------------------------------------------------------

# A staged row not bound to a CI yet (`s`).
UNBOUND = f"NOT EXISTS (SELECT 1 FROM {BOUND} bb WHERE bb.row_no = s.row_no)"
# A stronger identity present on both sides and different: not the same device.
_CONFLICT = {
    "serial": "(s.serial_key <> '' AND ci.serial_number <> '' AND UPPER(ci.serial_number) <> s.serial_key)",
    "uuid": "(s.uuid <> '' AND ci.system_uuid <> '' AND LOWER(ci.system_uuid) <> s.uuid)",
    "fqdn": "(s.fqdn <> '' AND ci.fqdn <> '' AND LOWER(ci.fqdn) <> s.fqdn)",
    "hostname": "(s.hostname <> '' AND ci.hostname <> '' AND LOWER(ci.hostname) <> s.hostname)",
    # The device has real MACs, the CI has some, and they share none.
    "mac": (
        f"(s.has_mac = 1 AND (ci.mac_address <> '' "
        f"OR EXISTS (SELECT 1 FROM {MAC} m2 WHERE m2.ci_id = ci.id)) "
        f"AND NOT EXISTS (SELECT 1 FROM {STAGE_MAC} sm2 WHERE sm2.row_no = s.row_no "
        f"AND (sm2.mac = REPLACE(LOWER(ci.mac_address), '-', ':') OR EXISTS (SELECT 1 FROM {MAC} m3 "
        "WHERE m3.ci_id = ci.id AND m3.mac = sm2.mac))))"
    ),
}
# Which conflicts refuse a match by each rule.
_GUARDS = {
    "serial_manufacturer": (),
    "uuid": ("serial",),
    "mac": ("serial", "uuid"),
    "fqdn": ("serial", "uuid", "mac"),
    "hostname": ("serial", "uuid", "mac", "fqdn"),
    "ip": ("serial", "uuid", "mac", "fqdn", "hostname"),
}
# Each rule: (FROM … JOIN clause, applicable condition) — one or more, their matches united.
_JOINS: dict[str, tuple[tuple[str, str], ...]] = {
    "serial_manufacturer": (
        (
            f"JOIN {CI} ci ON UPPER(ci.serial_number) = s.serial_key",
            "s.serial_key <> '' AND (s.manufacturer_key = '' OR ci.manufacturer = '' "
            "OR LOWER(ci.manufacturer) LIKE s.manufacturer_key || '%%')",
        ),
    ),
    "uuid": ((f"JOIN {CI} ci ON LOWER(ci.system_uuid) = s.uuid", "s.uuid <> ''"),),
    "mac": (
        (
            f"JOIN {STAGE_MAC} sm ON sm.row_no = s.row_no JOIN {MAC} m ON m.mac = sm.mac "
            f"JOIN {CI} ci ON ci.id = m.ci_id",
            "s.has_mac = 1",
        ),
        (
            f"JOIN {STAGE_MAC} sm ON sm.row_no = s.row_no "
            f"JOIN {CI} ci ON REPLACE(LOWER(ci.mac_address), '-', ':') = sm.mac",
            "s.has_mac = 1",
        ),
    ),
    "fqdn": ((f"JOIN {CI} ci ON LOWER(ci.fqdn) = s.fqdn", "s.fqdn <> ''"),),
    "hostname": (
        (f"JOIN {CI} ci ON LOWER(ci.hostname) = s.hostname", "s.hostname <> ''"),
        (f"JOIN {CI} ci ON LOWER(ci.name) = s.hostname", "s.hostname <> '' AND ci.hostname = ''"),
    ),
    "ip": ((f"JOIN {CI} ci ON ci.ip_address = s.ip", "s.ip_trusted = 1 AND s.ip <> ''"),),
}
# The same rules between an unmatched row and a row of this input already matched (its CI's values
# are only written after identification): (JOIN clause to the row `o`, applicable condition).
_SIBLING_JOINS: dict[str, tuple[str, str]] = {
    "serial_manufacturer": (
        f"JOIN {STAGE} o ON o.serial_key = s.serial_key",
        "s.serial_key <> '' AND o.serial_key <> '' AND (s.manufacturer_key = '' OR o.manufacturer_key = '' "
        "OR o.manufacturer_key = s.manufacturer_key)",
    ),
    "uuid": (f"JOIN {STAGE} o ON o.uuid = s.uuid", "s.uuid <> '' AND o.uuid <> ''"),
    "mac": (
        f"JOIN {STAGE_MAC} sm ON sm.row_no = s.row_no JOIN {STAGE_MAC} om ON om.mac = sm.mac "
        f"JOIN {STAGE} o ON o.row_no = om.row_no",
        "s.has_mac = 1",
    ),
    # (the other row's value is tested too: the planner then never reads every row with an empty one)
    "fqdn": (f"JOIN {STAGE} o ON o.fqdn = s.fqdn", "s.fqdn <> '' AND o.fqdn <> ''"),
    "hostname": (f"JOIN {STAGE} o ON o.hostname = s.hostname", "s.hostname <> '' AND o.hostname <> ''"),
    "ip": (
        f"JOIN {STAGE} o ON o.ip = s.ip",
        "s.ip_trusted = 1 AND o.ip_trusted = 1 AND s.ip <> '' AND o.ip <> ''",
    ),
}
# A stronger identity of both rows, different.
_SIBLING_CONFLICT = {
    "serial": "(s.serial_key <> '' AND o.serial_key <> '' AND o.serial_key <> s.serial_key)",
    "uuid": "(s.uuid <> '' AND o.uuid <> '' AND o.uuid <> s.uuid)",
    "fqdn": "(s.fqdn <> '' AND o.fqdn <> '' AND o.fqdn <> s.fqdn)",
    "hostname": "(s.hostname <> '' AND o.hostname <> '' AND o.hostname <> s.hostname)",
    "mac": (
        f"(s.has_mac = 1 AND o.has_mac = 1 AND NOT EXISTS (SELECT 1 FROM {STAGE_MAC} a "
        f"JOIN {STAGE_MAC} b ON b.mac = a.mac WHERE a.row_no = s.row_no AND b.row_no = o.row_no))"
    ),
}
# Columns whose equal values make two unmatched rows one device (the first makes the CI).
_SHARED_KEYS = {
    "serial_manufacturer": ("serial_key",),
    "uuid": ("uuid",),
    "fqdn": ("fqdn",),
    "hostname": ("hostname",),
    "ip": ("ip",),
}


class Reconciliation:
    """One run's work, step by step, on one cursor (the temporary tables live on its connection)."""

    def __init__(self, run: DiscoveryRun, result: ParseResult, actor: Actor, now: dt.datetime) -> None:
        self.run = run
        self.result = result
        self.actor = _user(actor)
        self.now = now
        self.rules = rules()
        self.ranges = trusted_ranges()
        self.duplicates: dict[tuple[int, int], tuple[str, str]] = {}
        self.created: list[int] = []
        self.changed_cis: set[int] = set()
        self.new_mac_cis: set[int] = set()
        self.identity_changed: set[int] = set()  # CIs whose identity values changed (duplicates)
        self.staged = 0  # rows staged
        self.drifts = 0
        self.cursor: CursorWrapper
        self.adapt = functools.lru_cache(maxsize=4096)(connection.ops.adapt_datetimefield_value)
        self.request_id = current_request_id() or ""
        self.audit_at = self.adapt(timezone.now())  # one time for the history rows of a run
        self.ci_type = ContentType.objects.get_for_model(ConfigurationItem).pk

    # -- the steps, in order

    def execute(self) -> None:
        staged = stage_rows(self.result, self.rules, self.ranges)
        run = self.run
        run.observed = len(self.result.observations)
        run.down = staged.down
        run.unidentified = len(staged.unidentified)
        run.error_details = [{"where": e.where, "message": e.message} for e in self.result.errors][
            :MAX_LISTED
        ]
        run.error_details += [u for u in staged.unidentified if u][
            : max(0, MAX_LISTED - len(run.error_details))
        ]
        run.errors = len(self.result.errors)
        with connection.cursor() as cursor:
            self.cursor = cursor
            if _postgres():
                # The joins' row estimates are rough (expressions, temporary tables): with JIT on,
                # PostgreSQL spent a second and a half compiling a query that ran in 10 ms.
                cursor.execute("SET LOCAL jit = off")
                # Sorts and hashes of 100,000 staged rows in memory, not in batches on disk (the
                # default 4 MB spilled the window and join steps); for this transaction only.
                cursor.execute("SET LOCAL work_mem = '64MB'")
            _drop_temporary(cursor)
            _create_temporary(cursor)
            try:
                _load(cursor, STAGE, STAGE_COLUMNS, staged.rows)
                self.staged = len(staged.rows)
                _load(cursor, STAGE_MAC, ("row_no", "mac"), staged.macs)
                _index_stage(cursor)
                for table in (CI, DEVICE, MAC):
                    _fresh_statistics(cursor, table)
                self.identify()
                self.keep_devices()
                self.apply_precedence()
                self.find_duplicates()
                self.count()
            finally:
                _drop_temporary(cursor)

    def identify(self) -> None:
        """Match every staged row to a CI, creating CIs for the rows nothing matches, in waves.

        Each wave joins the unmatched rows with the CIs once per rule: the CIs do not change within
        a wave, so a second pass could find nothing new there. Passes after the first look only for
        rows sharing an identity with a row bound meanwhile, by the rules whose identity some two
        staged rows share (none, usually: then one pass per wave)."""
        shared = self.shared_rules()
        while self.unmatched():
            found = sum(self.match(rule, cis=True, siblings=rule in shared) for rule in self.rules)
            while found and shared and self.unmatched():
                # a row matched may be what an unmatched one shares an identity with
                found = sum(
                    self.match(rule, cis=False, siblings=True) for rule in self.rules if rule in shared
                )
            if self.unmatched():
                self.create_representatives()
        _fresh_statistics(self.cursor, BOUND, self.staged)

    def shared_rules(self) -> set[str]:
        """The rules in force whose identity value (a MAC for the MAC rule) two staged rows share:
        only by those can a row match another row of this input."""
        # (grouped on the column's index: one pass; a self-join was planned as a nested loop)
        checks = {
            rule: f"EXISTS (SELECT 1 FROM {STAGE} WHERE {column} <> '' GROUP BY {column} HAVING COUNT(*) > 1)"
            for rule, (column,) in _SHARED_KEYS.items()
            if rule in self.rules
        }
        if "mac" in self.rules:  # (a row's MACs are distinct: staging drops repeats)
            checks["mac"] = f"EXISTS (SELECT 1 FROM {STAGE_MAC} GROUP BY mac HAVING COUNT(*) > 1)"
        if not checks:
            return set()
        names = list(checks)
        self.cursor.execute("SELECT " + ", ".join(f"CASE WHEN {checks[r]} THEN 1 ELSE 0 END" for r in names))
        row = self.cursor.fetchone() or ()
        return {rule for rule, flag in zip(names, row, strict=True) if flag}

    def unmatched(self) -> int:
        return self.staged - _scalar(self.cursor, f"SELECT COUNT(*) FROM {BOUND}")

    def match(self, rule: str, *, cis: bool = True, siblings: bool = True) -> int:
        """Bind the unmatched rows one rule identifies, with a CI (`cis`) or with a row of this
        input already bound (`siblings`): to the registered, then the oldest, CI found; several CIs
        found become duplicate candidates. Returns how many rows it bound."""
        cursor = self.cursor
        guards = " ".join(f"AND NOT {_CONFLICT[g]}" for g in _GUARDS[rule])
        selects = [
            f"SELECT s.row_no, ci.id, CASE WHEN ci.status = 'discovered' THEN 1 ELSE 0 END "
            f"FROM {STAGE} s {join} WHERE {UNBOUND} AND ci.status <> 'retired' "
            f"AND {applicable} {guards}"
            for join, applicable in (_JOINS[rule] if cis else ())
        ]
        if siblings:
            join, applicable = _SIBLING_JOINS[rule]
            sibling_guards = " ".join(f"AND NOT {_SIBLING_CONFLICT[g]}" for g in _GUARDS[rule])
            selects.append(
                f"SELECT s.row_no, ci.id, CASE WHEN ci.status = 'discovered' THEN 1 ELSE 0 END "
                f"FROM {STAGE} s {join} JOIN {BOUND} ob ON ob.row_no = o.row_no "
                f"JOIN {CI} ci ON ci.id = ob.ci_id WHERE {UNBOUND} AND {applicable} {guards} {sibling_guards}"
            )
        if not selects:
            return 0
        # UNION ALL: a pair found twice is grouped below like any other (no sort to drop it here).
        cursor.execute(f"INSERT INTO {MATCH} (row_no, ci_id, pref) " + " UNION ALL ".join(selects))
        found = _scalar(cursor, f"SELECT COUNT(DISTINCT row_no) FROM {MATCH}")
        if not found:
            return 0
        # The chosen CI: registered before unregistered, then the lowest id (the oldest).
        cursor.execute(
            f"INSERT INTO {BOUND} (row_no, ci_id, rule) SELECT row_no, "
            f"MIN(pref * 1000000000000 + ci_id) %% 1000000000000, %s FROM {MATCH} GROUP BY row_no",
            [rule],
        )
        cursor.execute(
            f"SELECT b.ci_id, t.ci_id FROM {MATCH} t JOIN {BOUND} b ON b.row_no = t.row_no "
            "WHERE t.ci_id <> b.ci_id"
        )
        for chosen, other in cursor.fetchall():
            self.duplicate(chosen, other, f"rule:{rule}", "")
        cursor.execute(f"DELETE FROM {MATCH}")
        return found

    def create_representatives(self) -> None:
        """CIs for the unmatched rows that share no identity value with an earlier unmatched row
        (the others match these CIs in the next wave), in status discovered-unregistered. A row is
        the first of its value for every identity it has: window functions over the unmatched rows."""
        cursor = self.cursor
        firsts = []
        for rule in self.rules:
            for column in _SHARED_KEYS.get(rule, ()):
                shared = f"u.{column} <> ''" + (" AND u.ip_trusted = 1" if column == "ip" else "")
                firsts.append(
                    f"CASE WHEN {shared} THEN MIN(u.row_no) OVER (PARTITION BY u.{column}) ELSE u.row_no END"
                )
        first = " AND ".join(f"k.f{i} = k.row_no" for i in range(len(firsts))) or "1 = 1"
        columns = "".join(f", {expression} AS f{i}" for i, expression in enumerate(firsts))
        unbound = f"NOT EXISTS (SELECT 1 FROM {BOUND} b WHERE b.row_no = {{row}})"
        # Rows with a MAC an earlier unbound row has too (computed once, not per row).
        later = "SELECT 0 AS row_no WHERE 1 = 0"
        if "mac" in self.rules:
            later = (
                f"SELECT DISTINCT a.row_no FROM {STAGE_MAC} a JOIN (SELECT sm.mac, MIN(sm.row_no) AS first "
                f"FROM {STAGE_MAC} sm WHERE {unbound.format(row='sm.row_no')} GROUP BY sm.mac) f "
                "ON f.mac = a.mac WHERE f.first < a.row_no"
            )
        cursor.execute(
            f"WITH k AS (SELECT u.row_no{columns} FROM {STAGE} u WHERE {unbound.format(row='u.row_no')}), "
            f"later AS ({later}) "
            "SELECT s.row_no, s.source, s.kind, s.hostname, s.fqdn, s.serial, s.manufacturer, s.model, "
            "s.uuid, s.os_name, s.os_version, s.ip, s.mac, s.location, s.details "
            f"FROM k JOIN {STAGE} s ON s.row_no = k.row_no WHERE {first} "
            # NOT IN an uncorrelated subquery: computed once (a correlated NOT EXISTS on the CTE
            # was evaluated again for every row on SQLite)
            "AND s.row_no NOT IN (SELECT row_no FROM later) ORDER BY s.row_no"
        )
        rows = cursor.fetchall()
        cis = [self.new_ci(*row[1:-1], given=json.loads(row[-1] or "{}").get("extra", {})) for row in rows]
        ConfigurationItem.objects.bulk_create(cis, batch_size=500)
        _load(
            cursor,
            BOUND,
            ("row_no", "ci_id", "rule", "created"),
            [(row[0], ci.pk, "created", 1) for row, ci in zip(rows, cis, strict=True)],
        )
        # Their MACs, so the next wave's MAC rule finds them.
        cursor.execute(
            f"INSERT INTO {MAC} (ci_id, mac, first_seen_at) SELECT DISTINCT b.ci_id, sm.mac, %s "
            f"FROM {BOUND} b JOIN {STAGE_MAC} sm ON sm.row_no = b.row_no WHERE b.created = 1 "
            f"AND NOT EXISTS (SELECT 1 FROM {MAC} m WHERE m.mac = sm.mac AND m.ci_id = b.ci_id)",
            [self.adapt(self.now)],
        )
        self.created += [ci.pk for ci in cis]
        _fresh_statistics(cursor, CI, len(cis))
        _fresh_statistics(cursor, MAC, len(cis))
        self.write_audit(
            [
                self.audit_row(
                    ci.pk, ci.name, "create", audit.diff({}, audit.snapshot(ci)), "Found by discovery"
                )
                for ci in cis
            ]
        )

    def new_ci(
        self,
        source: str,
        kind: str,
        hostname: str,
        fqdn: str,
        serial: str,
        manufacturer: str,
        model: str,
        uuid: str,
        os_name: str,
        os_version: str,
        ip: str,
        mac: str,
        location: str,
        *,
        given: dict[str, Any],
    ) -> ConfigurationItem:
        """An unregistered CI for a device, named by its host name (or FQDN, IP, MAC, serial); a
        name, class or asset tag its source gives (a CMDB export's CSV) are taken as given."""
        values = {
            "fqdn": fqdn,
            "hostname": hostname,
            "serial_number": serial,
            "manufacturer": manufacturer,
            "model_name": model,
            "system_uuid": uuid,
            "mac_address": mac,
            "ip_address": ip,
            "os_name": os_name,
            "os_version": os_version,
            "location": location,
        }
        values = {k: (v or "") for k, v in values.items()}
        name = (
            str(given.get("name") or "")
            or hostname
            or fqdn
            or ip
            or mac
            or serial
            or uuid
            or "unnamed device"
        )
        given_class = str(given.get("ci_class") or "").lower()
        return ConfigurationItem(
            name=name[:200],
            ci_class=given_class
            if given_class in ConfigurationItem.CIClass.values
            else ci_class_for(kind, os_name),
            asset_tag=str(given.get("asset_tag") or "")[:100],
            ci_type=(kind or "")[:100],
            status=ConfigurationItem.Status.DISCOVERED,
            source="discovery",
            discovery_source=source,
            attribute_sources={k: [source, v] for k, v in values.items() if v},
            **values,
        )

    def keep_devices(self) -> None:
        """Per CI and source, the last observation: inserted when new, updated when newer or
        different; older ones change nothing. Only what changed is written."""
        cursor = self.cursor
        # One pass: the last observation per CI and source of this input (latest time, then last
        # row), held against the device kept: 1 = new, 2 = newer or different, 0 = nothing new.
        # When no CI was bound to two rows (the usual input: one row per device), every row is
        # the last of its CI: no window over the rows is needed.
        several = _scalar(cursor, f"SELECT COUNT(*) - COUNT(DISTINCT ci_id) FROM {BOUND}")
        last = (
            f"(SELECT t.row_no, ROW_NUMBER() OVER (PARTITION BY r.ci_id, t.source "
            f"ORDER BY t.seen_at DESC, t.row_no DESC) AS n FROM {STAGE} t "
            f"JOIN {BOUND} r ON r.row_no = t.row_no) w JOIN {STAGE} s ON s.row_no = w.row_no "
            if several
            else f"{STAGE} s "
        )
        # Only the rows with something new are kept (a re-run of the same input keeps none: no
        # 100,000-row write to a temporary table to find that nothing changed).
        cursor.execute(
            f"INSERT INTO {WINNER} (row_no, ci_id, rule, touched) SELECT row_no, ci_id, rule, touched "
            "FROM (SELECT s.row_no, b.ci_id, b.rule, CASE WHEN d.id IS NULL THEN 1 "
            "WHEN s.seen_at >= d.last_seen_at "
            "AND (s.fingerprint <> d.fingerprint OR s.seen_at > d.last_seen_at) "
            f"THEN 2 ELSE 0 END AS touched FROM {last}JOIN {BOUND} b ON b.row_no = s.row_no "
            f"LEFT JOIN {DEVICE} d ON d.ci_id = b.ci_id AND d.source = s.source"
            + (" WHERE w.n = 1" if several else "")
            + ") x WHERE x.touched > 0"
        )
        _fresh_statistics(cursor, WINNER, max(cursor.rowcount, 0))
        counts = dict.fromkeys((1, 2), 0)
        cursor.execute(f"SELECT touched, COUNT(*) FROM {WINNER} WHERE touched > 0 GROUP BY touched")
        counts.update({int(k): int(n) for k, n in cursor.fetchall()})
        touched = f"{STAGE} s JOIN {WINNER} w ON w.row_no = s.row_no"
        columns = ", ".join(DEVICE_VALUES)
        selected = ", ".join(
            _json(f"s.{c}") if c in ("addresses", "details") else f"s.{c}" for c in DEVICE_VALUES
        )
        if counts[1]:
            cursor.execute(
                f"INSERT INTO {DEVICE} (ci_id, source, first_seen_at, last_seen_at, last_run_id, rule, "
                f"{columns}) "
                f"SELECT w.ci_id, s.source, s.seen_at, s.seen_at, %s, w.rule, {selected} FROM {touched} "
                "WHERE w.touched = 1",
                [self.run.pk],
            )
            _fresh_statistics(cursor, DEVICE, counts[1])
        if counts[2]:
            assignments = ", ".join(
                f"{c} = {_json(f's.{c}') if c in ('addresses', 'details') else f's.{c}'}"
                for c in DEVICE_VALUES
            )
            cursor.execute(
                f"UPDATE {DEVICE} SET last_seen_at = s.seen_at, last_run_id = %s, rule = w.rule, "
                f"{assignments} FROM {touched} WHERE w.touched = 2 AND {DEVICE}.ci_id = w.ci_id "
                f"AND {DEVICE}.source = s.source",
                [self.run.pk],
            )
        new_macs = (
            f"FROM {STAGE_MAC} sm JOIN {STAGE} s ON s.row_no = sm.row_no "
            f"JOIN {WINNER} w ON w.row_no = s.row_no WHERE w.touched > 0 "
            f"AND NOT EXISTS (SELECT 1 FROM {MAC} m WHERE m.mac = sm.mac AND m.ci_id = w.ci_id)"
        )
        # The MACs not known for their CI yet (counted first: a run that changes nothing writes nothing).
        if (counts[1] or counts[2]) and _scalar(cursor, f"SELECT COUNT(*) {new_macs}"):
            cursor.execute(f"SELECT DISTINCT w.ci_id {new_macs}")
            self.new_mac_cis = {row[0] for row in cursor.fetchall()}
            cursor.execute(
                f"INSERT INTO {MAC} (ci_id, mac, first_seen_at) SELECT w.ci_id, sm.mac, MIN(s.seen_at) "
                f"{new_macs} GROUP BY w.ci_id, sm.mac"
            )

    # -- precedence

    def recheck_set(self) -> int:
        """The CIs whose attributes are decided again: devices changed in this run, an open drift,
        or edited since the last finished run (a person may have changed a value discovery wrote)."""
        cursor = self.cursor
        cursor.execute(f"INSERT INTO {RECHECK} (ci_id) SELECT DISTINCT ci_id FROM {WINNER} WHERE touched > 0")
        open_drift = DriftItem.objects.filter(status=Status.OPEN).values_list("ci_id", flat=True).distinct()
        last = (
            DiscoveryRun.objects.filter(status=DiscoveryRun.Status.FINISHED)
            .exclude(pk=self.run.pk)
            .aggregate(last=Max("finished_at"))["last"]
        )
        extra = set(open_drift)
        if last is not None:
            extra |= set(
                ConfigurationItem.objects.filter(updated_at__gt=last, discovered_devices__isnull=False)
                .exclude(status=ConfigurationItem.Status.RETIRED)
                .values_list("pk", flat=True)
                .distinct()
            )
        if extra:
            cursor.execute(f"SELECT ci_id FROM {RECHECK}")
            extra -= {row[0] for row in cursor.fetchall()}
            _load(cursor, RECHECK, ("ci_id",), [(pk,) for pk in sorted(extra)])
        return _scalar(cursor, f"SELECT COUNT(*) FROM {RECHECK}")

    def apply_precedence(self) -> None:
        """Decide every reconciled attribute of the CIs to recheck (precedence.decide) and write
        what changed: the values with their diff in the history, the first/last sighting, the
        value sources; drifts opened, changed or resolved. Read with two plain queries (a run may
        recheck every CI: model instances would cost more than the deciding)."""
        if not self.recheck_set():
            return
        cursor = self.cursor
        device_columns = list(dict.fromkeys(RECONCILED.values()))
        selected = ", ".join("d." + c for c in device_columns)
        cursor.execute(
            f"SELECT d.ci_id, d.source, d.first_seen_at, d.last_seen_at, {selected} "
            f"FROM {DEVICE} d JOIN {RECHECK} r ON r.ci_id = d.ci_id"
        )
        sightings: dict[int, list[Sighting]] = defaultdict(list)
        for row in cursor.fetchall():
            sightings[row[0]].append(
                Sighting(
                    row[1], _aware(row[2]), _aware(row[3]), dict(zip(device_columns, row[4:], strict=True))
                )
            )
        cursor.execute(
            f"SELECT c.id, c.name, c.version, c.first_seen_at, c.last_seen_at, c.discovery_source, "
            f"c.attribute_sources, {', '.join('c.' + a for a in RECONCILED)} "
            f"FROM {CI} c JOIN {RECHECK} r ON r.ci_id = c.id"
        )
        cis = cursor.fetchall()
        drifts = _existing_drifts(RawSQL(f"SELECT ci_id FROM {RECHECK}", []))  # noqa: S611 (our own table)
        ranks = rankings()
        stale_days = settings.TIKTING_DISCOVERY_STALE_DAYS
        message = f"Discovery run {self.run.pk} ({self.run.source_name})"
        updates: list[tuple[Any, ...]] = []
        audit_rows: list[tuple[Any, ...]] = []
        drift_new: list[DriftItem] = []
        drift_changed: list[DriftItem] = []
        drift_resolved: list[DriftItem] = []
        for pk, name, version, first_seen, last_seen, last_source, stored, *values in cis:
            seen = sightings.get(pk)
            if not seen:
                continue
            first_seen, last_seen = _aware(first_seen), _aware(last_seen)
            current = dict(zip(RECONCILED, values, strict=True))
            original = _json_value(stored)
            sources = dict(original)
            new_values = dict(current)
            changes: dict[str, list[Any]] = {}
            for decision in decide(current, original, seen, stale_days=stale_days, ranks=ranks):
                attribute = decision.attribute
                existing = drifts.pop((pk, attribute), None) if drifts else None
                if decision.action == "drift":
                    self.drift(pk, decision, existing or [], drift_new, drift_changed)
                    continue
                if existing:
                    drift_resolved += [d for d in existing if d.status == Status.OPEN]
                if decision.action == "write":
                    new_values[attribute] = decision.value
                    sources[attribute] = [decision.source, decision.value]
                    changes[attribute] = [decision.ci_value, decision.value]
                elif decision.value and decision.ci_source != decision.source:
                    rank = ranks[attribute]
                    if rank(decision.source) <= rank(decision.ci_source or MANUAL):
                        # the same value, now held on the authority of a higher source
                        sources[attribute] = [decision.source, decision.value]
            latest = seen[0] if len(seen) == 1 else max(seen, key=lambda s: (s.last_seen_at, s.source))
            new_first = min(s.first_seen_at for s in seen)
            if (
                changes
                or sources != original
                or (new_first, latest.last_seen_at, latest.source) != (first_seen, last_seen, last_source)
            ):
                bump = 1 if changes else 0
                updates.append(
                    (pk, *(new_values[a] for a in RECONCILED), new_first, latest.last_seen_at, latest.source,
                     sources, version + bump)
                )  # fmt: skip
            if changes:
                self.changed_cis.add(pk)
                if IDENTITY.intersection(changes):
                    self.identity_changed.add(pk)
                audit_rows.append(self.audit_row(pk, name, "update", changes, message))
        # Drifts left over: the attribute is no longer discovered, or no longer differs.
        for leftover in drifts.values():
            drift_resolved += [d for d in leftover if d.status == Status.OPEN]
        self.write_cis(updates)
        self.write_audit(audit_rows)
        self.write_drifts(drift_new, drift_changed, drift_resolved)

    def drift(
        self,
        pk: int,
        decision: Any,
        existing: list[DriftItem],
        new: list[DriftItem],
        changed: list[DriftItem],
    ) -> None:
        """Open (or bring up to date) the drift of one attribute; a drift rejected for these very
        values is not asked again."""
        ci_value, value = decision.ci_value[:255], decision.value[:255]
        if any(
            d.status == Status.REJECTED and (d.ci_value, d.discovered_value) == (ci_value, value)
            for d in existing
        ):
            return
        wanted = (ci_value, value, decision.source[:40], decision.ci_source[:40])
        current = next((d for d in existing if d.status == Status.OPEN), None)
        if current is not None:
            if (current.ci_value, current.discovered_value, current.source, current.ci_source) == wanted:
                return
            current.ci_value, current.discovered_value, current.source, current.ci_source = wanted
            current.run = self.run
            current.version += 1
            changed.append(current)
        else:
            new.append(
                DriftItem(
                    ci_id=pk,
                    attribute=decision.attribute,
                    ci_value=ci_value,
                    discovered_value=value,
                    source=wanted[2],
                    ci_source=wanted[3],
                    found_at=self.now,
                    run=self.run,
                )
            )
        self.drifts += 1

    def write_cis(self, updates: list[tuple[Any, ...]]) -> None:
        """One UPDATE … FROM a loaded table for every CI that changed."""
        if not updates:
            return
        adapt = self.adapt
        now = adapt(timezone.now())
        rows = [
            (
                *row[: 1 + len(RECONCILED)],
                adapt(row[-5]),
                adapt(row[-4]),
                row[-3],
                json.dumps(row[-2]),
                row[-1],
                now,
            )
            for row in updates
        ]
        cursor = self.cursor
        cursor.execute(f"DELETE FROM {CI_UPDATE}")
        _load(cursor, CI_UPDATE, CI_UPDATE_COLUMNS, rows)
        assignments = ", ".join(
            f"{c} = {_json(f'u.{c}') if c == 'attribute_sources' else f'u.{c}'}"
            for c in CI_UPDATE_COLUMNS[1:]
        )
        cursor.execute(f"UPDATE {CI} SET {assignments} FROM {CI_UPDATE} u WHERE {CI}.id = u.id")

    def write_drifts(self, new: list[DriftItem], changed: list[DriftItem], resolved: list[DriftItem]) -> None:
        DriftItem.objects.bulk_create(new, batch_size=1000)
        if changed:
            DriftItem.objects.bulk_update(
                changed,
                ["ci_value", "discovered_value", "source", "ci_source", "run", "version"],
                batch_size=500,
            )
        for item in resolved:
            item.status = Status.RESOLVED
            item.decided_at = self.now
            item.version += 1
        if resolved:
            DriftItem.objects.bulk_update(resolved, ["status", "decided_at", "version"], batch_size=500)

    # -- duplicates and counts

    def duplicate(self, a: int, b: int, reason: str, value: str) -> None:
        if a != b:
            self.duplicates.setdefault((min(a, b), max(a, b)), (reason[:30], value[:255]))

    def find_duplicates(self) -> None:
        """Pairs of CIs sharing an identity value, where one of them was created, changed an identity
        value or got a new MAC in this run, or was matched ambiguously; written when not known yet."""
        cursor = self.cursor
        suspects = set(self.created) | self.identity_changed | self.new_mac_cis
        if suspects:
            cursor.execute(f"DELETE FROM {RECHECK}")
            _load(cursor, RECHECK, ("ci_id",), [(pk,) for pk in sorted(suspects)])
            live = "a.status <> 'retired' AND b.status <> 'retired'"
            for reason, expression in (
                ("serial_number", "UPPER({t}.serial_number)"),
                ("system_uuid", "LOWER({t}.system_uuid)"),
                ("fqdn", "LOWER({t}.fqdn)"),
                ("hostname", "LOWER({t}.hostname)"),
                ("mac_address", "REPLACE(LOWER({t}.mac_address), '-', ':')"),
            ):
                left, right = expression.format(t="a"), expression.format(t="b")
                cursor.execute(
                    f"SELECT a.id, b.id, {left}, a.manufacturer, b.manufacturer, LOWER(a.fqdn), "
                    f"LOWER(b.fqdn) FROM {RECHECK} r JOIN {CI} a ON a.id = r.ci_id "
                    f"JOIN {CI} b ON {right} = {left} AND b.id <> a.id "
                    f"WHERE {left} <> '' AND {live}"
                )
                self.shared(reason, cursor.fetchall())
            cursor.execute(
                f"SELECT r.ci_id, m2.ci_id, m1.mac, '', '', '', '' FROM {RECHECK} r "
                f"JOIN {MAC} m1 ON m1.ci_id = r.ci_id "
                f"JOIN {MAC} m2 ON m2.mac = m1.mac AND m2.ci_id <> m1.ci_id "
                f"JOIN {CI} a ON a.id = m1.ci_id JOIN {CI} b ON b.id = m2.ci_id WHERE {live}"
            )
            self.shared("mac_address", cursor.fetchall())
        if not self.duplicates:
            return
        known: set[tuple[int, int]] = set()
        firsts = sorted({a for a, _b in self.duplicates})
        for start in range(0, len(firsts), 500):
            known |= set(
                DuplicateCandidate.objects.filter(ci_id__in=firsts[start : start + 500]).values_list(
                    "ci_id", "other_id"
                )
            )
        new = [
            DuplicateCandidate(
                ci_id=a, other_id=b, reason=reason, value=value, found_at=self.now, run=self.run
            )
            for (a, b), (reason, value) in sorted(self.duplicates.items())
            if (a, b) not in known
        ]
        DuplicateCandidate.objects.bulk_create(new, batch_size=1000)
        self.run.duplicate_candidates = len(new)

    def shared(self, reason: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """Duplicate pairs from (a, b, value, maker a, maker b, fqdn a, fqdn b) rows: placeholders,
        values shared too widely, different makers of one serial and different domains of one host
        name are no evidence."""
        members: dict[str, set[int]] = defaultdict(set)
        for a, b, value, *_rest in rows:
            members[value] |= {a, b}
        for a, b, value, maker_a, maker_b, fqdn_a, fqdn_b in rows:
            if len(members[value]) > MAX_DUPLICATE_GROUP:
                continue
            if reason == "serial_number":
                if not identity.serial_key(value):
                    continue
                key_a, key_b = (
                    identity.manufacturer_key(maker_a or ""),
                    identity.manufacturer_key(maker_b or ""),
                )
                if key_a and key_b and key_a != key_b:
                    continue
            if reason == "system_uuid" and not identity.uuid_key(value):
                continue
            if reason == "mac_address" and not identity.identity_mac(value):
                continue
            if reason == "hostname" and (
                fqdn_a and fqdn_b and fqdn_a != fqdn_b or value in identity.PLACEHOLDER_NAMES
            ):
                continue
            self.duplicate(a, b, reason, value)

    def count(self) -> None:
        run = self.run
        self.cursor.execute(f"SELECT DISTINCT ci_id FROM {BOUND} WHERE created = 0")
        matched = {row[0] for row in self.cursor.fetchall()}
        run.created_unregistered = len(self.created)
        run.updated = len(self.changed_cis & matched)
        run.confirmed = len(matched) - run.updated
        run.drifts = self.drifts
        run.stale = snapshot.stale_cis(self.now).count()

    # -- history

    def audit_row(
        self, pk: int, name: str, action: str, changes: dict[str, Any], message: str
    ) -> tuple[Any, ...]:
        """One core.AuditEntry row (audit.BULK_COLUMNS) of a CI's history, as audit.record() writes it."""
        return (
            self.audit_at,
            self.actor.pk if self.actor else None,
            self.request_id,
            action,
            self.ci_type,
            str(pk),
            str(name)[:200],
            self.ci_type,
            str(pk),
            json.dumps(changes),
            message[:300],
        )

    def write_audit(self, rows: list[tuple[Any, ...]]) -> None:
        """Bulk-load history rows (a run may change every CI: one COPY, not 100,000 model saves)."""
        if rows:
            _load(self.cursor, AuditEntry._meta.db_table, audit.BULK_COLUMNS, rows)


def _aware(value: Any) -> Any:
    """A datetime read with a plain query: SQLite gives it naive (UTC), PostgreSQL aware."""
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def _json_value(value: Any) -> dict[str, Any]:
    """A JSON column read with a plain query: text (SQLite, Django's psycopg loader) or parsed."""
    if isinstance(value, str):
        value = json.loads(value or "{}")
    return dict(value or {})


def _user(actor: Actor) -> User | None:
    return actor if isinstance(actor, User) and actor.pk else None


def _existing_drifts(in_recheck: RawSQL) -> dict[tuple[int, str], list[DriftItem]]:
    """The open and rejected drifts of the CIs to recheck, by (CI, attribute)."""
    found: dict[tuple[int, str], list[DriftItem]] = defaultdict(list)
    for item in DriftItem.objects.filter(ci_id__in=in_recheck, status__in=[Status.OPEN, Status.REJECTED]):
        found[(item.ci_id, item.attribute)].append(item)
    return found


def ci_class_for(kind: str, os_name: str) -> str:
    """The class a discovered device's CI starts with: from the kind the source gave, and for a
    computer from its OS (a server OS, Linux and the Unixes: server; anything else: workstation)."""
    if kind in KIND_CLASSES:
        return KIND_CLASSES[kind]
    if kind == "computer":
        os_text = os_name.lower()
        if any(word in os_text for word in SERVER_OS):
            return ConfigurationItem.CIClass.SERVER
        return ConfigurationItem.CIClass.WORKSTATION
    return ConfigurationItem.CIClass.OTHER


def reconcile(
    result: ParseResult,
    *,
    source_name: str,
    actor: Actor = None,
    file_name: str = "",
    scan_range: str = "",
    now: dt.datetime | None = None,
) -> DiscoveryRun:
    """Reconcile a parsed discovery input with the CMDB in one transaction and return its run.

    Creates a DiscoveryRun (source_name, format, file name or scan range, counts of every
    outcome, the parse errors and the unidentified devices); binds every device to a CI (creating
    unregistered ones), keeps each source's last values, writes attribute changes by precedence
    with their diff in each CI's history, opens drifts and duplicate candidates, and takes the
    day's accuracy snapshot. `now` is the time staleness and the snapshot are judged at (default:
    the start of the run). Raises ImproperlyConfigured for an unknown identification rule or a bad
    trusted range; nothing is written then.
    """
    started = timezone.now()
    as_of = now or started
    with transaction.atomic():
        run = DiscoveryRun.objects.create(
            source_name=source_name[:80],
            format=result.format[:40],
            file_name=file_name[:255],
            scan_range=scan_range[:200],
            started_at=started,
            actor=_user(actor),
        )
        Reconciliation(run, result, actor, as_of).execute()
        run.status = DiscoveryRun.Status.FINISHED
        run.finished_at = timezone.now()
        run.save()
        snapshot.take(as_of)
    return run
