"""Dates on a record page: one format, in the configured time zone, each time once, and no
"created/updated" time that only says when the row was stored or repeats the record's own dates."""

import datetime as dt
import re

import pytest
from django.test import override_settings

from tikting.incidents.models import Incident, IncidentActivity
from tikting.records import registry as R

pytestmark = pytest.mark.django_db

OPENED = dt.datetime(2025, 12, 5, 7, 17, tzinfo=dt.UTC)


def visible_text(html: str) -> str:
    html = re.sub(r"<(script|style).*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.fixture
def imported(cast):
    """An incident as an import leaves it: created and updated at its own opened and closed times."""
    record = R.create_record(
        "incident",
        actor=cast.admin,
        number="INC0042",
        short_description="Cannot post invoice",
        status="closed",
        opened_at=OPENED,
        resolved_at=OPENED + dt.timedelta(days=4),
        closed_at=OPENED + dt.timedelta(days=7),
        service=cast.email,
    )
    assert isinstance(record, Incident)
    Incident.objects.filter(pk=record.pk).update(created_at=OPENED, updated_at=OPENED + dt.timedelta(days=7))
    IncidentActivity.objects.create(incident=record, at=OPENED, activity_type="Open", source="demo")
    IncidentActivity.objects.create(
        incident=record, at=OPENED + dt.timedelta(days=4), activity_type="Resolved", note="Resolved by caller"
    )
    return record


@override_settings(TIME_ZONE="Europe/Paris")
def test_each_time_once_in_the_ui_format_and_time_zone(cast, login, imported):
    text = visible_text(login(cast.viewer).get(f"/records/incident/{imported.pk}/").content.decode())
    assert "Opened at 5 Dec 2025, 08:17" in text  # 07:17 UTC, shown in Paris time
    assert not re.search(r"\d{4}-\d{2}-\d{2}", text)  # no raw ISO date anywhere
    # the activities: kind and note, the time in its own column only
    assert "Open 5 Dec 2025, 08:17" in text
    assert "Resolved · Resolved by caller 9 Dec 2025, 08:17" in text
    assert "Open at" not in text
    # stored when it was opened and last changed when closed: nothing to add
    assert "Created at" not in text and "Updated at" not in text
    assert "Recorded in tikting" not in text and "Last changed in tikting" not in text


def test_a_record_entered_by_hand_says_when_it_was_recorded_once(cast, login):
    ci = R.create_record("ci", actor=cast.admin, name="SW-CORE-01")
    text = visible_text(login(cast.viewer).get(f"/records/ci/{ci.pk}/").content.decode())
    assert text.count("Recorded in tikting") == 1
    assert "Last changed in tikting" not in text  # the same moment: said once


def test_history_shows_dates_as_the_page_does(cast, login, imported):
    R.update_record(imported, actor=cast.admin, closed_at=OPENED + dt.timedelta(days=8))
    text = visible_text(login(cast.viewer).get(f"/records/incident/{imported.pk}/").content.decode())
    assert re.search(r"Closed at ?: 12 Dec 2025, 07:17 → 13 Dec 2025, 07:17", text)
