"""`tikting demo`: a realistic organisation, every state and quadrant, loaded once."""

import io

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.db import models
from django.db.models import Count
from django.utils import timezone

from tikting.accounts.models import Team, User
from tikting.cadence.models import Sprint, SprintStatus, TimeLog
from tikting.cmdb.models import Service
from tikting.core.models import AuditEntry, StatusChange
from tikting.governance.models import Minute, ReviewMeeting
from tikting.improvement import choices as C
from tikting.improvement.models import Comment, Indicator, Item, Measurement

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def demo_output(django_db_setup, django_db_blocker):
    # Loaded once for the module: building 60 items through the services takes a few seconds.
    with django_db_blocker.unblock():
        out = io.StringIO()
        call_command("demo", "--seed", "7", "--no-history", stdout=out)
        yield out.getvalue()
        # Committed outside the tests' transactions: leave the database as other modules expect it.
        ReviewMeeting.objects.all().delete()
        Sprint.objects.all().delete()
        Item.objects.update(parent=None)
        Item.objects.all().delete()
        AuditEntry.objects.all().delete()
        StatusChange.objects.all().delete()
        Service.objects.all().delete()
        User.objects.all().delete()
        Team.objects.all().delete()


@pytest.fixture
def demo(demo_output):
    return demo_output


def test_it_prints_the_logins(demo):
    for username in ("manager", "owner", "owner2", "contributor", "viewer", "admin"):
        assert username in demo
    assert "password: demo" in demo


def test_every_demo_user_signs_in_with_demo(demo):
    for username in ("manager", "owner", "owner2", "contributor", "viewer", "admin"):
        assert authenticate(username=username, password="demo") is not None


def test_it_covers_every_status_quadrant_outcome_and_benefit(demo):
    assert set(Item.objects.values_list("status", flat=True)) == set(C.Status.values)
    assert set(Item.objects.values_list("quadrant", flat=True)) == set(C.Quadrant.values)
    assert set(Item.objects.closed().values_list("outcome", flat=True)) == set(C.Outcome.values)
    benefits = set(
        Item.objects.closed().exclude(benefit_category="").values_list("benefit_category", flat=True)
    )
    assert benefits == set(C.BenefitCategory.values)
    assert 55 <= Item.objects.count() <= 70
    assert Service.objects.count() == 8


def test_it_has_governance_flags_to_show(demo):
    assert Item.objects.blocked().exists()
    assert Item.objects.filter(escalated_at__isnull=False).exists()
    assert Item.objects.overdue().exists()
    assert Item.objects.due_soon().exists()
    assert Item.objects.stale().exists()
    assert Item.objects.deferred_due().exists()
    assert Item.objects.slipped().exists()
    assert Item.objects.filter(parent__isnull=False).exists()
    assert not Item.objects.filter(status="deferred", revisit_date__isnull=True).exists()
    assert not Item.objects.filter(status="rejected", assessment_reason="").exists()


def test_items_are_spread_over_the_past_year(demo):
    now = timezone.now()
    oldest = Item.objects.earliest("identified_at").identified_at
    assert 250 <= (now - oldest).days <= 366
    months = Item.objects.closed().dates("closed_at", "month")
    assert len(months) >= 6  # created-vs-closed per month has a shape
    assert not Item.objects.filter(last_activity_at__gt=now).exists()


def test_history_is_real_and_in_order(demo):
    item = Item.objects.closed().exclude(outcome="withdrawn").first()
    assert item is not None
    changes = list(
        StatusChange.objects.filter(object_id=str(item.pk), content_type__model="item")
        .order_by("at")
        .values_list("new_status", flat=True)
    )
    assert changes[0] == "new" and changes[-1] == "closed"
    assert "action" in changes
    assert changes.index("action") < changes.index("evaluation")
    assert StatusChange.objects.filter(actor__isnull=False).exists()


def test_indicators_have_baselines_targets_and_histories(demo):
    assert Indicator.objects.filter(baseline_value__isnull=False, target_value__isnull=False).count() >= 20
    per_indicator = Measurement.objects.values("indicator").annotate(n=Count("id"))
    assert max(row["n"] for row in per_indicator) >= 4
    units = set(Indicator.objects.values_list("unit", flat=True))
    assert {"h", "%", "1-5"} <= units
    assert Comment.objects.exists()


def test_it_is_idempotent(demo):
    count = Item.objects.count()
    out = io.StringIO()
    call_command("demo", "--no-history", stdout=out)
    assert "already loaded" in out.getvalue()
    assert Item.objects.count() == count


def test_reset_reloads_the_same_demo(demo):
    before = sorted(Item.objects.values_list("title", "status", "impact", "effort"))
    call_command("demo", "--reset", "--seed", "7", "--no-history", stdout=io.StringIO())
    assert sorted(Item.objects.values_list("title", "status", "impact", "effort")) == before
    assert User.objects.filter(username="manager").count() == 1


def test_it_holds_last_months_review_with_minutes_and_plans_the_next(demo):
    held = ReviewMeeting.objects.get(status="closed")  # held, then closed: a record
    assert held.held_at is not None and held.held_at < timezone.now()
    assert held.closed_at is not None and held.held_at < held.closed_at
    assert held.agenda is not None  # frozen when it was held
    assert Minute.objects.filter(meeting=held).count() >= 3
    assert ReviewMeeting.objects.filter(status="planned", scheduled_for__gt=timezone.localdate()).exists()
    # who came, who sent apologies, and the action items it put into the register
    assert held.attendees.count() == 4 and held.apologies.count() == 1
    actions = list(held.action_items.select_related("action"))
    assert len(actions) == 2 and all(a.action is not None and a.owner and a.due_date for a in actions)
    assert [a.state()[0] for a in actions][0] == "done"


def test_it_runs_improvement_sprints_with_time_logs_and_reviews(demo):
    # Two teams: two reviewed sprints and one running each, built through the cadence services.
    assert "6 improvement sprints" in demo
    assert Sprint.objects.filter(status=SprintStatus.CLOSED).count() == 4
    assert Sprint.objects.filter(status=SprintStatus.ACTIVE).count() == 2
    assert TimeLog.objects.filter(day__gt=timezone.localdate()).count() == 0
    assert TimeLog.objects.exclude(logged_by=models.F("user")).count() == 0  # everyone logs their own
    reviewed = Sprint.objects.filter(status=SprintStatus.CLOSED).first()
    assert reviewed is not None and reviewed.what_changed
    assert all(card.decision for card in reviewed.cards.all())
