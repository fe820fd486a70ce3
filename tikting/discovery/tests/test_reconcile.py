"""Reconciliation: identification rules and their order, outcomes, transactions and idempotence."""

from __future__ import annotations

import re

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings

from tikting.cmdb.models import ConfigurationItem as CI
from tikting.core.audit import history_for
from tikting.core.models import AuditEntry
from tikting.discovery import reconcile as R
from tikting.discovery.models import (
    AccuracySnapshot,
    DiscoveredDevice,
    DiscoveryRun,
    DriftItem,
    DuplicateCandidate,
    MacAddress,
)
from tikting.discovery.observations import ParseError
from tikting.discovery.reconcile import reconcile

from .factories import ci, obs, result, seen

pytestmark = pytest.mark.django_db

MAC = "00:1a:2b:3c:4d:5e"
OTHER_MAC = "00:1a:2b:3c:4d:5f"


def device_of(ci_obj: CI, source: str = "glpi-agent") -> DiscoveredDevice:
    return DiscoveredDevice.objects.get(ci=ci_obj, source=source)


# --- Outcomes -----------------------------------------------------------------------------------


def test_a_device_the_cmdb_lacks_becomes_an_unregistered_ci(cast):
    run = reconcile(
        result(
            obs(
                hostname="pc-17.corp.example",
                serial="5CG1234XYZ",
                manufacturer="HP",
                model="EliteBook 840",
                os_name="Windows 11 Pro",
                macs=[MAC],
                ips=["10.1.2.17"],
            )
        ),
        source_name="agents",
        actor=cast.admin,
    )
    found = CI.objects.get()
    assert found.status == CI.Status.DISCOVERED  # never silently registered
    assert (found.name, found.hostname, found.fqdn) == ("pc-17", "pc-17", "pc-17.corp.example")
    assert (found.serial_number, found.mac_address, found.ip_address) == ("5CG1234XYZ", MAC, "10.1.2.17")
    assert found.ci_class == CI.CIClass.WORKSTATION
    assert found.attribute_sources["os_name"] == ["glpi-agent", "Windows 11 Pro"]
    assert found.last_seen_at is not None and found.discovery_source == "glpi-agent"
    assert (run.created_unregistered, run.confirmed, run.updated, run.observed) == (1, 0, 0, 1)
    assert run.status == DiscoveryRun.Status.FINISHED and run.actor == cast.admin
    created = history_for(found).get()
    assert created.action == "create" and created.actor == cast.admin
    assert created.changes["status"] == [None, "discovered"]
    assert list(MacAddress.objects.values_list("mac", flat=True)) == [MAC]


def test_hosts_reported_down_and_devices_without_identity_are_left_out():
    run = reconcile(
        result(
            obs("nmap", hostname="up-host", ips=["192.0.2.1"]),
            obs("nmap", hostname="down-host", ips=["192.0.2.2"], up=False),
            obs("nmap", ips=["192.0.2.3"], where="host[3] 192.0.2.3"),
            fmt="nmap-xml",
            errors=[ParseError("line 40", "unclosed <host>")],
        ),
        source_name="scan",
    )
    assert (run.observed, run.down, run.unidentified, run.created_unregistered) == (3, 1, 1, 1)
    assert run.errors == 1
    assert run.error_details[0] == {"where": "line 40", "message": "unclosed <host>"}
    assert run.error_details[1]["where"] == "host[3] 192.0.2.3"
    assert "No identity" in run.error_details[1]["message"]
    assert list(CI.objects.values_list("name", flat=True)) == ["up-host"]


def test_rows_of_one_device_in_one_input_make_one_ci_and_keep_the_latest():
    early, late = seen(3), seen(1)
    run = reconcile(
        result(
            obs("nmap", at=late, macs=[MAC], ips=["10.0.0.9"], os_name="Linux 5.X"),
            obs("nmap", at=early, macs=[MAC], ips=["10.0.0.8"], os_name="Linux 4.X"),
            fmt="nmap-xml",
        ),
        source_name="scan",
    )
    assert run.created_unregistered == 1
    found = CI.objects.get()
    device = device_of(found, "nmap")
    assert (device.ip, device.os_name, device.last_seen_at) == ("10.0.0.9", "Linux 5.X", late)
    assert found.ip_address == "10.0.0.9"


def test_an_identified_ci_is_confirmed_and_updated_with_the_diff_in_its_history(cast):
    server = ci("web-01", serial_number="CZ123", manufacturer="HPE", os_name="Windows Server 2016")
    run = reconcile(
        result(obs(serial="cz123", manufacturer="HPE", hostname="web-01", os_name="Windows Server 2022")),
        source_name="agents",
        actor=cast.admin,
    )
    server.refresh_from_db()
    assert (run.updated, run.confirmed, run.created_unregistered) == (1, 0, 0)
    assert server.status == CI.Status.ACTIVE
    assert server.os_name == "Windows Server 2022"
    assert server.version == 2
    entry = history_for(server).get()
    assert entry.actor == cast.admin and entry.message.startswith(f"Discovery run {run.pk}")
    assert entry.changes["os_name"] == ["Windows Server 2016", "Windows Server 2022"]
    assert entry.changes["hostname"] == ["", "web-01"]
    assert device_of(server).rule == "serial_manufacturer"


# --- Identification rules ---------------------------------------------------------------------


def test_serial_and_manufacturer_identify_a_ci_whatever_the_spelling():
    laptop = ci("laptop", serial_number="PF1ABC", manufacturer="LENOVO")
    reconcile(result(obs(serial=" pf1abc ", manufacturer="Lenovo Group Ltd.")), source_name="agents")
    assert device_of(laptop).rule == "serial_manufacturer"
    assert CI.objects.count() == 1


def test_one_serial_from_two_manufacturers_is_two_devices():
    ci("dell box", serial_number="ABC123", manufacturer="Dell Inc.", hostname="dell-box")
    run = reconcile(result(obs(serial="ABC123", manufacturer="Cisco", hostname="switch-9")), source_name="x")
    assert run.created_unregistered == 1
    assert not DuplicateCandidate.objects.exists()  # a serial of two makers is no evidence


def test_placeholder_serials_and_uuids_identify_nothing():
    ci("one", serial_number="To Be Filled By O.E.M.", system_uuid="03000200-0400-0500-0006-000700080009")
    run = reconcile(
        result(
            obs(
                serial="To Be Filled By O.E.M.",
                uuid="03000200-0400-0500-0006-000700080009",
                hostname="two",
            )
        ),
        source_name="x",
    )
    assert run.created_unregistered == 1
    assert CI.objects.get(status=CI.Status.DISCOVERED).serial_number == ""


def test_the_system_uuid_identifies_a_ci():
    vm = ci("vm-1", ci_class=CI.CIClass.VM, system_uuid="4216A3B2-1C2D-3E4F-5A6B-7C8D9E0F1A2B")
    reconcile(
        result(obs(uuid="4216a3b2-1c2d-3e4f-5a6b-7c8d9e0f1a2b", kind="virtual_machine")), source_name="x"
    )
    assert device_of(vm).rule == "uuid"


def test_a_mac_address_identifies_a_ci_in_any_spelling():
    printer = ci("printer-2", ci_class=CI.CIClass.PRINTER, mac_address="00-1A-2B-3C-4D-5E")
    reconcile(result(obs("netdiscovery", macs=["001a.2b3c.4d5e"], kind="printer")), source_name="snmp")
    assert device_of(printer, "netdiscovery").rule == "mac"


def test_a_mac_another_source_reported_identifies_the_ci():
    """The agent lists both interfaces; nmap sees the second one only."""
    reconcile(result(obs(hostname="db-1", macs=[MAC, OTHER_MAC], serial="S-DB1")), source_name="agents")
    run = reconcile(
        result(obs("nmap", macs=[OTHER_MAC], ips=["10.0.0.4"]), fmt="nmap-xml"), source_name="scan"
    )
    assert (run.confirmed + run.updated, run.created_unregistered) == (1, 0)
    assert device_of(CI.objects.get(), "nmap").rule == "mac"


def test_random_and_virtual_macs_identify_nothing():
    ci("phone", mac_address="02:00:00:aa:bb:cc")  # locally administered: randomised
    run = reconcile(
        result(obs("nmap", macs=["02:00:00:aa:bb:cc"], ips=["10.0.0.7"], virtual=[MAC]), fmt="nmap-xml"),
        source_name="scan",
    )
    assert run.unidentified == 1  # no name, no real MAC, no trusted IP
    assert not DiscoveredDevice.objects.exists()


def test_the_fqdn_then_the_host_name_then_the_ci_name_identify_a_ci():
    by_fqdn = ci("mail", fqdn="mail.corp.example")
    by_host = ci("Files", hostname="files")
    by_name = ci("PRINT-SRV")
    reconcile(
        result(
            obs(hostname="MAIL.corp.example.", where="a"),
            obs(hostname="files.branch.example", where="b"),
            obs(hostname="print-srv", where="c"),
        ),
        source_name="agents",
    )
    assert device_of(by_fqdn).rule == "fqdn"
    assert device_of(by_host).rule == "hostname"
    assert device_of(by_name).rule == "hostname"
    assert CI.objects.count() == 3


def test_an_ip_address_identifies_a_ci_only_inside_a_trusted_range():
    router = ci("core-router", ci_class=CI.CIClass.NETWORK, ip_address="10.20.0.1")
    scan = result(obs("nmap", ips=["10.20.0.1"], kind="unknown"), fmt="nmap-xml")
    run = reconcile(scan, source_name="scan")
    assert run.unidentified == 1 and not DiscoveredDevice.objects.exists()
    with override_settings(TIKTING_DISCOVERY_TRUSTED_RANGES=["10.20.0.0/24"]):
        run = reconcile(scan, source_name="scan")
    assert run.unidentified == 0
    assert device_of(router, "nmap").rule == "ip"


def test_the_rules_are_tried_in_the_configured_order():
    by_serial = ci("by serial", serial_number="SER-1", manufacturer="Dell")
    ci("app-1")
    reconcile(result(obs(serial="SER-1", manufacturer="Dell", hostname="app-1")), source_name="a")
    assert device_of(by_serial).rule == "serial_manufacturer"
    ci("by serial 2", serial_number="SER-2", manufacturer="Dell")
    by_name = ci("app-2")
    with override_settings(TIKTING_DISCOVERY_IDENTIFICATION=["hostname", "serial_manufacturer"]):
        reconcile(result(obs(serial="SER-2", manufacturer="Dell", hostname="app-2")), source_name="a")
    assert device_of(by_name).rule == "hostname"


def test_a_rule_left_out_of_the_settings_is_not_used():
    ci("app-2", mac_address=MAC)
    with override_settings(TIKTING_DISCOVERY_IDENTIFICATION=["serial_manufacturer", "uuid", "hostname"]):
        run = reconcile(result(obs("nmap", macs=[MAC], ips=["10.0.0.2"]), fmt="nmap-xml"), source_name="s")
    assert run.unidentified == 1


def test_an_unknown_rule_is_refused_and_nothing_is_written():
    with (
        override_settings(TIKTING_DISCOVERY_IDENTIFICATION=["serial", "mac"]),
        pytest.raises(ImproperlyConfigured, match="unknown rule serial"),
    ):
        reconcile(result(obs(hostname="x")), source_name="s")
    assert not DiscoveryRun.objects.exists() and not CI.objects.exists()


def test_a_conflicting_stronger_identity_refuses_a_weaker_match():
    """Same host name, another serial: a new machine under an old name, not the old machine."""
    old = ci("web-02", hostname="web-02", serial_number="OLD-1", manufacturer="Dell")
    run = reconcile(result(obs(hostname="web-02", serial="NEW-9", manufacturer="Dell")), source_name="a")
    assert run.created_unregistered == 1
    new = CI.objects.get(status=CI.Status.DISCOVERED)
    pair = DuplicateCandidate.objects.get()
    assert (pair.ci, pair.other, pair.reason, pair.value) == (old, new, "hostname", "web-02")


def test_macs_that_share_nothing_refuse_a_match_by_name():
    ci("kiosk", hostname="kiosk", mac_address=MAC)
    run = reconcile(result(obs("nmap", hostname="kiosk", macs=[OTHER_MAC]), fmt="nmap-xml"), source_name="s")
    assert run.created_unregistered == 1


def test_a_device_matching_several_cis_goes_to_the_registered_oldest_and_flags_them():
    first = ci("db-7")
    second = ci("DB-7")
    unregistered = CI.objects.create(name="db-7", status=CI.Status.DISCOVERED)
    run = reconcile(result(obs(hostname="db-7")), source_name="a")
    assert device_of(first).rule == "hostname"
    assert run.duplicate_candidates == 2
    pairs = set(DuplicateCandidate.objects.values_list("ci", "other", "reason"))
    assert pairs == {(first.pk, second.pk, "rule:hostname"), (first.pk, unregistered.pk, "rule:hostname")}


def test_unmatched_rows_sharing_an_identity_make_one_ci():
    run = reconcile(
        result(
            obs(hostname="nas-1", serial="NAS1", manufacturer="Synology", where="agent"),
            obs("nmap", hostname="nas-1.corp.example", ips=["10.0.0.30"], where="scan"),
        ),
        source_name="mixed",
    )
    assert run.created_unregistered == 1
    assert set(DiscoveredDevice.objects.values_list("source", "rule")) == {
        ("glpi-agent", "created"),
        ("nmap", "hostname"),
    }


def test_a_row_bound_in_this_input_lends_its_identity_to_the_others():
    """The agent's row is bound by serial; nmap saw one of its MACs: the same CI, though no CI
    had that MAC before this input."""
    server = ci("srv-9", serial_number="S9", manufacturer="Dell")
    run = reconcile(
        result(
            obs("nmap", macs=[OTHER_MAC], ips=["10.0.0.9"], where="scan"),
            obs(serial="S9", manufacturer="Dell", macs=[MAC, OTHER_MAC], where="agent"),
        ),
        source_name="mixed",
    )
    assert run.created_unregistered == 0
    assert device_of(server, "nmap").rule == "mac"


def test_retired_cis_are_out_of_identification():
    ci("old-srv", hostname="old-srv", status=CI.Status.RETIRED)
    run = reconcile(result(obs(hostname="old-srv")), source_name="a")
    assert run.created_unregistered == 1


# --- Transactions and idempotence --------------------------------------------------------------

# A statement that writes, and the table it writes to ("N times: …" is how executemany is logged;
# COPY, as reconcile logs its bulk loads on PostgreSQL).
WRITE = re.compile(r'^\s*(?:\d+ times: )?(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM|COPY)\s+"?(\w+)', re.I)
# What a run may write whatever happens: its own row and its temporary tables.
OWN = re.compile(r"^(discovery_discoveryrun|tmp_discovery_\w+)$", re.I)


def writes(queries) -> list[str]:
    return [q["sql"] for q in queries if (m := WRITE.match(q["sql"])) and not OWN.match(m.group(1))]


def busy_input():
    """Every outcome at once: an update, a drift, a duplicate, new devices, a MAC rule match."""
    ci("srv-a", serial_number="A1", manufacturer="Dell", os_name="old", location="Room 1")
    ci("srv-b", hostname="shared")
    ci("srv-c", hostname="shared")
    return result(
        obs(serial="A1", manufacturer="Dell", os_name="Debian 12", macs=[MAC], extra={"location": "Room 9"}),
        obs(hostname="shared", where="b"),
        obs(hostname="new-1", macs=[OTHER_MAC], where="c"),
        obs("nmap", macs=[MAC], ips=["10.0.0.1"], where="d"),
        obs("nmap", hostname="new-2", ips=["10.0.0.2"], where="e"),
    )


def everything() -> tuple:
    """What a run could change, as it stands (a write a query log missed would show here)."""
    return (
        list(CI.objects.order_by("pk").values()),
        list(DiscoveredDevice.objects.order_by("pk").values()),
        list(MacAddress.objects.order_by("pk").values()),
        list(DriftItem.objects.order_by("pk").values()),
        list(DuplicateCandidate.objects.order_by("pk").values()),
        list(AccuracySnapshot.objects.order_by("pk").values()),
        AuditEntry.objects.count(),
    )


def test_importing_the_same_input_twice_writes_nothing_the_second_time():
    data = busy_input()
    first = reconcile(data, source_name="agents")
    assert first.updated and first.drifts and first.duplicate_candidates
    assert first.created_unregistered == 2  # new-1, new-2; the nmap MAC is srv-a's (a row of this input)
    before = everything()
    with CaptureQueriesContext(connection) as captured:
        second = reconcile(data, source_name="agents")
    assert writes(captured.captured_queries) == []
    assert (second.created_unregistered, second.updated, second.duplicate_candidates, second.drifts) == (
        0,
        0,
        0,
        0,
    )
    assert second.confirmed == first.confirmed + first.updated + first.created_unregistered
    assert everything() == before


def test_the_write_counter_sees_writes():
    """The check above could not pass by missing writes: a run with news is caught writing, the
    CIs' bulk update, their history's bulk load and the new devices' insert included."""
    reconcile(busy_input(), source_name="agents")
    with CaptureQueriesContext(connection) as captured:
        reconcile(
            result(
                obs(serial="A1", manufacturer="Dell", os_name="Debian 13", at=seen(0.5)),
                obs(hostname="new-3"),
            ),
            source_name="agents",
        )
    written = " ".join(writes(captured.captured_queries))
    for table in ("cmdb_configurationitem", "core_auditentry", "discovery_discovereddevice"):
        assert table in written, table


def test_a_run_that_fails_writes_nothing(monkeypatch):
    ci("srv-a", serial_number="A1", manufacturer="Dell")

    def broken(self):
        raise RuntimeError("disk full")

    monkeypatch.setattr(R.Reconciliation, "find_duplicates", broken)
    with pytest.raises(RuntimeError):
        reconcile(
            result(obs(serial="A1", manufacturer="Dell", os_name="x"), obs(hostname="y")), source_name="a"
        )
    assert CI.objects.count() == 1 and CI.objects.get().os_name == ""
    assert not DiscoveryRun.objects.exists() and not DiscoveredDevice.objects.exists()


def test_an_older_observation_changes_nothing():
    reconcile(result(obs(hostname="h1", os_name="new", at=seen(1))), source_name="a")
    run = reconcile(result(obs(hostname="h1", os_name="old", at=seen(10))), source_name="a")
    found = CI.objects.get()
    assert found.os_name == "new" and device_of(found).os_name == "new"
    assert (run.confirmed, run.updated) == (1, 0)


def test_a_newer_sighting_with_the_same_values_moves_last_seen_only():
    reconcile(result(obs(hostname="h2", at=seen(5))), source_name="a")
    later = seen(1)
    run = reconcile(result(obs(hostname="h2", at=later)), source_name="a")
    found = CI.objects.get()
    assert found.last_seen_at == later and found.version == 1
    assert (run.confirmed, run.updated) == (1, 0)
    assert history_for(found).count() == 1  # the creation only


# --- Stale CIs ----------------------------------------------------------------------------------


@override_settings(TIKTING_DISCOVERY_STALE_DAYS=30)
def test_in_scope_cis_not_seen_for_the_stale_window_are_counted_after_a_run():
    reconcile(result(obs(hostname="gone", at=seen(24 * 40))), source_name="a")
    CI.objects.update(status=CI.Status.ACTIVE, ci_class=CI.CIClass.SERVER)
    ci("never-seen")  # never seen is not stale (it is outside coverage instead)
    run = reconcile(result(obs(hostname="here")), source_name="a")
    assert run.stale == 1


def test_a_name_class_and_asset_tag_a_source_gives_are_taken_on_creation():
    reconcile(
        result(
            obs(
                "csv",
                hostname="pay-db-01",
                extra={"name": "Payroll DB", "ci_class": "Database", "asset_tag": "AT-9"},
            ),
            fmt="csv",
        ),
        source_name="cmdb export",
    )
    found = CI.objects.get()
    assert (found.name, found.ci_class, found.asset_tag, found.status) == (
        "Payroll DB",
        CI.CIClass.DATABASE,
        "AT-9",
        CI.Status.DISCOVERED,
    )


def test_an_identity_value_written_by_discovery_can_reveal_a_duplicate():
    """The agent's serial binds it to srv-x, whose host name it then writes: srv-y has that name."""
    x = ci("srv-x", serial_number="SX", manufacturer="Dell", hostname="old-name")
    y = ci("srv-y", hostname="web-7")
    run = reconcile(result(obs(serial="SX", manufacturer="Dell", hostname="web-7")), source_name="agents")
    x.refresh_from_db()
    assert x.hostname == "web-7" and run.duplicate_candidates == 1
    pair = DuplicateCandidate.objects.get()
    assert (pair.ci, pair.other, pair.reason) == (x, y, "hostname")
