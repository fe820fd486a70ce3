"""Mentions in Chromium: Carl writes a comment on Olga's item and mentions Otto, picking him from
the @ autocomplete; Otto signs in, sees the bell's count, opens his notifications and marks them
read (htmx); at 1440 px and at 375 px. Screenshots go to /tmp/notify when TIKTING_SCREENSHOTS is set."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tikting.notifications.models import Notification
from tikting.test import PASSWORD, ready_item

from .conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = os.environ.get("TIKTING_SCREENSHOTS", "")


def shot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


@pytest.mark.parametrize("width", [1440, 375])
def test_a_mention_reaches_the_bell(cast, live_server, new_page, width):
    item = ready_item(cast)
    Notification.objects.all().delete()
    carl = new_page()
    carl.set_viewport_size({"width": width, "height": 900})
    log_in(carl, live_server.url, cast.contributor, PASSWORD)
    carl.goto(f"{live_server.url}/register/{item.pk}/")
    box = carl.locator("textarea[name=body]")
    box.click()
    box.press_sequentially("Otto, the figures are in. @ot", delay=20)
    suggestion = carl.locator(".tk-mentions li", has_text="@otto")
    expect(suggestion).to_be_visible()
    shot(carl, f"mention-autocomplete-{width}")
    box.press("Enter")
    expect(box).to_have_value("Otto, the figures are in. @otto ")
    carl.locator("form[action$='/comments/'] button[type=submit]").click()
    expect(carl.locator(".tk-comment-body", has_text="@otto")).to_be_visible()
    # Carl follows the item from its page (htmx swaps the button)
    carl.locator(".tk-follow button", has_text="Follow").click()
    expect(carl.locator(".tk-follow button", has_text="Following")).to_be_visible()

    otto = new_page()
    otto.set_viewport_size({"width": width, "height": 900})
    log_in(otto, live_server.url, cast.other_owner, PASSWORD)
    otto.goto(f"{live_server.url}/register/")
    bell = otto.locator("#tk-bell .tk-bell-count")
    expect(bell).to_have_text("1")
    shot(otto, f"bell-{width}")
    otto.locator("#tk-bell").click()
    otto.wait_for_url("**/notifications/")
    row = otto.locator(".tk-notification.tk-unread")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("@otto")
    expect(row).to_contain_text("@mentioned")
    shot(otto, f"notifications-{width}")
    row.locator("button", has_text="Mark read").click()
    expect(otto.locator(".tk-notification.tk-unread")).to_have_count(0)
    expect(otto.locator("#tk-bell .tk-bell-count")).to_have_count(0)
    assert Notification.objects.get(recipient=cast.other_owner).read_at is not None
    # nothing overflows sideways
    assert otto.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    otto.goto(f"{live_server.url}/notifications/preferences/")
    shot(otto, f"preferences-{width}")
    assert otto.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
