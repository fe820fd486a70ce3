"""The demo's dates hold together: what its history says happened when matches the records. The
services write today's date; the demo moves things back in time, and moves what tells of them too."""

import io

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db.models import Min
from django.utils import timezone

from tikting.audits.models import AuditFinding
from tikting.cmdb.models import ConfigurationItem
from tikting.core import audit
from tikting.core.models import AuditEntry
from tikting.governance.models import ReviewMeeting
from tikting.improvement.models import Action, Item
from tikting.incidents.models import Incident
from tikting.knowledge.models import Article
from tikting.service_requests.models import CatalogItem

pytestmark = pytest.mark.django_db


def test_actions_fall_due_between_their_plan_and_the_closure():
    call_command("demo", "--history-months", "1", stdout=io.StringIO())
    late = [
        (a.item.ref, a.due_date, a.item.closed_at)
        for a in Action.objects.filter(item__status="closed").select_related("item")
        if a.due_date and a.item.closed_at and a.due_date > timezone.localdate(a.item.closed_at)
    ]
    assert not late, f"actions due after their item closed: {late[:5]}"
    early = [
        (a.item.ref, a.due_date, a.created_at)
        for a in Action.objects.select_related("item")
        if a.due_date and a.due_date < timezone.localdate(a.created_at)
    ]
    assert not early, f"actions due before they were planned: {early[:5]}"

    # The timeline's last word on a date field is the item's value.
    ct = ContentType.objects.get_for_model(Item)
    for item in Item.objects.all():
        for name in ("target_date", "control_until", "revisit_date"):
            entry = (
                AuditEntry.objects.filter(content_type=ct, object_id=str(item.pk), changes__has_key=name)
                .order_by("-id")
                .first()
            )
            if entry is not None:
                assert entry.changes[name][1] == audit.plain(getattr(item, name)), (item.ref, name)

    # A review's minutes, holding and closing are in the history when the review was held.
    held = ReviewMeeting.objects.exclude(held_at=None).get()
    assert held.held_at is not None and held.closed_at is not None
    minutes = AuditEntry.objects.filter(message__startswith="Review minute")
    assert minutes.exists()
    assert {e.at for e in minutes} == {held.held_at}
    closing = AuditEntry.objects.filter(message__startswith="Review closed").get()
    assert closing.at == held.closed_at

    # Reference data was recorded before the history that uses it; findings when found.
    first_incident = Incident.objects.aggregate(first=Min("opened_at"))["first"]
    for model in (ConfigurationItem, CatalogItem, Article):
        assert not model.objects.filter(source="demo", created_at__gt=first_incident).exists(), model
    for finding in AuditFinding.objects.filter(source="demo"):
        assert timezone.localdate(finding.created_at) == finding.found_at
