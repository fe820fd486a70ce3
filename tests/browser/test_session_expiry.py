"""A session that ends while a page is open (signed out elsewhere, expired): the next action goes
to the login page with `next` = that page, and what the user had typed — a comment sent with htmx,
review minutes posted as a plain form — is back in the form after signing in; never a login form
inside a fragment, never a 405."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from tikting.governance import services as G
from tikting.test import ready_item

from .conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

COMMENT = "Vendor confirmed the fix for next week;\nwe measure again after it."


def end_session(page) -> None:
    page.context.clear_cookies(name="sessionid")


def sign_in_again(page, user, password) -> None:
    expect(page.locator("#tk-drafts-note")).to_be_visible()  # the login page says the text is kept
    page.fill("#id_username", user.username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")


def test_a_comment_typed_when_the_session_ended_comes_back_after_signing_in(
    page, live_server, cast, password
):
    item = ready_item(cast)
    url = f"{live_server.url}{item.get_absolute_url()}"
    log_in(page, live_server.url, cast.owner, password)
    page.goto(url)
    box = page.locator("#timeline textarea[name=body]")
    box.fill(COMMENT)
    end_session(page)
    page.locator("#timeline").get_by_role("button", name="Comment").click()

    page.wait_for_url("**/login/**")
    assert parse_qs(urlsplit(page.url).query)["next"] == [item.get_absolute_url()]
    sign_in_again(page, cast.owner, password)

    page.wait_for_url(url)  # the page, not the fragment's address (no 405)
    expect(page.locator("#timeline textarea[name=body]")).to_have_value(COMMENT)
    expect(page.locator("#tk-drafts-restored")).to_be_visible()
    page.locator("#timeline").get_by_role("button", name="Comment").click()
    expect(page.locator("#item-timeline")).to_contain_text("we measure again after it.")
    assert item.comments.get().body.replace("\r\n", "\n") == COMMENT
    # given back once: a later visit starts empty
    page.reload()
    expect(page.locator("#timeline textarea[name=body]")).to_have_value("")


def test_minutes_posted_as_a_form_when_the_session_ended_come_back(page, live_server, cast, password):
    item = ready_item(cast)
    meeting = G.create_review(actor=cast.manager)
    form_url = f"{live_server.url}/governance/reviews/{meeting.pk}/minutes/new/?item={item.pk}"
    log_in(page, live_server.url, cast.manager, password)
    page.goto(form_url)
    page.locator("textarea[name=text]").fill("Keep going: the vendor fix lands next week.")
    end_session(page)
    page.get_by_role("button", name="Record decision").click()

    page.wait_for_url("**/login/**")
    assert parse_qs(urlsplit(page.url).query)["next"] == [
        f"/governance/reviews/{meeting.pk}/minutes/new/?item={item.pk}"
    ]
    sign_in_again(page, cast.manager, password)
    page.wait_for_url(form_url)
    expect(page.locator("textarea[name=text]")).to_have_value("Keep going: the vendor fix lands next week.")


def test_a_form_that_went_through_is_not_given_back(page, live_server, cast, password):
    item = ready_item(cast)
    meeting = G.create_review(actor=cast.manager)
    log_in(page, live_server.url, cast.manager, password)
    page.goto(f"{live_server.url}/governance/reviews/{meeting.pk}/minutes/new/?item={item.pk}")
    page.locator("textarea[name=text]").fill("Accepted as proposed.")
    page.get_by_role("button", name="Record decision").click()
    page.wait_for_url("**/governance/agenda/**")
    page.goto(f"{live_server.url}/governance/reviews/{meeting.pk}/minutes/new/?item={item.pk}")
    expect(page.locator("textarea[name=text]")).to_have_value("")
