"""Who may act on an item's children: an action's owner updates and completes it, an indicator's
owner records its measurements, whatever their role above viewer (permissions.py, services)."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from tikting.accounts.models import Role
from tikting.core.exceptions import PermissionDeniedError
from tikting.improvement import permissions as P
from tikting.improvement import services as S
from tikting.test import make_user, ready_item

pytestmark = pytest.mark.django_db


@pytest.fixture
def item(cast):
    return ready_item(cast)


@pytest.fixture
def action(cast, item):
    """An action of olga's item, given to carl (a contributor)."""
    return S.add_action(
        item,
        actor=cast.owner,
        title="Update the runbook",
        owner=cast.contributor,
        due_date=timezone.localdate() + dt.timedelta(days=5),
    )


def test_an_actions_owner_updates_and_completes_it(cast, action):
    done = S.update_action(action, actor=cast.contributor, expected_version=action.version, done=True)
    assert done.done and done.done_at is not None
    later = timezone.localdate() + dt.timedelta(days=9)
    moved = S.update_action(done, actor=cast.contributor, title="Runbook v2", due_date=later)
    assert (moved.title, moved.due_date) == ("Runbook v2", later)
    # Sending their own name again is no hand-over.
    S.update_action(moved, actor=cast.contributor, owner=cast.contributor, done=False)


def test_an_actions_owner_does_not_hand_it_over_add_or_remove_actions(cast, item, action):
    with pytest.raises(PermissionDeniedError, match="hand the action over"):
        S.update_action(action, actor=cast.contributor, owner=cast.other_owner)
    with pytest.raises(PermissionDeniedError):
        S.remove_action(action, actor=cast.contributor)
    with pytest.raises(PermissionDeniedError):
        S.add_action(item, actor=cast.contributor, title="Mine too")
    # The item's owner hands it over.
    assert S.update_action(action, actor=cast.owner, owner=cast.other_owner).owner == cast.other_owner


def test_others_cannot_touch_an_action_they_do_not_own(cast, item, action):
    stranger = make_user("cleo", Role.CONTRIBUTOR)
    for user in (stranger, cast.viewer, cast.other_owner):
        with pytest.raises(PermissionDeniedError):
            S.update_action(action, actor=user, done=True)
    # Of an item they do not own, an owner acts on the action they were given only.
    theirs = S.add_action(item, actor=cast.owner, title="Network side", owner=cast.other_owner)
    assert S.update_action(theirs, actor=cast.other_owner, done=True).done
    with pytest.raises(PermissionDeniedError):
        S.update_action(action, actor=cast.other_owner, done=True)


def test_a_viewer_is_given_no_action_and_a_demoted_owner_loses_it(cast, item, action):
    with pytest.raises(ValidationError) as error:
        S.add_action(item, actor=cast.owner, title="Read-only person", owner=cast.viewer)
    assert "owner" in error.value.message_dict
    with pytest.raises(ValidationError):
        S.update_action(action, actor=cast.owner, owner=cast.viewer)
    cast.contributor.role = Role.VIEWER
    cast.contributor.save()
    with pytest.raises(PermissionDeniedError):
        S.update_action(action, actor=cast.contributor, done=True)


def test_an_indicators_owner_records_measurements(cast, item):
    indicator = item.indicators.get()
    with pytest.raises(PermissionDeniedError):
        S.record_measurement(indicator, actor=cast.contributor, value="8")
    indicator = S.update_indicator(indicator, actor=cast.owner, owner=cast.contributor)
    measurement = S.record_measurement(indicator, actor=cast.contributor, value="8", note="from the tool")
    assert measurement.recorded_by == cast.contributor
    assert P.can_measure(cast.contributor, indicator)
    # Measuring is all they may do with it.
    with pytest.raises(PermissionDeniedError):
        S.update_indicator(indicator, actor=cast.contributor, target_value="5")
    for user in (cast.viewer, cast.other_owner, make_user("cleo", Role.CONTRIBUTOR)):
        with pytest.raises(PermissionDeniedError):
            S.record_measurement(indicator, actor=user, value="7")


def test_an_indicators_owner_is_a_contributor_or_above(cast, item):
    with pytest.raises(ValidationError) as error:
        S.add_indicator(item, actor=cast.owner, name="Reopen rate", owner=cast.viewer)
    assert "owner" in error.value.message_dict
    indicator = S.add_indicator(item, actor=cast.owner, name="Reopen rate", owner=cast.other_owner)
    assert S.record_measurement(indicator, actor=cast.other_owner, value="3").value == 3
    cast.other_owner.is_active = False
    cast.other_owner.save()
    assert not P.can_measure(cast.other_owner, indicator)


def test_an_import_creates_services_for_an_administrator_only(cast):
    """Services are reference data (docs/permissions.md): a manager's import that names an unknown
    service fails that row, naming it, even with create_services; an administrator's creates it,
    in the history."""
    from tikting.cmdb.models import Service
    from tikting.core.models import AuditEntry
    from tikting.improvement import io as IO

    rows = "external_id,title,service\nS-1,Mainframe batch,Mainframe\n"
    result = IO.import_items(io.StringIO(rows), actor=cast.manager, create_services=True)
    assert result.failed == 1
    assert "only an administrator creates services" in str(result.errors[0])
    assert not Service.objects.filter(name="Mainframe").exists()
    result = IO.import_items(io.StringIO(rows), actor=cast.admin, create_services=True)
    assert result.failed == 0
    service = Service.objects.get(name="Mainframe")
    assert AuditEntry.objects.filter(object_id=str(service.pk), action="create", actor=cast.admin).exists()
