"""No horizontal overflow on the main pages: at 1440×900 (a laptop) and 375×812 (a phone) the page
never scrolls sideways and no element is wider than the window; at 1440 the register table shows
every column whole (no cell cut short). Checked on the demo organisation (one month of history),
signed in as the improvement manager, who sees every main page; pages of apps that exist
(intake, jobs, sprints, CMDB health) are included when their URLs do."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.urls import NoReverseMatch, reverse

from .conftest import watch

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = ((1440, 900), (375, 812))

# The page scrolls sideways, or an element (shown) is wider than the window.
OVERFLOW = """() => {
  const width = window.innerWidth;
  const shown = (el) => {
    const style = getComputedStyle(el);
    return style.display !== "none" && style.visibility !== "hidden";
  };
  const classes = (el) => (typeof el.className === "string" ? el.className.trim().split(/\\s+/) : []);
  const name = (el) => [el.tagName.toLowerCase() + (el.id ? "#" + el.id : ""), ...classes(el)].join(".");
  const wide = [...document.querySelectorAll("body *")]
    .filter((el) => el.getBoundingClientRect().width > width + 0.5 && shown(el))
    .slice(0, 5).map((el) => name(el) + " " + Math.round(el.getBoundingClientRect().width) + "px");
  return {scrollWidth: document.documentElement.scrollWidth, width, wide};
}"""

# Register table cells whose content is cut (ellipsis, hidden overflow), and a table wider than its box.
CUT_CELLS = """() => {
  const table = document.querySelector("#results table");
  if (!table) return ["no register table"];
  const cut = [...table.querySelectorAll("th, td")].filter((cell) => cell.scrollWidth > cell.clientWidth + 1)
    .map((cell) => cell.textContent.trim().slice(0, 40));
  const box = table.closest(".table-responsive");
  if (box && box.scrollWidth > box.clientWidth + 1) {
    cut.push(`table ${box.scrollWidth}px in ${box.clientWidth}px`);
  }
  return cut;
}"""


@pytest.fixture
def demo():
    call_command("demo", "--history-months", "1", stdout=io.StringIO())


def main_pages() -> list[str]:
    from tikting.governance.models import ReviewMeeting
    from tikting.improvement.models import Item
    from tikting.incidents.models import Incident

    acting = Item.objects.filter(status="action").order_by("pk").first()
    closed = Item.objects.filter(status="closed").order_by("pk").first()
    incident = Incident.objects.order_by("pk").first()
    review = ReviewMeeting.objects.order_by("pk").first()
    assert acting and closed and incident and review, "the demo gives every kind of page something to show"
    pages = [
        "/register/",
        "/register/?status=all",
        "/register/board/",
        "/register/matrix/",
        "/register/mine/",
        "/register/submit/",
        f"/register/{acting.pk}/",
        f"/register/{closed.pk}/",
        f"/register/{acting.pk}/edit/",
        "/records/",
        "/records/incident/",
        f"/records/incident/{incident.pk}/",
        "/metrics/",
        "/governance/agenda/",
        "/governance/reviews/",
        f"/governance/reviews/{review.pk}/",
        "/governance/dashboard/",
        "/account/tokens/",
    ]
    # Apps that may or may not be installed: their main pages when they are.
    for name in (
        "signals:queue",
        "signals:runs",
        "signals:recurring",
        "jobs:list",
        "cadence:sprint_list",
        "cadence:capacity",
        "cadence:leadership",
        "discovery:health",
        "notifications:list",
        "notifications:preferences",
        "notifications:webhooks",
    ):
        try:
            pages.append(reverse(name))
        except NoReverseMatch:
            continue
    return pages


def test_main_pages_fit_a_laptop_and_a_phone(demo, browser, live_server):
    pages = main_pages()
    problems: list[str] = []
    errors: list[str] = []
    for width, height in WIDTHS:
        context = browser.new_context(viewport={"width": width, "height": height})
        context.set_default_timeout(20_000)
        page = context.new_page()
        watch(page, errors)
        page.goto(f"{live_server.url}/login/")
        page.fill("#id_username", "manager")
        page.fill("#id_password", "demo")
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/login/" not in url)
        for path in pages:
            response = page.goto(f"{live_server.url}{path}")
            assert response is not None and response.ok, f"{path}: HTTP {response and response.status}"
            page.wait_for_load_state("networkidle")
            found = page.evaluate(OVERFLOW)
            if found["scrollWidth"] > found["width"] or found["wide"]:
                problems.append(f"{width} px {path}: page {found['scrollWidth']} px wide; {found['wide']}")
            if width == 1440 and path.startswith("/register/?") or width == 1440 and path == "/register/":
                cut = page.evaluate(CUT_CELLS)
                if cut:
                    problems.append(f"{width} px {path}: register cells cut short: {cut[:5]}")
        context.close()
    assert not errors, f"JavaScript errors or CSP violations: {errors}"
    assert not problems, "Horizontal overflow:\n" + "\n".join(problems)
