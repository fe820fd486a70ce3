"""Holding a register review in the browser: the manager records who attends and who sent
apologies, freezes and circulates the agenda, sees an item submitted afterwards kept apart as
"added since circulation", and records action items with an owner and a due date (one on an item,
one raising a new register item); at 1440 px and at 375 px wide.

TIKTING_SCREENSHOTS=<dir> keeps a full-page screenshot of the review page at each width."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from tikting.governance import services as GS
from tikting.governance.models import MeetingAction, ReviewStatus
from tikting.improvement import services as S
from tikting.improvement.models import Item
from tikting.test import ready_item

from .conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _no_sideways_scroll(page: Page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow} px"


@pytest.mark.parametrize("width", [1440, 375])
def test_hold_a_review_attendance_circulation_and_action_items(
    page: Page, live_server, cast, password, width
):
    page.set_viewport_size({"width": width, "height": 900})
    asked: list[str] = []
    page.on("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    item = ready_item(cast)
    S.create_item(actor=cast.contributor, title="Printer queue clean-up")  # on the agenda: to assess
    meeting = GS.create_review(
        actor=cast.manager, title="December review", scheduled_for=timezone.localdate()
    )
    due = timezone.localdate() + dt.timedelta(days=14)

    log_in(page, live_server.url, cast.manager, password)
    page.goto(f"{live_server.url}{meeting.get_absolute_url()}")
    circulate = page.get_by_role("button", name="Freeze and circulate the agenda")
    expect(circulate).to_be_disabled()  # the attendees first

    # Attendance
    page.select_option("#id_attendees", [str(cast.owner.pk), str(cast.contributor.pk)])
    page.select_option("#id_apologies", [str(cast.viewer.pk)])
    page.get_by_role("button", name="Save attendance").click()
    expect(page.locator(".tk-messages")).to_contain_text("Attendance recorded")
    expect(page.locator("[data-attendees]")).to_contain_text(str(cast.owner))
    expect(page.locator("[data-apologies]")).to_contain_text(str(cast.viewer))

    # Freeze and circulate
    page.get_by_role("button", name="Freeze and circulate the agenda").click()
    expect(page.locator(".tk-messages")).to_contain_text("frozen and circulated to 3")
    assert asked == ["Freeze the agenda as it stands now and circulate it to the 2 attendees and the chair?"]
    expect(page.locator("[data-review-status]")).to_have_text("Agenda circulated")
    meeting.refresh_from_db()
    assert meeting.status == ReviewStatus.CIRCULATED
    S.create_item(actor=cast.contributor, title="Chatbot for password resets")  # after circulation
    page.reload()
    expect(page.locator("[data-added-since]")).to_contain_text("Chatbot for password resets")
    expect(page.locator("[data-circulation]")).to_contain_text(str(cast.contributor))

    # Action items: one on an item, one raising a new register item
    page.fill("#id_title", "Call the vendor about licences")
    page.select_option("#id_owner", str(cast.contributor.pk))
    page.fill("#id_due_date", due.isoformat())
    page.fill("#id_item", item.ref)
    page.get_by_role("button", name="Add action item").click()
    expect(page.locator(".tk-messages")).to_contain_text(f"recorded as an action on {item.ref}")
    page.fill("#id_title", "Automate licence reclaim")
    page.select_option("#id_owner", str(cast.owner.pk))
    page.fill("#id_due_date", due.isoformat())
    page.get_by_role("button", name="Add action item").click()
    expect(page.locator(".tk-messages")).to_contain_text("recorded as a new register item")
    raised = Item.objects.get(title="Automate licence reclaim")
    rows = page.locator("[data-action-items] tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("Open")
    expect(rows.nth(1)).to_contain_text("New: to assess")
    expect(rows.nth(1).get_by_role("link", name=raised.ref)).to_have_attribute(
        "href", f"/register/{raised.pk}/"
    )
    # A bad one is refused naming the field, nothing is written
    page.fill("#id_title", "Nobody's job")
    page.fill("#id_due_date", due.isoformat())
    page.get_by_role("button", name="Add action item").click()
    expect(page.locator("[data-action-form] .invalid-feedback")).to_contain_text("Choose who owns the action")
    assert MeetingAction.objects.count() == 2

    page.goto(f"{live_server.url}{meeting.get_absolute_url()}")
    _no_sideways_scroll(page)
    shots = os.environ.get("TIKTING_SCREENSHOTS")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(shots) / f"review-{width}.png"), full_page=True)

    # Hold it: the circulated agenda stays, the late item is kept beside it
    page.get_by_role("button", name="Mark as held").click()
    expect(page.locator("[data-review-status]")).to_have_text("Held")
    meeting.refresh_from_db()
    assert [s["items"][0]["title"] for s in meeting.agenda["added_since_circulation"]] == [
        "Chatbot for password resets"
    ]
    page.goto(f"{live_server.url}/governance/reviews/{meeting.pk}/print/")
    expect(page.locator("[data-agenda=frozen]")).to_contain_text("as circulated before the meeting")
    expect(page.locator("[data-action-items]")).to_contain_text("Call the vendor about licences")
    _no_sideways_scroll(page)
    if shots:
        page.screenshot(path=str(Path(shots) / f"review-print-{width}.png"), full_page=True)
