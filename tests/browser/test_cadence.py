"""An improvement sprint in the browser: a manager plans it and adds an item, a team member drags
its card and moves another from the keyboard and logs hours, the manager holds the review; at
1440 px and at 375 px wide."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from tikting.accounts.models import Team
from tikting.cadence.models import Column, Sprint, SprintItem, SprintStatus, TimeLog
from tikting.improvement import services as S
from tikting.test import ready_item

from .conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("width", [1440, 375])
def test_plan_a_sprint_work_it_and_hold_its_review(page: Page, live_server, cast, password, width):
    page.set_viewport_size({"width": width, "height": 900})
    team = Team.objects.create(name="Service desk")
    cast.contributor.team = team
    cast.contributor.save()
    first = S.create_item(actor=cast.contributor, title="Self-service password reset")
    second = S.create_item(actor=cast.contributor, title="Printer queue clean-up")
    today = timezone.localdate()

    log_in(page, live_server.url, cast.manager, password)
    page.goto(f"{live_server.url}/cadence/sprints/")
    page.select_option("#id_team", label="Service desk")
    page.fill("#id_name", "Desk sprint 1")
    page.fill("#id_goal", "Fewer password calls")
    page.fill("#id_start", (today - dt.timedelta(days=2)).isoformat())
    page.fill("#id_end", (today + dt.timedelta(days=11)).isoformat())
    page.get_by_role("button", name="Plan sprint").click()
    expect(page.get_by_role("heading", name="Desk sprint 1")).to_be_visible()
    for item in (first, second):
        page.select_option("#id_item", value=str(item.pk))
        page.fill("#id_planned_hours", "4")
        page.get_by_role("button", name="Add to sprint").click()
        expect(page.locator(".tk-messages")).to_contain_text(f"{item.ref} added")
    page.get_by_role("button", name="Start sprint").click()
    expect(page.locator(".badge", has_text="Active")).to_be_visible()
    sprint = Sprint.objects.get(name="Desk sprint 1")

    # A team member works it: drag one card to Done, move the other from the keyboard, log hours.
    page.context.clear_cookies()
    log_in(page, live_server.url, cast.contributor, password)
    page.goto(f"{live_server.url}/cadence/sprints/{sprint.pk}/")
    card = SprintItem.objects.get(sprint=sprint, item=first)
    if width >= 992:
        page.locator(f"li[data-id='{card.pk}'] .tk-grip").drag_to(page.locator("ul[data-column='done']"))
        expect(page.locator("#tk-board-status")).to_contain_text(f"{first.ref} moved to Done")
    else:  # drag handles are for wider screens (app.css): on a phone, the column select moves it
        expect(page.locator(f"li[data-id='{card.pk}'] .tk-grip")).to_be_hidden()
        page.select_option(f"#move-{card.pk}", "done")
        page.locator(f"li[data-id='{card.pk}'] button", has_text="Move").click()
        expect(page.locator("#tk-board-status")).to_contain_text(f"{first.ref} moved to Done")
    expect(page.locator(f"ul[data-column='done'] li[data-id='{card.pk}']")).to_be_visible()
    card.refresh_from_db()
    assert card.column == Column.DONE
    # The other card from the keyboard alone: its column select, Tab to Move, Enter.
    other = SprintItem.objects.get(sprint=sprint, item=second)
    page.locator(f"#move-{other.pk}").focus()
    page.keyboard.press("ArrowDown")  # To do -> Doing
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Move"
    page.keyboard.press("Enter")
    expect(page.locator("#tk-board-status")).to_contain_text(f"{second.ref} moved to Doing")
    expect(page.locator(f"ul[data-column='doing'] li[data-id='{other.pk}']")).to_be_visible()
    expect(page.locator("[data-count-of='doing']")).to_have_text("1")
    expect(page.locator("[data-count-of='todo']")).to_have_text("0")
    # The focus stays on the card's select: the keyboard user keeps their place.
    assert page.evaluate("document.activeElement.id") == f"move-{other.pk}"
    other.refresh_from_db()
    assert other.column == Column.DOING
    page.reload()  # as saved
    expect(page.locator(f"ul[data-column='doing'] li[data-id='{other.pk}']")).to_be_visible()
    page.locator(f"li[data-id='{card.pk}'] summary", has_text="Log hours").click()
    page.fill(f"#hours-{card.pk}", "2.5")
    page.locator(f"li[data-id='{card.pk}'] button", has_text="Log").click()
    expect(page.locator(".tk-messages")).to_contain_text(f"2.5 h logged on {first.ref}")
    expect(page.get_by_test_id("hours-logged")).to_have_text("2.5 h")
    assert TimeLog.objects.get().user == cast.contributor

    # The manager holds the review.
    page.context.clear_cookies()
    log_in(page, live_server.url, cast.manager, password)
    page.goto(f"{live_server.url}/cadence/sprints/{sprint.pk}/")
    page.get_by_role("link", name="Hold the review").click()
    page.fill("#id_what_changed", "Reset page is live")
    page.select_option(f"#id_decision_{card.pk}", "close")
    page.select_option(f"#id_decision_{other.pk}", "continue")
    page.get_by_role("button", name="Record the review and close the sprint").click()
    expect(page.locator(f"#id_disposition_{other.pk} ~ .invalid-feedback")).to_contain_text("Say where")
    page.select_option(f"#id_disposition_{other.pk}", "register")
    page.get_by_role("button", name="Record the review and close the sprint").click()
    expect(page.locator(".tk-messages")).to_contain_text("reviewed and closed")
    sprint.refresh_from_db()
    assert sprint.status == SprintStatus.CLOSED
    page.goto(f"{live_server.url}/cadence/sprints/")
    expect(page.get_by_test_id("velocity")).to_contain_text("over 1 reviewed sprint")
    # The page's content fits the width (tables scroll inside their own box). The navigation bar
    # is the layout's, outside this page's say.
    overflow = page.evaluate(
        "[...document.querySelectorAll('main > *')]"
        ".some(e => e.getBoundingClientRect().right > window.innerWidth + 1)"
    )
    assert not overflow, "the sprint list's content is wider than the window"


@pytest.mark.parametrize("width", [1440, 375])
def test_a_manager_opens_the_leadership_view(page: Page, live_server, cast, password, width):
    page.set_viewport_size({"width": width, "height": 900})
    item = ready_item(cast, title="Slow VPN log-in")
    S.set_blocked(item, actor=cast.owner, blocked=True, blocker="Vendor")
    item.refresh_from_db()
    S.escalate_item(item, actor=cast.owner, note="Budget")
    log_in(page, live_server.url, cast.manager, password)
    page.goto(f"{live_server.url}/cadence/leadership/")
    expect(page.get_by_role("heading", name="Three items that most need a decision")).to_be_visible()
    expect(page.get_by_test_id("need-decision")).to_contain_text("Slow VPN log-in")
    expect(page.get_by_test_id("blockers")).to_contain_text("escalated")
    for title in (
        "Outcomes achieved",
        "Improvement capacity kept vs planned",
        "The practice measuring itself",
    ):
        expect(page.get_by_role("heading", name=title)).to_be_visible()
    overflow = page.evaluate(
        "[...document.querySelectorAll('main > *')]"
        ".some(e => e.getBoundingClientRect().right > window.innerWidth + 1)"
    )
    assert not overflow, "the leadership view is wider than the window"
