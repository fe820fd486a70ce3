"""A record edited in its page keeps the seconds of the times nobody touched: the datetime-local
inputs show minutes, and a time that still shows its stored value is not a change."""

import datetime as dt

import pytest
from django.test import override_settings

from tikting.core.audit import history_for
from tikting.incidents.models import Incident
from tikting.records import forms as F
from tikting.records import registry as R

pytestmark = pytest.mark.django_db

OPENED = dt.datetime(2025, 12, 5, 7, 17, 42, 419918, tzinfo=dt.UTC)


def form_post(record, **changes):
    """What the edit page posts when the user changes `changes` and nothing else."""
    form = F.record_form_class(R.get_kind("incident"))(instance=record)
    data = {}
    for bf in form:
        value = bf.field.widget.format_value(bf.value())
        if value not in (None, ""):
            data[bf.html_name] = value
    data["expected_version"] = str(record.version)
    data.update(changes)
    return data


@pytest.fixture
def incident(cast):
    return R.create_record(
        "incident",
        actor=cast.admin,
        number="INC0777",
        short_description="VPN drops",
        status="in_progress",
        priority=3,
        opened_at=OPENED,
        responded_at=OPENED + dt.timedelta(minutes=9, seconds=13),
    )


@override_settings(TIME_ZONE="Europe/Paris")
def test_an_edit_of_the_priority_keeps_the_seconds_of_the_times(cast, login, incident):
    post = form_post(incident, priority="2")
    answer = login(cast.admin).post(f"/records/incident/{incident.pk}/edit/", post)
    assert answer.status_code == 302, answer.content.decode()[:500]
    stored = Incident.objects.get(pk=incident.pk)
    assert stored.priority == 2
    assert stored.opened_at == OPENED
    assert stored.responded_at == OPENED + dt.timedelta(minutes=9, seconds=13)
    changes = history_for(stored).filter(action="update").get().changes
    assert "opened_at" not in changes and "responded_at" not in changes
    assert changes["priority"] == [3, 2]


@override_settings(TIME_ZONE="Europe/Paris")
def test_a_time_the_user_changes_is_saved_as_typed(cast, login, incident):
    post = form_post(incident, opened_at="2025-12-05T08:20")  # Paris time: 07:20 UTC
    answer = login(cast.admin).post(f"/records/incident/{incident.pk}/edit/", post)
    assert answer.status_code == 302, answer.content.decode()[:500]
    stored = Incident.objects.get(pk=incident.pk)
    assert stored.opened_at == dt.datetime(2025, 12, 5, 7, 20, tzinfo=dt.UTC)
    assert stored.responded_at == OPENED + dt.timedelta(minutes=9, seconds=13)
