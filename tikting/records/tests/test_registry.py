import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from tikting.core.audit import history_for
from tikting.core.exceptions import ConflictError, PermissionDeniedError
from tikting.incidents.models import Incident
from tikting.records import registry as R

pytestmark = pytest.mark.django_db


def test_every_kind_resolves_its_model():
    for kind in R.KINDS.values():
        assert kind.model._meta.label == kind.model_label
        for name in (*kind.list_fields, *kind.filter_fields):
            kind.model._meta.get_field(name)


def test_a_contributor_logs_an_incident_and_its_history_says_so(cast):
    incident = R.create_record(
        "incident",
        actor=cast.contributor,
        number="INC0001",
        short_description="Mail down",
        opened_at=timezone.now(),
        priority=2,
        service=cast.email,
    )
    assert history_for(incident).get().actor == cast.contributor
    incident = R.update_record(incident, actor=cast.contributor, expected_version=1, priority=1)
    entry = history_for(incident).filter(action="update").get()
    assert entry.changes["priority"] == [2, 1]


def test_viewers_cannot_create_and_bad_fields_are_named(cast):
    with pytest.raises(PermissionDeniedError):
        R.create_record("incident", actor=cast.viewer, number="X", opened_at=timezone.now())
    with pytest.raises(ValidationError) as err:
        R.create_record("incident", actor=cast.contributor, number="X", opened_at=timezone.now(), priority=9)
    assert "priority" in err.value.message_dict
    with pytest.raises(ValidationError) as err:
        R.create_record("incident", actor=cast.contributor, number="X", opened_at=timezone.now(), raw={})
    assert "raw" in err.value.message_dict


def test_a_stale_edit_conflicts(cast):
    incident = R.create_record("incident", actor=None, number="INC1", opened_at=timezone.now())
    R.update_record(incident, actor=cast.contributor, expected_version=1, category="network")
    with pytest.raises(ConflictError):
        R.update_record(incident, actor=cast.contributor, expected_version=1, category="mail")
    assert Incident.objects.get().category == "network"


def test_source_keys_are_unique_per_source(cast):
    now = timezone.now() - dt.timedelta(hours=1)
    R.create_record("incident", actor=None, number="A", opened_at=now, source="bpic2014", external_key="IM1")
    R.create_record(
        "incident", actor=None, number="B", opened_at=now, source="servicenow", external_key="IM1"
    )
    with pytest.raises(ValidationError):
        R.create_record(
            "incident", actor=None, number="C", opened_at=now, source="bpic2014", external_key="IM1"
        )
