"""Two people edit the same record: the second save is refused and shown field by field — as it
was opened (known from the audit trail), their change, yours — with the other person's name, the
form merged against the current version and one button to save it."""

import datetime as dt
import re

import pytest
from django.utils import timezone

from tikting.incidents.models import Incident
from tikting.records import registry as R
from tikting.test import form_data

pytestmark = pytest.mark.django_db

OPENED = timezone.now() - dt.timedelta(days=2)


def visible_text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.fixture
def record(cast):
    return R.create_record(
        "incident",
        actor=cast.contributor,
        number="INC0100",
        short_description="Mail bounces",
        status="new",
        priority=3,
        service=cast.email,
        opened_at=OPENED,
    )


def opened_form(client, record) -> dict:
    return form_data(client.get(f"/records/incident/{record.pk}/edit/").context["form"])


def test_the_conflict_shows_each_field_three_ways_with_names(cast, login, record):
    client = login(cast.contributor)
    data = opened_form(client, record)
    # Mia saves first: another service and priority; later the description too (two saves).
    R.update_record(record, actor=cast.manager, expected_version=1, service=cast.network, priority=2)
    R.update_record(Incident.objects.get(pk=record.pk), actor=cast.manager, description="Seen at 9:00")
    # Carl, on the form he opened before, changes the priority and the short description.
    data.update(priority="1", short_description="Mail bounces for all staff")
    response = client.post(f"/records/incident/{record.pk}/edit/", data)

    assert response.status_code == 409
    record.refresh_from_db()
    assert (record.short_description, record.priority, record.service) == ("Mail bounces", 2, cast.network)
    conflict = response.context["conflict"]
    assert conflict["by"] == "Mia Manager"  # the full name, not "mia" nor an id
    rows = {row["label"]: row for row in conflict["rows"]}
    assert set(rows) == {"Service", "Priority", "Description", "Short description"}
    # Opened values come from the audit trail: before both of Mia's saves.
    assert (rows["Service"]["opened"], rows["Service"]["theirs"]) == ("E-mail", "Network")
    assert rows["Service"]["they_changed"] and not rows["Service"]["you_changed"]
    assert rows["Description"]["opened"] == "—" and rows["Description"]["theirs"] == "Seen at 9:00"
    assert rows["Priority"]["clash"]  # both changed it, differently
    assert (rows["Priority"]["opened"], rows["Priority"]["theirs"], rows["Priority"]["yours"]) == (
        "3 - Moderate",
        "2 - High",
        "1 - Critical",
    )
    assert rows["Short description"]["you_changed"] and not rows["Short description"]["they_changed"]

    text = visible_text(response.content.decode())
    assert "Not saved: INC0100 was changed by Mia Manager" in text
    assert "Save my changes on top of theirs" in text
    assert "changed by someone else" not in text

    # The form is merged: their service and description, my priority and short description, and
    # the current version, so that one save applies it.
    merged = form_data(response.context["form"])
    assert merged["service"] == str(cast.network.pk) and merged["description"] == "Seen at 9:00"
    assert merged["priority"] == "1" and merged["short_description"] == "Mail bounces for all staff"
    assert merged["expected_version"] == "3"
    assert client.post(f"/records/incident/{record.pk}/edit/", merged).status_code == 302
    record.refresh_from_db()
    assert (record.priority, record.short_description, record.service, record.description) == (
        1,
        "Mail bounces for all staff",
        cast.network,
        "Seen at 9:00",
    )


def test_times_compare_by_instant_and_show_in_the_ui_format(cast, login, record):
    client = login(cast.contributor)
    data = opened_form(client, record)
    resolved = OPENED + dt.timedelta(hours=5)
    R.update_record(record, actor=cast.manager, expected_version=1, status="resolved", resolved_at=resolved)
    data["category"] = "mail"
    response = client.post(f"/records/incident/{record.pk}/edit/", data)
    assert response.status_code == 409
    rows = {row["label"]: row for row in response.context["conflict"]["rows"]}
    # the unchanged opened time is not a change of mine (the form's text vs the audit's ISO text)
    assert "Opened at" not in rows
    assert rows["Resolved at"]["theirs"] == timezone.localtime(resolved).strftime("%-d %b %Y, %H:%M")
    assert rows["Category"]["yours"] == "mail"
