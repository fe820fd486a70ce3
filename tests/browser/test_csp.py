"""The Content-Security-Policy (tikting/core/csp.py) holds on every main page, in Chromium: the
`page` fixture fails a test on any CSP violation reported by the browser, so visiting the pages is
the check. The handlers that replaced inline ones (print, confirm, copy) still work, and Swagger UI
at /api/docs draws the API under the same policy."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from tikting.accounts.models import ApiToken
from tikting.governance import services as GS
from tikting.incidents.models import Incident
from tikting.test import ready_item

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def world(cast):
    item = ready_item(cast)
    incident = Incident.objects.create(
        number="INC0001",
        short_description="Mail queue stuck",
        status="resolved",
        priority=2,
        service=cast.email,
        opened_at=timezone.now() - dt.timedelta(days=3),
        resolved_at=timezone.now() - dt.timedelta(days=2),
    )
    review = GS.create_review(actor=cast.manager)
    return {"item": item, "incident": incident, "review": review}


def visit(page: Page, url: str) -> None:
    response = page.goto(url)
    assert response is not None and response.status == 200, url
    assert "script-src 'self' 'nonce-" in response.headers["content-security-policy"]
    page.wait_for_load_state("load")


def test_the_main_pages_keep_the_policy(page: Page, live_server, sign_in, cast, password, world):
    sign_in(cast.manager, password)
    base = live_server.url
    for path in [
        "/register/",
        "/register/board/",
        "/register/matrix/",
        "/register/mine/",
        "/register/submit/",
        world["item"].get_absolute_url(),
        "/records/",
        "/records/incident/",
        f"/records/incident/{world['incident'].pk}/",
        "/metrics/",
        "/governance/agenda/",
        "/governance/dashboard/",
        world["review"].get_absolute_url(),
        "/account/tokens/",
    ]:
        visit(page, f"{base}{path}")
    # Charts are drawn (Chart.js under the policy): the item's indicator and the metrics page.
    page.goto(f"{base}{world['item'].get_absolute_url()}")
    expect(page.locator("canvas[id^=indicator-chart]")).to_be_visible()
    page.goto(f"{base}/metrics/")
    expect(page.locator("canvas#metrics-chart")).to_be_visible()
    # htmx swaps the register's table in place (no eval, no injected styles needed).
    page.goto(f"{base}/register/")
    page.fill("input[name=q]", "MTTR")
    expect(page.locator("#results tbody tr")).to_have_count(1)


def test_swagger_ui_works_under_the_policy(page: Page, live_server, sign_in, cast, password):
    sign_in(cast.viewer, password)
    visit(page, f"{live_server.url}/api/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("tikting API")
    page.get_by_role("button", name="GET /api/services", exact=False).first.click()
    page.get_by_role("button", name="Try it out").click()
    page.get_by_role("button", name="Execute").click()
    expect(page.locator(".live-responses-table tbody .response-col_status")).to_contain_text("200")


def test_the_admin_keeps_the_policy(page: Page, live_server, sign_in, cast, password):
    cast.admin.is_superuser = True
    cast.admin.save()
    sign_in(cast.admin, password)
    for path in ["/admin/", "/admin/accounts/user/", f"/admin/accounts/user/{cast.owner.pk}/change/"]:
        visit(page, f"{live_server.url}{path}")


def test_handlers_that_replaced_inline_ones_still_work(
    page: Page, live_server, sign_in, cast, password, world
):
    sign_in(cast.owner, password)
    # Tokens: the new token's field and copy button, and the confirmation before revoking.
    page.goto(f"{live_server.url}/account/tokens/")
    page.fill("#id_name", "laptop")
    page.get_by_role("button", name="Create token").click()
    expect(page.locator("#raw-token")).to_have_value(re.compile(r"^tkt_"))
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Revoke").click()
    assert ApiToken.objects.get(name="laptop").revoked_at is None  # dismissed: nothing revoked
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke").click()
    expect(page.locator(".alert-success")).to_contain_text("revoked")
    assert ApiToken.objects.get(name="laptop").revoked_at is not None
    # The printable review's Print button.
    page.goto(f"{live_server.url}{world['review'].get_absolute_url()}print/")
    page.evaluate("window.print = () => { window.tkPrinted = true; }")
    page.get_by_role("button", name="Print").click()
    assert page.evaluate("window.tkPrinted") is True


def test_the_login_page_shows_the_lockout(page: Page, live_server, cast, password):
    for _ in range(10):
        page.goto(f"{live_server.url}/login/")
        page.fill("#id_username", cast.owner.username)
        page.fill("#id_password", "wrong guess")
        page.click("button[type=submit]")
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", cast.owner.username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    expect(page.locator("#locked-out")).to_contain_text("Too many failed sign-ins")
    expect(page.locator("#locked-out")).to_contain_text("blocked for 15 minutes")
    assert "/login/" in page.url


def test_a_violation_would_fail_the_test(browser, live_server):
    """The check itself: an inline event handler added to a page is reported by `watch`."""
    from tests.browser.conftest import watch

    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    watch(page, errors)
    page.goto(f"{live_server.url}/login/")
    with page.expect_console_message(lambda message: "CSP violation" in message.text):
        page.evaluate(
            """document.body.insertAdjacentHTML(
                "beforeend", '<img src="/static/img/favicon.svg" onload="window.tkRan = true">')"""
        )
    context.close()
    assert any("script-src" in error for error in errors), errors
