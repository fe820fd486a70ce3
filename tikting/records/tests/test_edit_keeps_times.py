"""A record edited in its page keeps the seconds of the times nobody touched: the datetime-local
inputs show minutes, and a time that still shows its stored value is not a change."""

import datetime as dt

import pytest
from django.test import override_settings

from tikting.core.audit import history_for
from tikting.incidents.models import Incident
from tikting.records import registry as R
from tikting.test import form_data

pytestmark = pytest.mark.django_db

OPENED = dt.datetime(2025, 12, 5, 7, 17, 42, 419918, tzinfo=dt.UTC)


def form_post(client, record, **changes):
    """What the edit page posts when the user changes `changes` and nothing else."""
    return {**form_data(client.get(f"/records/incident/{record.pk}/edit/").context["form"]), **changes}


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
    client = login(cast.admin)
    answer = client.post(f"/records/incident/{incident.pk}/edit/", form_post(client, incident, priority="2"))
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
    client = login(cast.admin)
    post = form_post(client, incident, opened_at="2025-12-05T08:20")  # Paris time: 07:20 UTC
    answer = client.post(f"/records/incident/{incident.pk}/edit/", post)
    assert answer.status_code == 302, answer.content.decode()[:500]
    stored = Incident.objects.get(pk=incident.pk)
    assert stored.opened_at == dt.datetime(2025, 12, 5, 7, 20, tzinfo=dt.UTC)
    assert stored.responded_at == OPENED + dt.timedelta(minutes=9, seconds=13)
