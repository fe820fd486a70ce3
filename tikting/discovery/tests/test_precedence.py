"""Source precedence per attribute: a lower source never overwrites a higher one; drifts."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test.utils import override_settings
from django.utils import timezone

from tikting.cmdb.models import ConfigurationItem as CI
from tikting.core.audit import history_for
from tikting.discovery.models import Decision, DriftItem
from tikting.discovery.precedence import Sighting, decide, ranking
from tikting.discovery.reconcile import reconcile

from .factories import ci, obs, result, seen

pytestmark = pytest.mark.django_db

MAC = "00:1a:2b:3c:4d:5e"


def test_the_agent_beats_nmap_for_the_os_whichever_comes_first():
    reconcile(
        result(obs("nmap", macs=[MAC], ips=["10.0.0.5"], os_name="Linux 5.X", at=seen(5))), source_name="scan"
    )
    reconcile(
        result(obs(macs=[MAC], hostname="app-5", os_name="Debian GNU/Linux 12", at=seen(4))),
        source_name="agent",
    )
    server = CI.objects.get()
    assert server.os_name == "Debian GNU/Linux 12"
    # nmap's later guess is kept on its device, not written over the agent's answer
    reconcile(
        result(obs("nmap", macs=[MAC], ips=["10.0.0.5"], os_name="Linux 4.X", at=seen(1))), source_name="scan"
    )
    server.refresh_from_db()
    assert server.os_name == "Debian GNU/Linux 12"
    assert server.discovered_devices.get(source="nmap").os_name == "Linux 4.X"
    assert server.last_seen_at == seen(1).replace(microsecond=0) or server.last_seen_at is not None
    assert not DriftItem.objects.exists()  # the CI's value came from a higher source: nothing to ask


def test_a_person_wins_for_the_location_and_the_difference_is_a_drift_to_decide(cast):
    server = ci("srv-10", serial_number="S10", manufacturer="Dell", location="Room 101")
    agent = obs(serial="S10", manufacturer="Dell", extra={"location": "Basement"})
    run = reconcile(result(agent), source_name="agent")
    server.refresh_from_db()
    assert server.location == "Room 101"
    drift = DriftItem.objects.get()
    assert (drift.attribute, drift.ci_value, drift.discovered_value) == ("location", "Room 101", "Basement")
    assert (drift.source, drift.ci_source, drift.status, run.drifts) == ("glpi-agent", "manual", "open", 1)
    # asked once: the same finding again changes nothing
    again = reconcile(result(agent), source_name="agent")
    assert again.drifts == 0 and DriftItem.objects.count() == 1


def test_a_rejected_drift_is_not_asked_again_until_the_discovered_value_changes():
    ci("srv-11", serial_number="S11", manufacturer="Dell", location="Room 1")
    reconcile(
        result(obs(serial="S11", manufacturer="Dell", extra={"location": "Hall"}, at=seen(5))),
        source_name="a",
    )
    DriftItem.objects.update(status=Decision.REJECTED)
    reconcile(
        result(obs(serial="S11", manufacturer="Dell", extra={"location": "Hall"}, at=seen(4))),
        source_name="a",
    )
    assert DriftItem.objects.count() == 1
    reconcile(
        result(obs(serial="S11", manufacturer="Dell", extra={"location": "Lab"}, at=seen(3))), source_name="a"
    )
    assert DriftItem.objects.filter(status=Decision.OPEN).get().discovered_value == "Lab"


def test_a_drift_resolves_itself_when_the_values_agree_again():
    server = ci("srv-12", serial_number="S12", manufacturer="Dell", location="Room 1")
    reconcile(
        result(obs(serial="S12", manufacturer="Dell", extra={"location": "Hall"}, at=seen(5))),
        source_name="a",
    )
    CI.objects.filter(pk=server.pk).update(location="Hall", updated_at=timezone.now())  # a person corrects it
    reconcile(result(obs(hostname="other-host")), source_name="a")  # any later run rechecks open drifts
    assert DriftItem.objects.get().status == Decision.RESOLVED


def test_an_agent_overwrites_a_value_a_person_typed_with_the_diff_in_history():
    server = ci("srv-13", serial_number="S13", manufacturer="Dell", os_name="Windows 10")
    reconcile(result(obs(serial="S13", manufacturer="Dell", os_name="Windows 11")), source_name="a")
    server.refresh_from_db()
    assert server.os_name == "Windows 11"
    assert history_for(server).get().changes["os_name"] == ["Windows 10", "Windows 11"]


def test_nmap_does_not_overwrite_a_value_a_person_typed():
    server = ci("srv-14", mac_address=MAC, os_name="Windows Server 2019")
    run = reconcile(
        result(obs("nmap", macs=[MAC], os_name="Linux 3.X", ips=["10.0.0.8"])), source_name="scan"
    )
    server.refresh_from_db()
    assert server.os_name == "Windows Server 2019"
    assert DriftItem.objects.get().discovered_value == "Linux 3.X"
    assert server.ip_address == "10.0.0.8"  # where the CI had no value, any source may fill it
    assert run.updated == 1


def test_a_person_edit_after_discovery_counts_as_manual():
    reconcile(result(obs(hostname="app-15", macs=[MAC], extra={"location": "Rack 1"})), source_name="a")
    server = CI.objects.get()
    assert server.attribute_sources["location"] == ["glpi-agent", "Rack 1"]
    CI.objects.filter(pk=server.pk).update(location="Rack 2", updated_at=timezone.now())
    reconcile(
        result(obs(hostname="app-15", macs=[MAC], extra={"location": "Rack 1"}, at=seen(0.5))),
        source_name="a",
    )
    server.refresh_from_db()
    assert server.location == "Rack 2"
    assert DriftItem.objects.get().ci_source == "manual"


@override_settings(TIKTING_DISCOVERY_PRECEDENCE={"*": ["nmap", "manual", "glpi-agent"]})
def test_precedence_comes_from_the_settings():
    server = ci("srv-16", mac_address=MAC, os_name="Windows Server 2019")
    reconcile(result(obs("nmap", macs=[MAC], os_name="Linux 3.X")), source_name="scan")
    server.refresh_from_db()
    assert server.os_name == "Linux 3.X"


def test_a_source_that_stopped_reporting_gives_way_to_a_fresh_one():
    now = timezone.now()
    old = Sighting(
        "glpi-agent", now - dt.timedelta(days=90), now - dt.timedelta(days=60), {"os_name": "Windows 7"}
    )
    fresh = Sighting("nmap", now - dt.timedelta(days=1), now, {"os_name": "Windows 10"})
    decisions = {d.attribute: d for d in decide({}, {}, [old, fresh], stale_days=30)}
    assert (decisions["os_name"].value, decisions["os_name"].source) == ("Windows 10", "nmap")
    decisions = {d.attribute: d for d in decide({}, {}, [old, fresh], stale_days=120)}
    assert decisions["os_name"].value == "Windows 7"


def test_unlisted_sources_rank_after_the_listed_ones():
    rank = ranking("os_name", {"*": ["glpi-agent", "manual"]})
    assert sorted(["zeta", "manual", "alpha", "glpi-agent"], key=rank) == [
        "glpi-agent",
        "manual",
        "alpha",
        "zeta",
    ]
