"""Search from the header and an import from the browser, in Chromium at 1440 px and 375 px:
type in the header's box (or press /), read the ranked results; upload a CSV, read its dry run's
errors by line, import the good rows through the real worker and open the result.
Screenshots: /tmp/searchb-*.png."""

from __future__ import annotations

import datetime as dt
import io
import threading

import pytest
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import Page, expect

from tikting.improvement import services as S
from tikting.incidents.models import Incident
from tikting.test import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = "/tmp/searchb-{}.png"  # noqa: S108 (where the screenshots are looked at)
CSV = (
    "number,short_description,opened_at,priority\n"
    "INC7001,Mail relay down,2026-11-02T09:00:00+00:00,2\n"
    "INC7002,VPN flaps,2026-11-03 10:30,3\n"
    "INC7003,Printer,yesterday,2\n"
)


def no_overflow(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"page is {width}px wide"


@pytest.mark.parametrize("width", [1440, 375])
def test_search_from_the_header(page, sign_in, cast, live_server, width):
    S.create_item(actor=cast.contributor, title="Stop the mail relay dropping messages", practice="incident")
    Incident.objects.create(
        number="INC0004242",
        short_description="Mail relay down",
        description="The relay refused connections after the certificate expired.",
        opened_at=timezone.now() - dt.timedelta(days=2),
    )
    page.set_viewport_size({"width": width, "height": 900})
    sign_in(cast.viewer, PASSWORD)
    if width < 992:  # the header's box is in the collapsed menu
        page.click(".navbar-toggler")
    else:
        page.keyboard.press("/")
        expect(page.locator("#header-search")).to_be_focused()
    page.fill("#header-search", "mail relay")
    page.press("#header-search", "Enter")
    page.wait_for_url("**/search/?q=mail+relay")
    results = page.locator(".tk-search-results li")
    expect(results).to_have_count(2)
    expect(results.first).to_contain_text("INC0004242")  # a title that is the query: first
    expect(page.get_by_role("link", name="Register items 1")).to_be_visible()
    no_overflow(page)
    page.screenshot(path=SHOTS.format(f"results-{width}"), full_page=True)
    page.get_by_role("link", name="Incidents 1").click()
    expect(results).to_have_count(1)
    results.first.get_by_role("link").click()
    expect(page.locator("h1")).to_contain_text("INC0004242")


def run_worker_soon() -> threading.Thread:
    worker = threading.Thread(
        target=lambda: call_command("worker", "--once", "--no-schedule", stdout=io.StringIO()), daemon=True
    )
    worker.start()
    return worker


@pytest.mark.parametrize("width", [1440, 375])
def test_import_a_file_from_the_browser(page, sign_in, cast, live_server, width, tmp_path):
    page.set_viewport_size({"width": width, "height": 900})
    sign_in(cast.contributor, PASSWORD)
    page.goto(f"{live_server.url}/imports/")
    page.select_option("#import-kind", "incident")
    path = tmp_path / "incidents.csv"
    path.write_text(CSV)
    page.set_input_files("#import-file", str(path))
    page.get_by_role("button", name="Upload and check").click()
    expect(page.get_by_text("Checking every row")).to_be_visible()
    page.screenshot(path=SHOTS.format(f"checking-{width}"), full_page=True)
    run_worker_soon().join(timeout=60)
    # the page asks again every second: the dry run's report replaces the bar
    expect(page.get_by_role("button", name="Import 2 rows, leave out 1")).to_be_visible()
    expect(page.locator(".tk-import-errors")).to_contain_text("opened_at")
    # cells swapped in by htmx are labelled with their column, for the narrow layout (app.js)
    expect(page.locator(".tk-import-errors td").first).to_have_attribute("data-label", "Line")
    no_overflow(page)
    page.screenshot(path=SHOTS.format(f"checked-{width}"), full_page=True)
    assert Incident.objects.count() == 0
    page.get_by_role("button", name="Import 2 rows, leave out 1").click()
    run_worker_soon().join(timeout=60)
    expect(page.get_by_text("Imported in")).to_be_visible()
    no_overflow(page)
    page.screenshot(path=SHOTS.format(f"done-{width}"), full_page=True)
    assert sorted(Incident.objects.values_list("number", flat=True)) == ["INC7001", "INC7002"]
    page.get_by_role("link", name="Open the incidents").click()
    expect(page.locator("body")).to_contain_text("INC7002")
