"""The CMDB health page, its drill-down lists, the runs, and the actions through the views."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from tikting.cmdb.models import ConfigurationItem as CI
from tikting.discovery import snapshot
from tikting.discovery.models import AccuracySnapshot, Decision, DiscoveryRun, DriftItem, DuplicateCandidate
from tikting.discovery.reconcile import reconcile

from .factories import ci, obs, result

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def world(cast):
    """A registered server with a location drift, a stale one, an unregistered device and a
    duplicate pair, after one run; and a snapshot 40 days old to compare with."""
    ci("srv-a", serial_number="A1", manufacturer="Dell", location="Room 1")
    ci("srv-old", last_seen_at=timezone.now() - dt.timedelta(days=60))
    ci("db-1", hostname="db")
    ci("db-2", hostname="db")
    run = reconcile(
        result(
            obs(serial="A1", manufacturer="Dell", extra={"location": "Room 9"}),
            obs(hostname="pc-new", where="b"),
            obs(hostname="db", where="c"),
        ),
        source_name="agents",
        file_name="inventory.json",
        actor=cast.admin,
    )
    AccuracySnapshot.objects.create(
        day=timezone.localdate() - dt.timedelta(days=40),
        ci_class="server",
        taken_at=timezone.now() - dt.timedelta(days=40),
        in_scope=4,
        seen=1,
        stale=0,
    )
    return run


def test_every_reader_sees_the_figures_and_only_managers_the_actions(cast, login, world):
    page = login(cast.viewer).get(reverse("discovery:health"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Discovery coverage" in html and "Unregistered devices" in html and "Duplicate candidates" in html
    assert "pc-new" in html and "srv-old" in html and "Room 9" in html
    assert 'id="health-chart-data"' in html and "js/discovery.js" in html
    assert "inventory.json" in html  # the latest runs
    assert reverse("discovery:register", args=[CI.objects.get(name="pc-new").pk]) not in html
    managed = login(cast.manager).get(reverse("discovery:health")).content.decode()
    assert reverse("discovery:register", args=[CI.objects.get(name="pc-new").pk]) in managed
    assert reverse("discovery:accept_drift", args=[DriftItem.objects.get().pk]) in managed


def test_the_cards_show_the_change_since_a_month_ago(cast, login, world):
    context = login(cast.viewer).get(reverse("discovery:health")).context
    coverage = next(c for c in context["cards"] if c["key"] == "cmdb_coverage")
    # now: 2 of 4 in-scope servers seen (srv-a and db-1); 40 days ago: 1 of 4
    assert coverage["value"] == pytest.approx(50.0) and coverage["change"] == pytest.approx(25.0)
    assert coverage["good"] is True


def test_anonymous_users_are_sent_to_sign_in(client, world):
    for name in ("discovery:health", "discovery:ci_list", "discovery:run_list", "discovery:drift_list"):
        response = client.get(reverse(name))
        assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_the_drill_down_lists_the_cis_behind_a_figure(cast, login, world):
    response = login(cast.viewer).get(reverse("discovery:ci_list"), {"figure": "stale"})
    assert [c.name for c in response.context["page"].object_list] == ["srv-old"]
    response = login(cast.viewer).get(
        reverse("discovery:ci_list"), {"figure": "unregistered", "class": "workstation"}
    )
    assert [c.name for c in response.context["page"].object_list] == ["pc-new"]
    response = login(cast.viewer).get(reverse("discovery:ci_list"), {"figure": "bogus"})
    assert response.context["figure"] == "unregistered"


def test_the_drill_down_costs_the_same_queries_whatever_its_length(
    cast, login, world, django_assert_max_num_queries
):
    client = login(cast.manager)
    url = reverse("discovery:ci_list") + "?figure=in_scope"
    client.get(url)
    with django_assert_max_num_queries(12) as few:
        client.get(url)
    for i in range(30):
        ci(f"srv-{i:02d}", owner=cast.owner, service=cast.email)
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(url)


def test_a_manager_registers_a_device_from_the_list(cast, login, world):
    device = CI.objects.get(name="pc-new")
    response = login(cast.manager).post(
        reverse("discovery:register", args=[device.pk]),
        {"version": device.version, "ci_class": "workstation", "next": "/discovery/cis/?figure=unregistered"},
    )
    assert response.status_code == 302 and response["Location"] == "/discovery/cis/?figure=unregistered"
    device.refresh_from_db()
    assert device.status == CI.Status.ACTIVE


def test_htmx_gets_the_row_back_with_the_outcome_or_the_error(cast, login, world):
    device = CI.objects.get(name="pc-new")
    url = reverse("discovery:register", args=[device.pk])
    stale = login(cast.admin).post(url, {"version": device.version + 5}, **HTMX)
    assert stale.status_code == 200 and "changed by someone else" in stale.content.decode()
    device.refresh_from_db()
    assert device.status == CI.Status.DISCOVERED
    done = login(cast.admin).post(url, {"version": device.version}, **HTMX)
    html = done.content.decode()
    assert html.lstrip().startswith("<tr") and "pc-new registered." in html


def test_an_off_site_next_is_not_followed(cast, login, world):
    device = CI.objects.get(name="srv-old")
    response = login(cast.manager).post(
        reverse("discovery:retire", args=[device.pk]), {"next": "https://evil.example/"}
    )
    assert response["Location"] == reverse("discovery:health")


@pytest.mark.parametrize("role", ["viewer", "contributor", "owner", "other_owner"])
def test_readers_may_not_act(cast, login, world, role):
    client = login(getattr(cast, role))
    device = CI.objects.get(name="pc-new")
    drift = DriftItem.objects.get()
    pair = DuplicateCandidate.objects.get()
    for url in (
        reverse("discovery:register", args=[device.pk]),
        reverse("discovery:register_selected"),
        reverse("discovery:retire", args=[device.pk]),
        reverse("discovery:accept_drift", args=[drift.pk]),
        reverse("discovery:reject_drift", args=[drift.pk]),
        reverse("discovery:merge_duplicate", args=[pair.pk]),
        reverse("discovery:dismiss_duplicate", args=[pair.pk]),
    ):
        assert client.post(url, {"ci": [device.pk]}).status_code == 403, url
    device.refresh_from_db()
    assert device.status == CI.Status.DISCOVERED
    assert (
        DriftItem.objects.get().status == Decision.OPEN and DuplicateCandidate.objects.get().status == "open"
    )


def test_actions_are_posts(cast, login, world):
    device = CI.objects.get(name="pc-new")
    assert login(cast.admin).get(reverse("discovery:register", args=[device.pk])).status_code == 405


def test_drift_and_duplicate_actions_through_the_views(cast, login, world):
    client = login(cast.manager)
    drift = DriftItem.objects.get()
    client.post(reverse("discovery:reject_drift", args=[drift.pk]), {"version": drift.version})
    drift.refresh_from_db()
    assert drift.status == Decision.REJECTED
    pair = DuplicateCandidate.objects.get()
    response = client.post(
        reverse("discovery:merge_duplicate", args=[pair.pk]),
        {"version": pair.version, "keep": pair.other_id},
        **HTMX,
    )
    assert "Merged into db-2." in response.content.decode()
    pair.refresh_from_db()
    assert pair.status == Decision.MERGED
    assert CI.objects.get(name="db-1").status == CI.Status.RETIRED
    listed = client.get(reverse("discovery:duplicate_list"), {"status": "merged"})
    assert [p.pk for p in listed.context["page"].object_list] == [pair.pk]


def test_registering_selected_devices(cast, login, world):
    reconcile(result(obs(hostname="pc-other")), source_name="agents")
    pks = list(CI.objects.filter(status=CI.Status.DISCOVERED).values_list("pk", flat=True))
    response = login(cast.admin).post(reverse("discovery:register_selected"), {"ci": pks})
    assert response.status_code == 302
    assert not CI.objects.filter(status=CI.Status.DISCOVERED).exists()


def test_the_runs_list_and_a_run_page(cast, login, world):
    reconcile(
        result(obs("nmap", ips=["192.0.2.9"], where="host 192.0.2.9"), fmt="nmap-xml"), source_name="scan"
    )
    client = login(cast.viewer)
    runs = client.get(reverse("discovery:run_list"))
    assert runs.context["page"].paginator.count == 2
    only = client.get(reverse("discovery:run_list"), {"source": "agents"})
    assert [r.source_name for r in only.context["page"].object_list] == ["agents"]
    last = DiscoveryRun.objects.get(source_name="scan")
    page = client.get(reverse("discovery:run_detail", args=[last.pk])).content.decode()
    assert "host 192.0.2.9" in page and "No identity the rules can use" in page


def test_the_metrics_page_shows_an_accuracy_metric(cast, login, world):
    snapshot.take()
    response = login(cast.viewer).get("/metrics/", {"metric": "cmdb_coverage", "by": "month"})
    assert response.status_code == 200 and response.context["error"] is None
    assert "Discovery coverage" in response.content.decode()
