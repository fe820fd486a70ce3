"""Register rules in Chromium: a refused move says what is missing and what to do, and the owner
does it from the same page (cancel an open action with a reason), on a desktop and on a phone."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tikting.improvement import services as S
from tikting.test import ready_item

from .conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("width", [1440, 375])
def test_a_refused_step_says_what_to_do_and_the_owner_does_it(new_page, live_server, cast, password, width):
    item = S.transition_item(ready_item(cast), actor=cast.owner, to="action")
    S.record_measurement(item.indicators.get(), actor=cast.owner, value="7")
    page = new_page()
    page.set_viewport_size({"width": width, "height": 900})
    log_in(page, live_server.url, cast.owner, password)
    page.goto(f"{live_server.url}{item.get_absolute_url()}")

    # The checklist says it before anyone tries; the refusal says it again, with what to do.
    expect(page.locator("#steps .tk-gaps")).to_contain_text("open: “Write runbook”")
    page.locator("#steps").get_by_role("button", name="Go to step 6").click()
    error = page.locator("[data-transition-error]")
    expect(error).to_contain_text("cannot enter '6. Did we get there?'")
    expect(error).to_contain_text("mark each done, or cancel it with a reason under Plan")

    # Cancelling needs a reason; with one, the action stays in the plan, struck through.
    action = item.actions.get()
    page.get_by_role("button", name="Cancel “Write runbook”").click()
    cancel = page.locator(f"#action-cancel-{action.pk} form")
    cancel.get_by_role("button", name="Cancel the action").click()
    expect(page.locator("#plan")).to_contain_text("Say why “Write runbook” will not be done.")
    page.locator(f"#action-cancel-{action.pk} form").get_by_label("Why it will not be done").fill(
        "The vendor's patch fixed it"
    )
    page.locator(f"#action-cancel-{action.pk} form").get_by_role("button", name="Cancel the action").click()
    expect(page.locator(f"#action-{action.pk}")).to_have_attribute("data-action-state", "cancelled")
    expect(page.locator(f"#action-{action.pk}")).to_contain_text("The vendor's patch fixed it")

    page.locator("#steps").get_by_role("button", name="Go to step 6").click()
    expect(page.locator(".tk-item-header [data-status]")).to_have_attribute("data-status", "evaluation")
    # Nothing runs off the side of a phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= width
