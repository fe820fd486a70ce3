"""The reconciliation actions: who may act, what each changes, its history, conflicts."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from tikting.cmdb.models import ConfigurationItem as CI
from tikting.core.audit import history_for
from tikting.core.exceptions import ConflictError, PermissionDeniedError
from tikting.core.models import StatusChange
from tikting.discovery import services as S
from tikting.discovery.models import Decision, DiscoveredDevice, DriftItem, DuplicateCandidate, MacAddress
from tikting.discovery.reconcile import reconcile
from tikting.incidents.models import Incident

from .factories import ci, obs, result

pytestmark = pytest.mark.django_db

MAC = "00:1a:2b:3c:4d:5e"


def discovered(name: str = "pc-9") -> CI:
    reconcile(
        result(obs(hostname=name, macs=[MAC], kind="computer", os_name="Windows 11")), source_name="agents"
    )
    return CI.objects.get(name=name)


@pytest.mark.parametrize("role", ["viewer", "contributor", "owner"])
def test_only_managers_and_administrators_act(cast, role):
    device = discovered()
    with pytest.raises(PermissionDeniedError):
        S.register_ci(device, actor=getattr(cast, role))
    with pytest.raises(PermissionDeniedError):
        S.retire_ci(device, actor=getattr(cast, role))
    device.refresh_from_db()
    assert device.status == CI.Status.DISCOVERED


def test_registering_a_device_makes_it_a_registered_ci_with_history(cast):
    device = discovered()
    registered = S.register_ci(
        device, actor=cast.manager, expected_version=device.version, ci_class="server", owner=cast.owner.pk
    )
    assert (registered.status, registered.ci_class, registered.owner) == (
        CI.Status.ACTIVE,
        "server",
        cast.owner,
    )
    entry = history_for(registered).first()
    assert entry.actor == cast.manager and entry.changes["status"] == ["discovered", "active"]
    change = StatusChange.objects.get(object_id=str(device.pk))
    assert (change.old_status, change.new_status, change.actor) == ("discovered", "active", cast.manager)


def test_only_an_unregistered_device_can_be_registered(cast):
    server = ci("srv-1")
    with pytest.raises(ValidationError) as error:
        S.register_ci(server, actor=cast.admin)
    assert "not a discovered, unregistered device" in str(error.value.message_dict["status"])
    with pytest.raises(ValidationError) as error:
        S.register_ci(discovered(), actor=cast.admin, ci_class="spaceship")
    assert "ci_class" in error.value.message_dict


def test_a_stale_version_conflicts_and_changes_nothing(cast):
    device = discovered()
    with pytest.raises(ConflictError):
        S.register_ci(device, actor=cast.admin, expected_version=device.version + 1)
    device.refresh_from_db()
    assert device.status == CI.Status.DISCOVERED


def test_registering_several_is_all_or_none(cast):
    first = discovered("pc-1")
    reconcile(result(obs(hostname="pc-2")), source_name="agents")
    second = CI.objects.get(name="pc-2")
    server = ci("srv-2")
    with pytest.raises(ValidationError):
        S.register_cis([first, second, server], actor=cast.admin)
    assert CI.objects.filter(status=CI.Status.DISCOVERED).count() == 2
    S.register_cis([first, second], actor=cast.admin)
    assert not CI.objects.filter(status=CI.Status.DISCOVERED).exists()


def test_retiring_a_ci_says_when_it_was_last_seen(cast):
    server = ci("srv-3", last_seen_at=timezone.now())
    S.retire_ci(server, actor=cast.manager)
    server.refresh_from_db()
    assert server.status == CI.Status.RETIRED
    assert StatusChange.objects.get().reason.startswith("Retired from the CMDB health page (last seen ")
    with pytest.raises(ValidationError):
        S.retire_ci(server, actor=cast.manager)


def test_merging_moves_devices_macs_references_and_retires_the_other(cast):
    older = ci("web-1", serial_number="S-1", manufacturer="Dell", location="DC1")
    newer = discovered("web-1b")
    incident = Incident.objects.create(number="INC-1", opened_at=timezone.now(), ci=newer)
    pair = DuplicateCandidate.objects.create(
        ci=older, other=newer, reason="hostname", found_at=timezone.now()
    )
    kept = S.merge_duplicate(pair, actor=cast.admin, expected_version=pair.version)
    assert kept == older
    newer.refresh_from_db()
    incident.refresh_from_db()
    assert newer.status == CI.Status.RETIRED and incident.ci == older
    assert DiscoveredDevice.objects.get().ci == older and MacAddress.objects.get().ci == older
    older.refresh_from_db()
    assert older.mac_address == MAC and older.os_name == "Windows 11"  # what it lacked
    assert older.location == "DC1"  # what it had stays
    entry = history_for(older).first()
    assert "Merged web-1b" in entry.message and "1 incidents" in entry.message
    pair.refresh_from_db()
    assert (pair.status, pair.decided_by) == (Decision.MERGED, cast.admin)


def test_merging_can_keep_the_newer_one_and_repoints_other_candidates(cast):
    a, b, c = ci("a"), ci("b"), ci("c")
    pair = DuplicateCandidate.objects.create(ci=a, other=b, reason="fqdn", found_at=timezone.now())
    other = DuplicateCandidate.objects.create(ci=a, other=c, reason="serial_number", found_at=timezone.now())
    assert S.merge_duplicate(pair, actor=cast.admin, keep=b) == b
    a.refresh_from_db()
    other.refresh_from_db()
    assert a.status == CI.Status.RETIRED
    assert (other.ci_id, other.other_id, other.status) == (b.pk, c.pk, Decision.OPEN)
    with pytest.raises(ValidationError):
        S.merge_duplicate(pair, actor=cast.admin)  # decided already


def test_a_dismissed_pair_is_not_raised_again(cast):
    a = ci("x", hostname="shared")
    b = ci("y", hostname="shared")
    reconcile(result(obs(hostname="shared")), source_name="agents")
    pair = DuplicateCandidate.objects.get()
    S.dismiss_duplicate(pair, actor=cast.manager)
    reconcile(result(obs(hostname="shared", at=timezone.now().replace(microsecond=0))), source_name="agents")
    assert DuplicateCandidate.objects.get().status == Decision.DISMISSED
    assert history_for(a).filter(message__startswith="Not a duplicate").exists()
    assert b.pk


def test_accepting_a_drift_takes_the_discovered_value_on_that_sources_authority(cast):
    server = ci("srv-4", serial_number="S4", manufacturer="Dell", location="Room 1")
    reconcile(result(obs(serial="S4", manufacturer="Dell", extra={"location": "Room 2"})), source_name="a")
    drift = DriftItem.objects.get()
    S.accept_drift(drift, actor=cast.manager, expected_version=drift.version)
    server.refresh_from_db()
    assert server.location == "Room 2"
    assert server.attribute_sources["location"] == ["glpi-agent", "Room 2"]
    assert history_for(server).first().changes["location"] == ["Room 1", "Room 2"]
    drift.refresh_from_db()
    assert drift.status == Decision.ACCEPTED


def test_accepting_a_drift_whose_ci_changed_since_conflicts(cast):
    server = ci("srv-5", serial_number="S5", manufacturer="Dell", location="Room 1")
    reconcile(result(obs(serial="S5", manufacturer="Dell", extra={"location": "Room 2"})), source_name="a")
    CI.objects.filter(pk=server.pk).update(location="Room 3")
    with pytest.raises(ConflictError):
        S.accept_drift(DriftItem.objects.get(), actor=cast.manager)
    assert DriftItem.objects.get().status == Decision.OPEN


def test_rejecting_a_drift_keeps_the_ci_value_and_records_why(cast):
    server = ci("srv-6", serial_number="S6", manufacturer="Dell", location="Room 1")
    reconcile(result(obs(serial="S6", manufacturer="Dell", extra={"location": "Room 2"})), source_name="a")
    S.reject_drift(DriftItem.objects.get(), actor=cast.admin)
    server.refresh_from_db()
    assert server.location == "Room 1"
    assert history_for(server).filter(message__startswith="Drift rejected: location stays 'Room 1'").exists()
