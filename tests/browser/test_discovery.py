"""The CMDB health page in Chromium: its figures and trend charts at desktop and phone widths, and
a manager's one-click actions (register a discovered device; merge duplicates after confirming)
swapping their table row in place (htmx). Screenshots: /tmp/discoveryb-*.png."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from tikting.cmdb.models import ConfigurationItem as CI
from tikting.discovery.models import AccuracySnapshot, Decision, DuplicateCandidate
from tikting.discovery.observations import Interface, Observation, ParseResult
from tikting.discovery.reconcile import reconcile

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = "/tmp/discoveryb-{}.png"  # noqa: S108 (where the screenshots are looked at)


def world() -> None:
    """A CMDB after a discovery run, with two months of daily snapshots behind it."""
    for i in range(12):
        CI.objects.create(
            name=f"srv-{i:02d}",
            ci_class=CI.CIClass.SERVER,
            serial_number=f"S{i:03d}",
            manufacturer="Dell Inc.",
            location="Data centre 1",
        )
    CI.objects.create(
        name="old-print-01", ci_class=CI.CIClass.PRINTER, last_seen_at=timezone.now() - dt.timedelta(days=70)
    )
    CI.objects.create(name="db-1", ci_class=CI.CIClass.SERVER, hostname="db")
    CI.objects.create(name="db-2", ci_class=CI.CIClass.SERVER, hostname="db")
    seen = timezone.now().replace(microsecond=0) - dt.timedelta(hours=2)
    observations = [
        Observation(
            source="glpi-agent",
            seen_at=seen,
            where=f"agent {i}",
            kind="computer",
            serial=f"S{i:03d}",
            manufacturer="Dell Inc.",
            os_name="Debian GNU/Linux 12",
            extra={"location": "Data centre 2"} if i == 3 else {},
        )
        for i in range(10)
    ]
    observations += [
        Observation(
            source="nmap",
            seen_at=seen,
            where="host 10.0.0.77",
            hostname="laptop-of-a-visitor.guest.example",
            interfaces=[Interface(mac="00:1c:42:aa:bb:cc", ipv4=("10.0.0.77",))],
        ),
        Observation(source="glpi-agent", seen_at=seen, where="agent db", kind="computer", hostname="db"),
    ]
    reconcile(ParseResult("glpi-json", observations), source_name="agents", file_name="inventory.json")
    today = timezone.localdate()
    for days_ago in range(60, 0, -1):
        AccuracySnapshot.objects.create(
            day=today - dt.timedelta(days=days_ago),
            ci_class="server",
            taken_at=timezone.now() - dt.timedelta(days=days_ago),
            in_scope=14,
            seen=min(14, 4 + (60 - days_ago) // 6),
            accurate=min(13, 3 + (60 - days_ago) // 6),
            unregistered=max(0, 6 - (60 - days_ago) // 10),
            stale=max(1, 5 - (60 - days_ago) // 12),
            required=112,
            filled=60 + (60 - days_ago) // 2,
        )


def test_the_health_page_at_desktop_and_phone_widths(page: Page, live_server, sign_in, cast, password):
    world()
    sign_in(cast.viewer, password)
    page.locator("nav.tk-navbar").get_by_role("link", name="CMDB health").click()
    expect(page.get_by_role("heading", name="CMDB health")).to_be_visible()
    figures = page.locator("#health-figures")
    expect(figures).to_contain_text("Discovery coverage")
    expect(figures).to_contain_text("Unregistered devices")
    expect(page.get_by_role("link", name="laptop-of-a-visitor")).to_be_visible()
    # Both trend charts drawn by Chart.js from the snapshots (no inline script: the CSP allows none)
    # (waited for: the page is visible before Chart.js has loaded and drawn, once so under load)
    for canvas in ("health-chart-ratios", "health-chart-counts"):
        page.wait_for_function(
            f"() => !!(window.Chart && Chart.getChart(document.getElementById('{canvas}')))", timeout=15_000
        )
    assert page.locator("form[action^='/discovery/cis/']").count() == 0  # a viewer reads, acts on nothing
    page.screenshot(path=SHOTS.format("health-1440"), full_page=True)

    page.set_viewport_size({"width": 375, "height": 812})
    page.reload()
    expect(page.get_by_role("heading", name="CMDB health")).to_be_visible()
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 1, f"the page is {overflow}px wider than a phone"
    page.screenshot(path=SHOTS.format("health-375"), full_page=True)

    # drill down from a figure to the CIs behind it
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{live_server.url}/discovery/")
    page.locator("#health-figures").get_by_role("link", name="Stale CIs").click()
    expect(page.get_by_role("heading", name="Stale: not seen for the stale window")).to_be_visible()
    expect(page.get_by_role("link", name="old-print-01")).to_be_visible()
    page.screenshot(path=SHOTS.format("stale-1440"), full_page=True)


def test_a_manager_registers_a_device_and_merges_duplicates_in_place(
    page: Page, live_server, sign_in, cast, password
):
    world()
    sign_in(cast.manager, password)
    page.goto(f"{live_server.url}/discovery/")
    page.screenshot(path=SHOTS.format("health-manager-1440"), full_page=True)
    page.set_viewport_size({"width": 375, "height": 812})
    page.reload()
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 1, f"the page is {overflow}px wider than a phone"
    page.screenshot(path=SHOTS.format("health-manager-375"), full_page=True)
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{live_server.url}/discovery/cis/?figure=unregistered")
    row = page.locator("tr", has_text="laptop-of-a-visitor")
    row.get_by_label("Class of laptop-of-a-visitor").select_option("workstation")
    row.get_by_role("button", name="Register").click()
    expect(page.locator("tr.table-success")).to_contain_text("laptop-of-a-visitor registered.")
    visitor = CI.objects.get(name="laptop-of-a-visitor")
    assert (visitor.status, visitor.ci_class) == (CI.Status.ACTIVE, "workstation")

    page.goto(f"{live_server.url}/discovery/duplicates/")
    page.once("dialog", lambda dialog: dialog.accept())  # hx-confirm asks first
    pair = page.locator("tr", has_text="db-2")
    pair.get_by_role("button", name="Merge").click()
    expect(page.locator("tr.table-success")).to_contain_text("Merged into db-1.")
    assert DuplicateCandidate.objects.get().status == Decision.MERGED
    assert CI.objects.get(name="db-2").status == CI.Status.RETIRED
    page.screenshot(path=SHOTS.format("duplicates-1440"), full_page=True)
