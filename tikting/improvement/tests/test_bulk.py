"""Bulk actions on the register: each item through its own service, refusals reported per item."""

from __future__ import annotations

import csv
import io

import pytest
from django.http import FileResponse
from django.test import Client

from tikting.accounts.models import Team
from tikting.cadence import services as CS
from tikting.core.audit import history_for
from tikting.improvement import bulk as B
from tikting.improvement import services as S
from tikting.improvement.models import Item
from tikting.test import ready_item

pytestmark = pytest.mark.django_db


def test_move_a_step_reports_each_refusal_with_the_items_own_gaps(cast):
    ready = ready_item(cast, title="Ready")
    unready = ready_item(cast, title="No actions")
    unready.actions.all().delete()
    blocked = ready_item(cast, title="Blocked")
    S.set_blocked(blocked, actor=cast.owner, blocked=True, blocker="Waiting for budget")
    result = B.run("step", [ready.pk, unready.pk, blocked.pk], "action", actor=cast.owner)
    assert [o.ref for o in result.done] == [ready.ref]
    reasons = {o.ref: o.reason for o in result.refused}
    assert set(reasons) == {unready.ref, blocked.ref}
    assert "action" in reasons[unready.ref].lower()
    assert "blocked" in reasons[blocked.ref].lower()
    assert Item.objects.get(pk=ready.pk).status == "action"
    assert Item.objects.get(pk=unready.pk).status == "plan"  # a refusal changes nothing
    assert history_for(ready).filter(changes__has_key="status").exists()


def test_assigning_needs_a_manager_item_by_item(cast):
    items = [S.create_item(actor=cast.contributor, title=f"Idea {i}") for i in range(3)]
    ids = [i.pk for i in items]
    refused = B.run("owner", ids, str(cast.owner.pk), actor=cast.contributor)
    assert not refused.done and all("may not" in o.reason for o in refused.refused)
    done = B.run("owner", ids, str(cast.owner.pk), actor=cast.manager)
    assert len(done.done) == 3
    assert set(Item.objects.filter(pk__in=ids).values_list("owner", flat=True)) == {cast.owner.pk}
    for item in items:  # one history row per item
        assert history_for(item).filter(changes__has_key="owner").count() == 1


def test_service_and_practice_and_a_missing_item(cast):
    item = ready_item(cast)
    result = B.run("service", [item.pk, 999_999], str(cast.network.pk), actor=cast.manager)
    assert len(result.done) == 1 and result.refused[0].ref == "#999999"
    assert Item.objects.get(pk=item.pk).service == cast.network
    assert B.run("practice", [item.pk], "problem", actor=cast.manager).done
    assert Item.objects.get(pk=item.pk).practice == "problem"


def test_add_to_sprint_keeps_the_sprints_rules(cast):
    team = Team.objects.create(name="Desk")
    import datetime as dt

    from django.utils import timezone

    sprint = CS.create_sprint(
        actor=cast.manager,
        team=team,
        name="S1",
        goal="g",
        start=timezone.localdate(),
        end=timezone.localdate() + dt.timedelta(days=13),
    )
    first, second = ready_item(cast, title="A"), ready_item(cast, title="B")
    CS.add_sprint_item(sprint, actor=cast.manager, item=first)
    result = B.run("sprint", [first.pk, second.pk], str(sprint.pk), actor=cast.manager)
    assert [o.ref for o in result.done] == [second.ref]
    assert "already in this sprint" in result.refused[0].reason
    assert "sprint" in {a["key"] for a in B.offered(cast.owner)}
    assert "sprint" not in {a["key"] for a in B.offered(cast.contributor)}


def test_the_page_reports_and_viewers_only_export(cast):
    items = [ready_item(cast, title=f"Item {i}") for i in range(3)]
    ids = [str(i.pk) for i in items]
    client = Client()
    client.force_login(cast.manager)
    page = client.post("/register/bulk/", {"action": "owner", "owner": str(cast.other_owner.pk), "ids": ids})
    assert page.status_code == 200
    assert b"3</strong> done" in page.content
    viewer = Client()
    viewer.force_login(cast.viewer)
    assert viewer.post("/register/bulk/", {"action": "owner", "owner": "", "ids": ids}).status_code == 403
    export = viewer.post("/register/bulk/", {"action": "export", "ids": ids[:2]})
    assert export.status_code == 200
    assert isinstance(export, FileResponse)
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert sorted(r["title"] for r in rows) == ["Item 0", "Item 1"]
    nothing = client.post("/register/bulk/", {"action": "owner", "owner": ""})
    assert nothing.status_code == 400 and b"Select at least one row" in nothing.content
    owner = Client()
    owner.force_login(cast.contributor)
    assert owner.post("/register/bulk/", {"action": "owner", "owner": "", "ids": ids}).status_code == 403


def test_the_list_offers_checkboxes_and_the_bar(cast):
    ready_item(cast)
    client = Client()
    client.force_login(cast.manager)
    html = client.get("/register/").content.decode()
    assert "data-select-all" in html and 'name="ids"' in html and 'action="/register/bulk/"' in html
    assert 'value="step"' in html and 'value="sprint"' in html
