"""Raising an improvement from a record (its page's button: /register/submit/?record=<kind>:<pk>):
the form comes filled in with the record's title and what it says, and the source channel its kind
and content call for; submitted as it is, the item keeps them and is linked to the record."""

import datetime as dt

import pytest
from django.utils import timezone

from tikting.improvement.models import Item, SourceLink
from tikting.records import registry as R

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def incident(cast, number, **data):
    data.setdefault("opened_at", NOW - dt.timedelta(days=3))
    return R.create_record("incident", actor=cast.admin, number=number, service=cast.email, **data)


RECORDS = {
    "major incident": (
        lambda cast: incident(
            cast,
            "INC1",
            short_description="Mail down for all staff",
            description="No mail from 9:00 to 11:30.",
            major=True,
            post_incident_review="The failover was never tested.",
        ),
        "post_incident_review",
        "Mail down for all staff",
        [
            "Raised from Incident INC1 (Mail down for all staff).",
            "No mail from 9:00 to 11:30.",
            "Post incident review: The failover was never tested.",
        ],
    ),
    "incident past its SLA": (
        lambda cast: (
            R.create_record(
                "sla", actor=cast.admin, name="Mail P1", service=cast.email, priority=1, resolution_minutes=60
            )
            and incident(
                cast,
                "INC2",
                short_description="Mailbox full",
                status="resolved",
                priority=1,
                resolved_at=NOW - dt.timedelta(hours=1),
            )
        ),
        "sla_breach",
        "Mailbox full",
        ["Raised from Incident INC2 (Mailbox full)."],
    ),
    "ordinary incident": (
        lambda cast: incident(cast, "INC3", short_description="Printer jam", description="Tray 2 again."),
        "staff_feedback",
        "Printer jam",
        ["Raised from Incident INC3 (Printer jam).", "Tray 2 again."],
    ),
    "change": (
        lambda cast: R.create_record(
            "change",
            actor=cast.admin,
            number="CHG1",
            title="Upgrade the mail gateway",
            opened_at=NOW - dt.timedelta(days=9),
            outcome="backed_out",
            pir_done=True,
            pir_notes="Rolled back: the new TLS settings broke two partners.",
        ),
        "change_review",
        "Upgrade the mail gateway",
        ["Raised from Change CHG1 (Upgrade the mail gateway).", "Rolled back: the new TLS settings"],
    ),
    "audit finding": (
        lambda cast: R.create_record(
            "audit-finding",
            actor=cast.admin,
            number="AUD1",
            title="Admin accounts without MFA",
            description="Four of twelve admin accounts have no second factor.",
            found_at=NOW.date(),
        ),
        "audit_finding",
        "Admin accounts without MFA",
        ["Raised from Audit finding AUD1 (Admin accounts without MFA).", "Four of twelve admin accounts"],
    ),
    "CSAT response": (
        lambda cast: R.create_record(
            "survey",
            actor=cast.admin,
            score=1,
            comment="Nobody called me back.\nI waited two days.",
            responded_at=NOW - dt.timedelta(days=1),
        ),
        "survey",
        "Nobody called me back.",
        ["Comment: Nobody called me back.\nI waited two days."],
    ),
    "problem": (
        lambda cast: R.create_record(
            "problem",
            actor=cast.admin,
            number="PRB1",
            title="Recurring mailbox quota errors",
            root_cause="Quota alerts go to an unread list.",
            opened_at=NOW - dt.timedelta(days=20),
        ),
        "problem",
        "Recurring mailbox quota errors",
        ["Raised from Problem PRB1 (Recurring mailbox quota errors).", "Root cause: Quota alerts go to"],
    ),
}


@pytest.mark.parametrize("case", list(RECORDS))
def test_the_form_is_filled_in_from_the_record(cast, login, case):
    make, channel, title, said = RECORDS[case]
    record = make(cast)
    kind = R.kind_for(record)
    assert kind is not None
    client = login(cast.contributor)
    response = client.get(f"/register/submit/?record={kind.slug}:{record.pk}")
    assert response.status_code == 200
    form = response.context["form"]
    assert form["source_channel"].value() == channel
    assert form["title"].value() == title
    for text in said:
        assert text in form["description"].value()
    page = response.content.decode()
    assert f'value="{title}"' in page  # in the input, not only in the form's memory

    # Submitted as filled in: the item keeps it all and is linked to its record.
    data = {
        name: form[name].value() or ""
        for name in ("title", "description", "practice", "service", "source_channel", "source_reference")
    }
    data.update(impact=3, effort=2, justification_type="operational")
    assert client.post("/register/submit/", data).status_code == 302
    item = Item.objects.get(title=title)
    assert item.source_channel == channel and said[0].split("\n")[0] in item.description
    assert SourceLink.objects.get(item=item).record == record
