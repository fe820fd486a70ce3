"""/api/docs (Swagger UI) leads back to the app and names the metrics as the pages do."""

from __future__ import annotations

from contextlib import nullcontext

import pytest
from playwright.sync_api import expect

from .conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_api_docs_lead_back_to_the_app(page, live_server, cast, password):
    log_in(page, live_server.url, cast.viewer, password)
    page.goto(f"{live_server.url}/api/docs")
    expect(page.get_by_text("MTTR (mean time to resolve)")).to_be_visible()
    back = page.get_by_role("link", name="← Back to tikting")
    expect(back).to_have_attribute("href", "/register/")
    with page.context.expect_page() if back.get_attribute("target") == "_blank" else nullcontext() as opened:
        back.click()
    shown = opened.value if opened is not None else page
    shown.wait_for_url(f"{live_server.url}/register/")
    expect(shown.locator("nav.tk-navbar")).to_be_visible()


def test_the_api_docs_fit_a_phone(page, live_server, cast, password):
    """The description's table of metrics scrolls in its box; the page is no wider than the phone."""
    page.set_viewport_size({"width": 375, "height": 800})
    log_in(page, live_server.url, cast.viewer, password)
    page.goto(f"{live_server.url}/api/docs")
    expect(page.get_by_text("MTTR (mean time to resolve)")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
