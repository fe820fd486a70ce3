"""What a viewer sees: the register's pages load without JavaScript errors, the htmx filter bar
and search narrow the list in place, the dashboard draws its charts, and nothing offers them to
submit. (The `page` fixture fails the test on any JavaScript error.)"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tikting.improvement import services as S
from tikting.test import ready_item

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def register(cast):
    """Three open items in different practices and states, and one closed."""
    vpn = S.create_item(
        actor=cast.contributor,
        title="Slow VPN log-in",
        practice="problem",
        service=cast.network,
        impact=4,
        effort=4,
    )
    wiki = S.create_item(
        actor=cast.contributor, title="Outdated wiki pages", practice="knowledge", impact=2, effort=1
    )
    mttr = ready_item(cast)  # "Cut e-mail MTTR", incident practice, at step 4
    done = S.create_item(
        actor=cast.manager, title="Retire the fax gateway", practice="change", impact=3, effort=1
    )
    S.assess_item(done, actor=cast.manager, decision="reject", reason="Nobody uses it any more")
    return {"vpn": vpn, "wiki": wiki, "mttr": mttr, "done": done}


def rows(page: Page):
    return page.locator("#results tbody tr")


def test_viewer_sees_every_page_without_errors(page: Page, live_server, sign_in, cast, password, register):
    sign_in(cast.viewer, password)
    pages = [
        ("/register/", "Continual Improvement Register"),
        ("/register/board/", "Board"),
        ("/register/matrix/", "Impact × effort"),
        ("/governance/agenda/", "Monthly review agenda"),
        ("/governance/dashboard/", "Practice dashboard"),
        (register["mttr"].get_absolute_url(), "Cut e-mail MTTR"),
    ]
    for path, heading in pages:
        response = page.goto(f"{live_server.url}{path}")
        assert response is not None and response.status == 200, path
        expect(page.locator("h1").first).to_contain_text(heading)
        page.wait_for_load_state("load")
        # Nothing invites a viewer to submit an opportunity.
        expect(page.get_by_role("link", name="Submit an opportunity")).to_have_count(0)

    # The board puts the items in their step columns, the matrix in their quadrants.
    page.goto(f"{live_server.url}/register/board/")
    expect(page.locator("section.tk-board-col[aria-label='4. How do we get there?']")).to_contain_text(
        "Cut e-mail MTTR"
    )
    expect(page.locator("section.tk-board-col[aria-label='New: to assess']")).to_contain_text(
        "Slow VPN log-in"
    )
    page.goto(f"{live_server.url}/register/matrix/")
    expect(page.locator("main")).to_contain_text("Slow VPN log-in")

    # A viewer reads an item but cannot drive, edit or comment on it.
    page.goto(f"{live_server.url}{register['mttr'].get_absolute_url()}")
    expect(page.locator(".tk-item-header").get_by_role("link", name="Edit")).to_have_count(0)
    expect(page.locator("#steps .tk-transitions")).to_have_count(0)
    expect(page.locator("#timeline form")).to_have_count(0)
    expect(page.locator(f"canvas#indicator-chart-{register['mttr'].indicators.get().pk}")).to_be_visible()

    # The submit form itself is refused.
    response = page.goto(f"{live_server.url}/register/submit/")
    assert response is not None and response.status == 403


def test_dashboard_draws_its_charts(page: Page, live_server, sign_in, cast, password, register):
    sign_in(cast.viewer, password)
    page.goto(f"{live_server.url}/governance/dashboard/")
    canvases = page.locator("main canvas")
    expect(canvases.first).to_be_visible()
    assert canvases.count() >= 4
    for canvas_id in ("chart-flow", "chart-quadrant", "chart-status", "chart-outcome", "chart-benefit"):
        canvas = page.locator(f"canvas#{canvas_id}")
        expect(canvas).to_be_visible()
        # Chart.js took the canvas over (it sizes it and keeps the chart on it).
        page.wait_for_function(
            "id => window.Chart && Chart.getChart(document.getElementById(id)) !== undefined", arg=canvas_id
        )
        box = canvas.bounding_box()
        assert box is not None and box["width"] > 50 and box["height"] > 50, canvas_id
    # The status chart counts the register's items.
    total = page.evaluate(
        "() => Chart.getChart(document.getElementById('chart-status'))"
        ".data.datasets[0].data.reduce((a, b) => a + b, 0)"
    )
    assert total == 4


def test_list_filters_and_search_narrow_the_table_in_place(
    page: Page, live_server, sign_in, cast, password, register
):
    sign_in(cast.viewer, password)
    page.goto(f"{live_server.url}/register/")
    expect(page.get_by_role("link", name="Submit an opportunity")).to_have_count(0)
    expect(page.get_by_role("link", name="New item")).to_have_count(0)

    # Open items by default: the rejected one is not listed.
    expect(rows(page)).to_have_count(3)
    expect(page.locator("#results")).not_to_contain_text("Retire the fax gateway")
    # A marker on the window survives only if htmx swaps the table instead of reloading the page.
    page.evaluate("() => { window.tkNoReload = true; }")

    # A filter narrows the table.
    page.get_by_label("Practice").select_option(label="Problem management")
    expect(rows(page)).to_have_count(1)
    expect(rows(page).first).to_contain_text("Slow VPN log-in")
    expect(page.locator(".tk-table-meta")).to_contain_text("1 item")
    expect(page).to_have_url(re.compile(r"practice=problem"))
    assert page.evaluate("() => window.tkNoReload") is True

    # Two filters at once: nothing matches, and the page says so.
    page.get_by_label("Service").select_option(label="E-mail")
    expect(rows(page)).to_have_count(0)
    expect(page.locator("#results")).to_contain_text("No item matches these filters")

    # Back to any practice and service; a status filter brings the rejected item back.
    page.get_by_label("Practice").select_option(value="")
    page.get_by_label("Service").select_option(value="")
    expect(rows(page)).to_have_count(3)
    page.get_by_label("Status").select_option(value="all")
    expect(rows(page)).to_have_count(4)
    expect(page.locator("#results")).to_contain_text("Retire the fax gateway")
    page.get_by_label("Status").select_option(value="open")
    expect(rows(page)).to_have_count(3)

    # Search, by words or by reference.
    page.get_by_label("Search", exact=True).fill("wiki")
    expect(rows(page)).to_have_count(1)
    expect(rows(page).first).to_contain_text("Outdated wiki pages")
    expect(page).to_have_url(re.compile(r"q=wiki"))
    page.get_by_label("Search", exact=True).fill(register["vpn"].ref)
    expect(rows(page)).to_have_count(1)
    expect(rows(page).first).to_contain_text("Slow VPN log-in")
    page.get_by_label("Search", exact=True).fill("no such thing anywhere")
    expect(rows(page)).to_have_count(0)
    expect(page.locator("#results")).to_contain_text("No item matches these filters")
    assert page.evaluate("() => window.tkNoReload") is True

    # The filtered URL is a real page too (bookmarks, reloads): same rows, no htmx needed.
    page.goto(f"{live_server.url}/register/?practice=knowledge")
    expect(page.get_by_label("Practice")).to_have_value("knowledge")
    expect(rows(page)).to_have_count(1)
    expect(rows(page).first).to_contain_text("Outdated wiki pages")
    page.get_by_role("link", name="Reset").click()
    expect(rows(page)).to_have_count(3)
