"""The demo's generated ITSM history: coherent records with the patterns detectors must find."""

import datetime as dt
import io
import random
import statistics

import pytest
from django.core.management import call_command
from django.db.models import Avg, Count, F, Q, Sum
from django.utils import timezone

from tikting.accounts.models import Role, Team, User
from tikting.audits.models import AuditFinding
from tikting.cadence.models import Sprint
from tikting.changes.models import Change
from tikting.cmdb.models import ConfigurationItem, Service
from tikting.demo import history as H
from tikting.demo.management.commands import demo as demo_command
from tikting.incidents.models import Incident, IncidentActivity, Interaction
from tikting.knowledge.models import Article
from tikting.problems.models import Problem
from tikting.service_requests.models import CatalogItem, ServiceRequest
from tikting.slas.models import SLADefinition
from tikting.surveys.models import SurveyResponse

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 6, 17, 14, 0, tzinfo=dt.UTC)  # a Wednesday
MONTHS = 4
SEED = 11


def _wipe_everything_demo():
    H.wipe_history()
    Sprint.objects.all().delete()  # the demo's sprints hold on to its teams (PROTECT)
    Service.objects.filter(name__in=demo_command.SERVICES).delete()
    User.objects.filter(username__in=[*demo_command.USERS, "hist-manager", "hist-owner"]).delete()
    Team.objects.filter(Q(name__in=H.GROUPS) | Q(name__in=demo_command.TEAMS)).delete()


def _cast():
    users = {
        "manager": User.objects.create(username="hist-manager", role=Role.MANAGER),
        "owner": User.objects.create(username="hist-owner", role=Role.OWNER),
    }
    services = {
        name: Service.objects.create(name=name, criticality=criticality, owner=users["owner"])
        for name, (criticality, _owner, _d) in demo_command.SERVICES.items()
    }
    return users, services


@pytest.fixture(scope="module")
def history(django_db_setup, django_db_blocker):
    # Built once and committed (a few seconds); wiped again afterwards, as other modules expect.
    with django_db_blocker.unblock():
        _wipe_everything_demo()  # anything an earlier module left behind
        users, services = _cast()
        counts = H.build_history(random.Random(SEED), users, services, months=MONTHS, now=NOW)
        snapshot = _snapshot()
        yield counts, snapshot
        _wipe_everything_demo()


def _snapshot():
    return {
        "incidents": list(
            Incident.objects.order_by("number").values_list(
                "number",
                "opened_at",
                "priority",
                "service__name",
                "ci__name",
                "resolved_at",
                "resolution_met",
            )
        ),
        "changes": list(
            Change.objects.order_by("number").values_list("number", "outcome", "assignment_group__name")
        ),
        "requests": ServiceRequest.objects.count(),
        "interactions": Interaction.objects.count(),
        "surveys": list(SurveyResponse.objects.order_by("external_key").values_list("score", flat=True)),
    }


def _rate(qs, field):
    return qs.aggregate(r=Avg(field))["r"]


def test_every_kind_is_generated_from_the_demo_source(history):
    counts, _ = history
    for kind in (
        "configuration items",
        "SLA definitions",
        "knowledge articles",
        "catalogue items",
        "problems",
        "changes",
        "incidents",
        "service requests",
        "interactions",
        "incident activities",
        "survey responses",
        "audit findings",
    ):
        assert counts[kind] > 0, kind
    assert 1200 <= counts["incidents"] <= 2600  # ~450 a month over four months
    assert counts["incidents"] == Incident.objects.count()
    for model in (
        Incident,
        Interaction,
        Problem,
        Change,
        ServiceRequest,
        CatalogItem,
        Article,
        SurveyResponse,
    ):
        assert not model.objects.exclude(source=H.SOURCE).exists(), model
    assert AuditFinding.objects.filter(source=H.SOURCE).count() >= 2
    # Every demo service × P1-P4 has an SLA definition.
    assert SLADefinition.objects.filter(service__name__in=demo_command.SERVICES).count() == 8 * 4
    assert ConfigurationItem.objects.filter(ci_class="workstation").count() >= 30


def test_timestamps_and_statuses_are_coherent(history):
    inc = Incident.objects.all()
    assert not inc.filter(resolved_at__lt=F("opened_at")).exists()
    assert not inc.filter(responded_at__lt=F("opened_at")).exists()
    assert not inc.filter(responded_at__gt=F("resolved_at")).exists()
    assert not inc.filter(closed_at__lt=F("resolved_at")).exists()
    assert not inc.filter(opened_at__gte=NOW).exists()
    assert not inc.filter(resolved_at__gt=NOW).exists()
    assert not inc.filter(closed_at__gt=NOW).exists()
    open_statuses = ["new", "in_progress", "on_hold"]
    assert not inc.filter(status__in=open_statuses, resolved_at__isnull=False).exists()
    assert not inc.filter(status__in=["resolved", "closed"], resolved_at__isnull=True).exists()
    assert not inc.filter(status="closed", closed_at__isnull=True).exists()
    assert not inc.filter(status="new", responded_at__isnull=False).exists()
    assert inc.filter(status__in=open_statuses).count() >= 5  # an open backlog at the end
    assert inc.filter(reopen_count__gt=0).exists() and inc.filter(reassignment_count__gt=1).exists()
    assert inc.filter(major=True).exists()
    # The event log agrees with the incidents.
    acts = IncidentActivity.objects.all()
    assert not acts.filter(at__lt=F("incident__opened_at")).exists()
    assert not acts.filter(at__gt=NOW).exists()
    totals = inc.aggregate(hops=Sum("reassignment_count"), reopens=Sum("reopen_count"))
    assert acts.filter(activity_type="Reassignment").count() == totals["hops"]
    assert acts.filter(activity_type="Reopen").count() == totals["reopens"]
    assert acts.filter(activity_type="Closed").count() == inc.filter(status="closed").count()
    # Interactions, requests, changes, surveys.
    assert not Interaction.objects.filter(closed_at__lt=F("opened_at")).exists()
    assert Interaction.objects.filter(incident__isnull=False).exists()
    assert Interaction.objects.filter(first_contact_resolution=True).exists()
    req = ServiceRequest.objects.all()
    assert not req.filter(fulfilled_at__lt=F("opened_at")).exists()
    assert not req.filter(closed_at__lt=F("fulfilled_at")).exists()
    assert not req.filter(status__in=["fulfilled", "closed"], fulfilled_at__isnull=True).exists()
    ch = Change.objects.all()
    assert not ch.filter(planned_end__lt=F("planned_start")).exists()
    assert not ch.filter(actual_end__lt=F("actual_start")).exists()
    assert not ch.filter(status="closed", outcome="").exists()
    assert not ch.exclude(status__in=["closed", "review"]).exclude(outcome="").exists()
    assert ch.filter(change_type="emergency", unplanned=True).exists()
    assert not SurveyResponse.objects.filter(incident__resolved_at__gt=F("responded_at")).exists()
    assert not SurveyResponse.objects.filter(Q(score__lt=1) | Q(score__gt=5)).exists()
    assert not Problem.objects.filter(resolved_at__lt=F("opened_at")).exists()


def test_sla_due_times_and_flags_follow_the_definitions(history):
    inc = Incident.objects.exclude(status="cancelled")
    assert not inc.filter(resolution_due_at__isnull=True).exists()
    assert not Incident.objects.filter(status="cancelled", resolution_due_at__isnull=False).exists()
    assert not inc.filter(resolution_met=True, resolved_at__gt=F("resolution_due_at")).exists()
    assert not inc.filter(resolution_met=False, resolved_at__lte=F("resolution_due_at")).exists()
    assert not inc.filter(response_met=True, responded_at__gt=F("response_due_at")).exists()
    assert not inc.filter(resolved_at__isnull=False, resolution_met__isnull=True).exists()
    # 24×7 for P1: due exactly 4 h after opening; business hours for P3: due inside working hours.
    p1 = inc.filter(priority=1).first()
    assert p1 is not None and p1.resolution_due_at is not None
    assert p1.resolution_due_at - p1.opened_at == dt.timedelta(hours=4)
    for p3 in inc.filter(priority=3)[:200]:
        assert p3.resolution_due_at is not None
        due = timezone.localtime(p3.resolution_due_at)
        assert due.weekday() < 5 and (8 <= due.hour < 18 or (due.hour == 18 and due.minute == 0))
        assert p3.resolution_due_at - p3.opened_at >= dt.timedelta(hours=30)


def test_business_hours_calendar():
    sla = SLADefinition(priority=3, resolution_minutes=60, calendar="business", day_start=8, day_end=18)
    cal = H.Calendar(sla)
    friday_5pm = dt.datetime(2026, 6, 19, 17, 0, tzinfo=dt.UTC)
    assert cal.add(friday_5pm, 120) == dt.datetime(2026, 6, 22, 9, 0, tzinfo=dt.UTC)
    saturday = dt.datetime(2026, 6, 20, 11, 0, tzinfo=dt.UTC)
    assert cal.add(saturday, 30) == dt.datetime(2026, 6, 22, 8, 30, tzinfo=dt.UTC)
    assert cal.add(friday_5pm, 3 * 600) == dt.datetime(2026, 6, 24, 17, 0, tzinfo=dt.UTC)
    always = H.Calendar(SLADefinition(priority=1, resolution_minutes=60, calendar="24x7"))
    assert always.add(saturday, 30) == saturday + dt.timedelta(minutes=30)


def test_recurring_faults_on_a_few_cis(history):
    per_ci = dict(
        Incident.objects.filter(ci__isnull=False)
        .values("ci__name")
        .annotate(n=Count("id"))
        .values_list("ci__name", "n")
    )
    recurring = [per_ci[name] for name in H.RECURRING_CIS]
    others = [n for name, n in per_ci.items() if name not in H.RECURRING_CIS]
    assert min(recurring) >= 1.5 * max(others)
    assert min(recurring) >= 3 * statistics.median(others)
    for name in H.RECURRING_CIS:
        rows = Incident.objects.filter(ci__name=name)
        assert rows.values("category").distinct().count() == 1  # same CI, same category …
        assert rows.values("short_description").distinct().count() <= 3  # … near-identical texts
        problem = Problem.objects.get(ci__name=name)
        assert rows.filter(problem=problem).count() == rows.count()
    known = Problem.objects.filter(ci__name__in=H.RECURRING_CIS, known_error=True)
    assert known.count() >= 2 and not known.filter(workaround="").exists()
    assert Problem.objects.filter(status__in=["resolved", "closed"]).exclude(root_cause="").exists()


def test_one_service_has_poor_sla_compliance(history):
    judged = Incident.objects.filter(resolution_met__isnull=False)
    rows = judged.values("service__name").annotate(
        n=Count("id"), met=Count("id", filter=Q(resolution_met=True))
    )
    rates = {row["service__name"]: row["met"] / row["n"] for row in rows if row["n"] >= 30}
    poor = rates.pop(H.POOR_SLA_SERVICE)
    assert len(rates) >= 5
    assert poor < 0.65
    for name, rate in rates.items():
        assert rate > 0.8 and rate - poor > 0.2, name
    # … and its customers say so.
    csat = SurveyResponse.objects.filter(incident__isnull=False)
    assert _rate(csat.filter(service__name=H.POOR_SLA_SERVICE), "score") + 0.6 < _rate(
        csat.exclude(service__name=H.POOR_SLA_SERVICE), "score"
    )


def test_failing_changes_concentrate_on_one_team(history):
    done = Change.objects.exclude(outcome="")
    rows = done.values("assignment_group__name").annotate(
        n=Count("id"), bad=Count("id", filter=~Q(outcome=Change.Outcome.SUCCESSFUL))
    )
    shares = {row["assignment_group__name"]: row["bad"] / row["n"] for row in rows if row["n"] >= 15}
    failing = shares.pop(H.FAILING_TEAM)
    assert failing > 0.3
    others = done.exclude(assignment_group__name=H.FAILING_TEAM)
    pooled = others.exclude(outcome=Change.Outcome.SUCCESSFUL).count() / others.count()
    assert pooled < 0.1 and failing > 4 * pooled
    assert max(shares.values()) < failing / 2  # every team with enough changes
    # Changes that caused incidents have them.
    caused = done.filter(outcome=Change.Outcome.CAUSED_INCIDENT)
    assert caused.exists()
    assert Incident.objects.filter(caused_by_change__in=caused).exists()


def test_one_catalogue_item_begs_for_automation(history):
    items = CatalogItem.objects.annotate(n=Count("requests"), manual=Sum("requests__manual_steps")).order_by(
        "-manual"
    )
    top = items.first()
    assert top is not None
    assert top.name == H.AUTOMATION_ITEM and not top.automated
    assert top.manual >= 3 * items[1].manual
    assert top.n == max(i.n for i in items)  # the highest volume too
    effort = {i.name: i.n * (i.manual_minutes or 0) for i in items}
    assert max(effort, key=effort.__getitem__) == H.AUTOMATION_ITEM
    assert ServiceRequest.objects.filter(catalog_item__automated=True, manual_steps__gt=0).count() == 0


def test_an_outdated_article_drives_repeat_contacts(history):
    today = timezone.localdate(NOW)
    articles = Article.objects.annotate(contacts=Count("interactions")).order_by("-contacts")
    outdated = articles[0]
    assert outdated.title == H.OUTDATED_ARTICLE
    assert outdated.review_due is not None and outdated.review_due < today - dt.timedelta(days=90)
    assert outdated.helpful_no > 3 * outdated.helpful_yes
    assert outdated.contacts >= 3 * articles[1].contacts
    contacts = Interaction.objects.filter(knowledge_article=outdated)
    assert contacts.filter(first_contact_resolution=False).count() > contacts.count() / 2
    # Repeat contacts: several per incident it is attached to.
    linked = Incident.objects.filter(knowledge_article=outdated).annotate(k=Count("interactions"))
    per_incident = [k for k in linked.values_list("k", flat=True) if k]
    assert len(per_incident) >= 20 and statistics.mean(per_incident) >= 2
    assert outdated.uses == contacts.count() + Incident.objects.filter(knowledge_article=outdated).count()
    assert not Article.objects.filter(review_due__gte=today, helpful_no__gt=F("helpful_yes")).exists()


def test_it_is_deterministic(history):
    counts, snapshot = history
    users = {u.username: u for u in User.objects.filter(username__startswith="hist-")}
    services = {s.name: s for s in Service.objects.filter(name__in=demo_command.SERVICES)}
    again = H.build_history(random.Random(SEED), users, services, months=MONTHS, now=NOW)
    assert again == counts  # replaced, not duplicated
    assert _snapshot() == snapshot


@pytest.fixture
def quick_demo(monkeypatch):
    """`tikting demo` with a pinned clock and a short register (test_demo.py covers the register)."""
    monkeypatch.setattr(H, "_clock", lambda: NOW)
    monkeypatch.setattr(demo_command, "CATALOGUE", demo_command.CATALOGUE[:4])


def test_the_demo_command_loads_it_once_and_reset_rebuilds_it(history, quick_demo):
    _wipe_everything_demo()  # inside this test's transaction: rolled back afterwards
    call_command("demo", "--seed", "5", "--history-months", "1", stdout=io.StringIO())
    first = {m.__name__: m.objects.count() for m in (Incident, Interaction, Change, ServiceRequest, Problem)}
    assert first["Incident"] > 150
    out = io.StringIO()
    call_command("demo", "--seed", "5", "--history-months", "1", stdout=out)
    assert "already loaded" in out.getvalue()
    assert {
        m.__name__: m.objects.count() for m in (Incident, Interaction, Change, ServiceRequest, Problem)
    } == first
    call_command("demo", "--reset", "--seed", "5", "--history-months", "1", stdout=(out := io.StringIO()))
    assert "wiped" in out.getvalue()
    assert {
        m.__name__: m.objects.count() for m in (Incident, Interaction, Change, ServiceRequest, Problem)
    } == first
    assert SLADefinition.objects.filter(service__name="VPN").count() == 4


def test_no_history_skips_it_and_a_later_run_adds_it(history, quick_demo):
    _wipe_everything_demo()
    call_command("demo", "--seed", "5", "--no-history", stdout=io.StringIO())
    assert not Incident.objects.exists()
    out = io.StringIO()
    call_command("demo", "--seed", "5", "--history-months", "1", stdout=out)
    assert "History added" in out.getvalue()
    assert Incident.objects.filter(source=H.SOURCE).count() > 100


def test_acting_items_get_an_indicator_bound_to_their_metric(history):
    from tikting.improvement import services as S
    from tikting.improvement.models import Indicator
    from tikting.metrics.engine import compute

    manager, owner = User.objects.get(username="hist-manager"), User.objects.get(username="hist-owner")
    email = Service.objects.get(name="E-mail")
    today = NOW.date()

    def acting(title, service):
        item = S.create_item(actor=manager, title=title, practice="incident", service=service, vision="v")
        item = S.assess_item(item, actor=manager, decision="accept", owner=owner)
        item = S.update_item(item, actor=manager, target_date=today + dt.timedelta(days=60))
        S.add_indicator(item, actor=owner, name="MTTR", unit="h", baseline_value="10", target_value="6")
        for step in ("current_state", "target_state", "plan"):
            item = S.transition_item(item, actor=owner, to=step)
        S.add_action(item, actor=owner, title="Runbook", owner=owner, due_date=today + dt.timedelta(days=9))
        return S.transition_item(item, actor=owner, to="action")

    item = acting("Faster mail fixes", email)
    acting("No service, no binding", None)
    assert demo_command.bind_to_records(today=today) == 1
    bound = Indicator.objects.exclude(metric_key="").get()
    assert (bound.item, bound.metric_key, bound.role) == (item, "mttr", "impacted")
    end = today - dt.timedelta(days=31)
    # bound indicators place incidents by their resolution date (final figures)
    window = {"service": "E-mail", "date_from": end - dt.timedelta(days=89), "date_to": end}
    expected = compute("mttr", filters=window, date_field="resolved").total.value
    assert expected is not None
    assert bound.baseline_value is not None and bound.target_value is not None
    assert float(bound.baseline_value) == pytest.approx(expected, abs=0.01)
    assert float(bound.target_value) == pytest.approx(expected * 0.8, abs=0.01)
    assert bound.measurements.filter(source="computed").count() == 1


def test_items_are_linked_to_the_records_that_show_why(history):
    from tikting.improvement import services as S
    from tikting.improvement.models import Item, SourceLink

    manager = User.objects.get(username="hist-manager")
    identified = NOW - dt.timedelta(days=30)
    item = S.create_item(
        actor=manager, title="Mail MTTR", practice="incident", service=Service.objects.get(name="E-mail")
    )
    Item.objects.filter(pk=item.pk).update(identified_at=identified, last_activity_at=identified)
    S.create_item(actor=manager, title="No service", practice="incident")
    assert demo_command.link_to_records() == 3
    links = list(SourceLink.objects.filter(item=item).order_by("pk"))
    assert [link.is_origin for link in links] == [True, False, False]
    incidents = Incident.objects.filter(pk__in=[int(link.object_id) for link in links])
    assert all(
        i.service.name == "E-mail" and i.priority is not None and i.priority <= 2 and i.opened_at < identified
        for i in incidents
    )
    item.refresh_from_db()
    assert item.last_activity_at == identified  # linked "when identified": not a fresh activity
