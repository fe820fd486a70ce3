import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tikting.governance import services as GS
from tikting.governance.agenda import build_agenda
from tikting.improvement import choices as C
from tikting.improvement import services as S
from tikting.improvement.models import Item
from tikting.test import ready_item

pytestmark = pytest.mark.django_db


def refs(sections, key):
    return {item.pk for item in next(s for s in sections if s.key == key).items}


def section(sections, key):
    return next(s for s in sections if s.key == key)


def closed(cast, title, *, days_ago, **extra):
    item = S.create_item(actor=cast.contributor, title=title)
    Item.objects.filter(pk=item.pk).update(
        status=C.Status.CLOSED,
        closed_at=timezone.now() - dt.timedelta(days=days_ago),
        outcome="successful",
        **extra,
    )
    return item


@pytest.fixture
def register(cast):
    """One item per agenda section, built with the services; dates moved with .update()."""
    today = timezone.localdate()
    items = {}
    items["new"] = S.create_item(actor=cast.contributor, title="new")
    deferred = S.create_item(actor=cast.contributor, title="deferred, revisit today")
    S.assess_item(
        deferred,
        actor=cast.manager,
        decision="defer",
        reason="budget",
        revisit_date=today + dt.timedelta(days=9),
    )
    Item.objects.filter(pk=deferred.pk).update(revisit_date=today)
    items["deferred_due"] = deferred
    later = S.create_item(actor=cast.contributor, title="deferred, not due")
    S.assess_item(
        later, actor=cast.manager, decision="defer", reason="later", revisit_date=today + dt.timedelta(days=9)
    )
    items["deferred_later"] = later

    items["blocked"] = S.set_blocked(
        ready_item(cast, title="blocked"), actor=cast.owner, blocked=True, blocker="vendor"
    )
    escalated = S.set_blocked(
        ready_item(cast, title="escalated"), actor=cast.owner, blocked=True, blocker="budget"
    )
    items["escalated"] = S.escalate_item(escalated, actor=cast.owner, note="Need a decision")

    overdue = ready_item(cast, title="overdue")
    Item.objects.filter(pk=overdue.pk).update(target_date=today - dt.timedelta(days=3))
    items["overdue"] = overdue

    stale = ready_item(cast, title="stale")
    Item.objects.filter(pk=stale.pk).update(last_activity_at=timezone.now() - dt.timedelta(days=45))
    items["stale"] = stale

    acting = S.transition_item(
        ready_item(cast, title="acting, never measured"), actor=cast.owner, to="action"
    )
    items["measurement_due"] = acting

    items["slipped"] = closed(cast, "slipped", days_ago=60, sustainment=C.Sustainment.SLIPPED)

    soon = ready_item(cast, title="due soon")
    Item.objects.filter(pk=soon.pk).update(identified_at=timezone.now() - dt.timedelta(days=100))
    soon.refresh_from_db()
    items["due_soon"] = S.update_item(soon, actor=cast.manager, target_date=today + dt.timedelta(days=5))

    items["closed_recently"] = closed(cast, "closed 3 days ago", days_ago=3)
    items["closed_long_ago"] = closed(cast, "closed 40 days ago", days_ago=40)
    items["closed_withdrawn"] = closed(cast, "withdrawn 20 days ago", days_ago=20)
    return items


def test_new_items_and_deferred_items_due_are_to_assess(register):
    sections = build_agenda()
    assert refs(sections, "assess") == {register["new"].pk, register["deferred_due"].pk}


def test_blocked_lists_escalated_items_first(register):
    blocked = section(build_agenda(), "blocked")
    assert [i.pk for i in blocked.items] == [register["escalated"].pk, register["blocked"].pk]


def test_overdue_stale_and_due_soon(register):
    sections = build_agenda()
    assert refs(sections, "overdue") == {register["overdue"].pk}
    assert refs(sections, "stale") == {register["stale"].pk}
    assert refs(sections, "due_soon") == {register["due_soon"].pk}


def test_measurement_due_lists_acting_items_not_measured(register, cast):
    assert refs(build_agenda(), "measurement_due") == {register["measurement_due"].pk}
    indicator = register["measurement_due"].indicators.get()
    S.record_measurement(indicator, actor=cast.owner, value="8")
    assert refs(build_agenda(), "measurement_due") == set()


def test_slipped_after_closure(register):
    assert refs(build_agenda(), "slipped") == {register["slipped"].pk}


def test_recently_closed_means_30_days_without_a_held_review(register):
    assert refs(build_agenda(), "closed") == {register["closed_recently"].pk, register["closed_withdrawn"].pk}


def test_recently_closed_means_since_the_last_held_review(register, cast):
    meeting = GS.create_review(actor=cast.manager)
    GS.hold_review(meeting, actor=cast.manager)
    meeting.__class__.objects.filter(pk=meeting.pk).update(held_at=timezone.now() - dt.timedelta(days=10))
    assert refs(build_agenda(), "closed") == {register["closed_recently"].pk}


def test_a_held_review_since_closed_still_counts_as_the_last_held(register, cast):
    meeting = GS.create_review(actor=cast.manager)
    GS.hold_review(meeting, actor=cast.manager)
    GS.close_review(meeting, actor=cast.manager)  # its minutes approved: the record is final
    meeting.__class__.objects.filter(pk=meeting.pk).update(held_at=timezone.now() - dt.timedelta(days=10))
    assert refs(build_agenda(), "closed") == {register["closed_recently"].pk}


def test_sections_count_all_items_but_list_the_first_n(cast):
    for n in range(4):
        S.create_item(actor=cast.contributor, title=f"new {n}")
    assess = section(build_agenda(limit=3), "assess")
    assert (assess.count, len(assess.items), assess.more) == (4, 3, 1)
    assert assess.register_url == "/register/?status=all&flag=to_assess"
    assert section(build_agenda(), "stale").register_url == "/register/?flag=stale"


def test_an_empty_register_gives_empty_sections(db):
    sections = build_agenda()
    assert [s.count for s in sections] == [0] * 8


# --- Query count: constant in the number of items ------------------------------------------------


def spread(cast, n):
    """n items over every agenda section (status and dates set with .update())."""
    now, today = timezone.now(), timezone.localdate()
    for i in range(n):
        item = S.create_item(actor=cast.contributor, title=f"item {i}", owner=None, service=cast.email)
        kind = i % 7
        changes = {
            0: {},
            1: {
                "status": C.Status.VISION,
                "blocked": True,
                "blocker": "x",
                "escalated_at": now,
                "owner": cast.owner,
            },
            2: {
                "status": C.Status.PLAN,
                "target_date": today - dt.timedelta(days=i + 1),
                "owner": cast.owner,
            },
            3: {"status": C.Status.VISION, "last_activity_at": now - dt.timedelta(days=40)},
            4: {"status": C.Status.ACTION, "owner": cast.other_owner},
            5: {"status": C.Status.CLOSED, "closed_at": now - dt.timedelta(days=2), "sustainment": "slipped"},
            6: {"status": C.Status.PLAN, "target_date": today + dt.timedelta(days=1), "due_soon_from": today},
        }[kind]
        Item.objects.filter(pk=item.pk).update(**changes)


def agenda_queries(client, url):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def test_agenda_page_queries_do_not_grow_with_the_register(cast, login):
    client = login(cast.manager)
    meeting = GS.create_review(actor=cast.manager)
    spread(cast, 5)
    for item in Item.objects.all()[:3]:
        if item.status in {C.Status.NEW, C.Status.VISION, C.Status.PLAN}:
            GS.record_minute(meeting, actor=cast.manager, item=item, kind="note", text="seen")
    url = f"/governance/agenda/?meeting={meeting.pk}"
    few = agenda_queries(client, url)
    spread(cast, 45)
    for item in Item.objects.order_by("-pk")[:10]:
        GS.record_minute(meeting, actor=cast.manager, item=item, kind="note", text="seen")
    many = agenda_queries(client, url)
    assert few == many, (few, many)
    # one COUNT and one limited SELECT per section, plus session, user, meeting, last review, minutes,
    # and the two of the capacity notice (cadence registers it: teams, then hours logged)
    assert many <= 8 * 2 + 6 + 2


def test_agenda_api_queries_do_not_grow_with_the_register(cast, login):
    client = login(cast.viewer)
    spread(cast, 5)
    few = agenda_queries(client, "/api/governance/agenda")
    spread(cast, 45)
    assert agenda_queries(client, "/api/governance/agenda") == few


def test_the_measurement_due_section_selects_what_the_register_helper_selects(cast):
    """The agenda section and the register's ?flag=measurement_due share Item.objects.measurement_due."""
    now = timezone.now()
    spread(cast, 14)
    watched = ready_item(cast, title="closed, under watch, measured long ago")
    indicator = watched.indicators.get()
    S.record_measurement(indicator, actor=cast.owner, value="7", measured_at=now - dt.timedelta(days=50))
    Item.objects.filter(pk=watched.pk).update(
        status=C.Status.CLOSED, control_until=timezone.localdate() + dt.timedelta(days=9)
    )
    fresh = S.transition_item(ready_item(cast, title="acting, measured"), actor=cast.owner, to="action")
    S.record_measurement(fresh.indicators.get(), actor=cast.owner, value="7")
    expected = set(Item.objects.measurement_due(now).values_list("pk", flat=True))
    assert watched.pk in expected
    assert fresh.pk not in expected
    assert refs(build_agenda(now=now), "measurement_due") == expected
