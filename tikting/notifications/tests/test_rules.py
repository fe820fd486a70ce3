"""Who is told of what: owners, assignees, followers, @mentions, managers; never the actor;
preferences; the key that tells a fact once; a failing subscriber never breaks the action."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tikting.core import events
from tikting.core.events import Kind
from tikting.governance import services as GS
from tikting.improvement import services as S
from tikting.notifications import rules
from tikting.notifications import services as NS
from tikting.notifications.models import Notification
from tikting.records.registry import create_record, update_record
from tikting.test import ready_item

pytestmark = pytest.mark.django_db


def told(user, kind=None):
    qs = Notification.objects.filter(recipient=user)
    return list(qs.filter(kind=kind) if kind else qs)


def test_mention_names_are_read_as_people_write_them():
    text = "Thanks @olga, and @mia. Mail ada@example.org or @@nobody; @carl's idea (@otto) @olga"
    assert rules.mentioned_names(text) == ["olga", "mia", "carl", "otto"]


def test_only_existing_active_users_are_mentioned(cast):
    cast.other_owner.is_active = False
    cast.other_owner.save()
    found = rules.mentioned_users("@olga @ghost @otto @mia.")
    assert found == [cast.owner.pk, cast.manager.pk]


def test_a_comment_tells_the_owner_followers_and_the_mentioned_never_the_actor(cast):
    item = ready_item(cast)
    Notification.objects.all().delete()
    NS.follow(item, actor=cast.viewer)
    S.add_comment(item, actor=cast.contributor, body="Could @otto look at this? cc @carl")
    assert [n.kind for n in told(cast.owner)] == [Kind.COMMENTED]
    assert told(cast.owner)[0].reason == Notification.Reason.OWNER
    assert [n.kind for n in told(cast.viewer)] == [Kind.COMMENTED]
    assert told(cast.viewer)[0].reason == Notification.Reason.FOLLOWER
    mentioned = told(cast.other_owner)
    assert [(n.kind, n.reason) for n in mentioned] == [(Kind.MENTIONED, Notification.Reason.MENTIONED)]
    assert "Could @otto look" in mentioned[0].excerpt and mentioned[0].actor == cast.contributor
    assert told(cast.contributor) == []  # the actor, even when they mention themselves
    assert told(cast.manager) == []


def test_the_owner_commenting_on_their_own_item_is_not_told(cast):
    item = ready_item(cast)
    Notification.objects.all().delete()
    S.add_comment(item, actor=cast.owner, body="Done the first half")
    assert Notification.objects.count() == 0


def test_a_mentioned_owner_gets_one_notice_the_mention(cast):
    item = ready_item(cast)
    Notification.objects.all().delete()
    S.add_comment(item, actor=cast.contributor, body="@olga please")
    assert [n.kind for n in told(cast.owner)] == [Kind.MENTIONED]


def test_assignment_tells_the_new_owner_and_the_action_owner(cast):
    item = S.create_item(actor=cast.contributor, title="Faster onboarding", impact=3, effort=2)
    assert told(cast.owner) == []
    S.update_item(item, actor=cast.manager, owner=cast.owner)
    [notice] = told(cast.owner, Kind.ASSIGNED)
    assert notice.url == item.get_absolute_url() and notice.actor == cast.manager
    S.add_action(item, actor=cast.manager, title="Draft checklist", owner=cast.contributor)
    [action_notice] = told(cast.contributor, Kind.ASSIGNED)
    assert "Draft checklist" in action_notice.summary


def test_status_changes_and_escalations(cast):
    item = ready_item(cast)
    NS.follow(item, actor=cast.viewer)
    Notification.objects.all().delete()
    S.transition_item(item, actor=cast.manager, to="action")
    assert [n.kind for n in told(cast.owner)] == [Kind.STATUS_CHANGED]
    [seen] = told(cast.viewer)
    assert seen.kind == Kind.STATUS_CHANGED and "How do we get there? → 5. Take action" in seen.summary
    Notification.objects.all().delete()
    S.escalate_item(item, actor=cast.owner, note="Blocked on @carl's budget")
    managers = {n.recipient for n in Notification.objects.filter(kind=Kind.ESCALATED)}
    assert managers == {cast.manager, cast.admin, cast.viewer}  # managers, the follower; not the actor
    assert [n.kind for n in told(cast.contributor)] == [Kind.MENTIONED]


def test_records_tell_their_assignee_and_followers(cast):
    incident = create_record("incident", actor=cast.manager, number="INC-1", opened_at=timezone.now())
    NS.follow(incident, actor=cast.viewer)
    incident = update_record(incident, actor=cast.manager, assigned_to=cast.contributor)
    [assigned] = told(cast.contributor, Kind.ASSIGNED)
    assert assigned.url == f"/records/incident/{incident.pk}/"
    update_record(incident, actor=cast.contributor, status="in_progress")
    assert [n.kind for n in told(cast.viewer)] == [Kind.STATUS_CHANGED]
    assert "New → In progress" in told(cast.viewer)[0].summary
    assert told(cast.contributor, Kind.STATUS_CHANGED) == []  # they did it


def test_a_status_change_nobody_is_to_hear_of_asks_only_for_the_followers(cast):
    incident = create_record("incident", actor=cast.manager, number="INC-1", opened_at=timezone.now())
    event = events.Event(kind=Kind.STATUS_CHANGED, target=incident, actor=cast.manager, summary="x")
    with CaptureQueriesContext(connection) as queries:
        assert rules.recipients(event) == []
    assert len(queries) == 1 and "notifications_follow" in queries[0]["sql"]  # no users to look up
    NS.follow(incident, actor=cast.manager)  # the actor alone follows: still nobody
    assert rules.recipients(event) == []
    NS.follow(incident, actor=cast.viewer)
    assert [r.user_id for r in rules.recipients(event)] == [cast.viewer.pk]


def test_a_review_minute_mentions_and_the_agenda(cast):
    item = ready_item(cast)
    Notification.objects.all().delete()
    meeting = GS.create_review(actor=cast.manager, title="December review")
    assert {n.recipient for n in Notification.objects.filter(kind=Kind.AGENDA_READY)} == {
        cast.owner,
        cast.admin,
    }
    GS.record_minute(meeting, actor=cast.manager, item=item, kind="note", text="@carl to bring the figures")
    assert [n.kind for n in told(cast.contributor)] == [Kind.MENTIONED]
    assert [n.kind for n in told(cast.owner, Kind.MINUTED)] == [Kind.MINUTED]


def test_preferences_choose_the_channel(cast):
    item = ready_item(cast)
    Notification.objects.all().delete()
    NS.set_preferences(actor=cast.owner, channels={Kind.COMMENTED: "off"})
    NS.set_preferences(actor=cast.other_owner, channels={Kind.MENTIONED: "app"})
    NS.set_preferences(actor=cast.manager, channels={Kind.MENTIONED: "email"})
    S.add_comment(item, actor=cast.contributor, body="@otto @mia see this")
    assert told(cast.owner) == []
    assert told(cast.other_owner)[0].email == ""
    assert told(cast.manager)[0].email == Notification.Email.PENDING
    with pytest.raises(ValidationError, match="Choose one of"):
        NS.set_preferences(actor=cast.owner, channels={Kind.COMMENTED: "pigeon"})


def test_a_fact_with_a_key_is_told_once(cast):
    item = ready_item(cast)
    action = item.actions.get()
    action.due_date = timezone.localdate() - dt.timedelta(days=2)
    action.save()
    Notification.objects.all().delete()
    S.announce_due_work()
    S.announce_due_work()
    [overdue] = Notification.objects.filter(kind=Kind.ACTION_OVERDUE)
    assert overdue.recipient == cast.owner and "Write runbook" in overdue.summary


def test_a_failing_subscriber_never_breaks_the_action(cast):
    item = ready_item(cast)

    def broken(event):
        raise RuntimeError("the notifier fell over")

    events.subscribe(broken)
    try:
        comment = S.add_comment(item, actor=cast.contributor, body="Still saved")
    finally:
        events.unsubscribe(broken)
    assert comment.pk and item.comments.filter(body="Still saved").exists()
    assert told(cast.owner, Kind.COMMENTED)  # the other subscriber still ran


def test_a_refused_action_tells_nobody(cast):
    item = ready_item(cast)
    Notification.objects.all().delete()
    with pytest.raises(ValidationError):
        S.add_comment(item, actor=cast.contributor, body="")
    assert Notification.objects.count() == 0
