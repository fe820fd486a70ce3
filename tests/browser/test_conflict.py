"""Two managers edit the same item at once: the second save is refused, shown, and never
silently overwrites the first (optimistic concurrency on Item.version)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tikting.accounts.models import Role
from tikting.improvement import services as S
from tikting.improvement.models import Item
from tikting.test import make_user

from .conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def item(cast):
    return S.create_item(
        actor=cast.contributor,
        title="Slow VPN log-in",
        description="Log-in takes a minute.",
        practice="incident",
        service=cast.network,
        impact=3,
        effort=2,
    )


@pytest.fixture
def two_managers(cast, live_server, new_page, password, item):
    """Mia and Max, each in their own browser, both with the edit form of `item` open."""
    max_ = make_user("max", Role.MANAGER, first_name="Max", last_name="Manager")
    mia_page, max_page = new_page(), new_page()
    for page, user in ((mia_page, cast.manager), (max_page, max_)):
        log_in(page, live_server.url, user, password)
        page.goto(f"{live_server.url}/register/{item.pk}/edit/")
        expect(page.get_by_label("Title")).to_have_value("Slow VPN log-in")
    return mia_page, max_page


def save(page: Page) -> None:
    page.get_by_role("button", name="Save changes").click()


def test_second_save_of_the_same_field_is_refused_then_reapplied(two_managers, cast, item):
    mia, max_ = two_managers

    # Mia saves first.
    mia.get_by_label("Title").fill("VPN log-in takes a minute")
    save(mia)
    expect(mia.get_by_role("alert").filter(has_text=f"{item.ref} saved.")).to_be_visible()
    expect(mia.locator("#item-title")).to_contain_text("VPN log-in takes a minute")

    # Max, still on the form he opened before, changes the title too (and the description).
    max_.get_by_label("Title").fill("VPN connection is slow")
    max_.get_by_label("Description").fill("Measured: 55 s on average.")
    save(max_)

    conflict = max_.locator(".tk-conflict")
    expect(conflict).to_be_visible()
    expect(conflict).to_contain_text(f"Not saved: {item.ref} was changed by Mia Manager")
    expect(conflict).to_contain_text("Nothing was overwritten")
    row = conflict.locator("tbody tr", has=max_.locator("th", has_text="Title"))
    expect(row).to_have_count(1)
    expect(row.locator("td").nth(0)).to_have_text("Slow VPN log-in")  # when Max opened it
    expect(row.locator("td").nth(1)).to_have_text("VPN log-in takes a minute")  # Mia's, saved
    expect(row.locator("td").nth(2)).to_have_text("VPN connection is slow")  # Max's
    expect(row).to_contain_text("yours (both changed it: check)")
    expect(row).to_have_class(re.compile("table-danger"))
    # The description, Max's change alone, is shown too: not changed on Mia's side, his kept.
    mine = conflict.locator("tbody tr", has=max_.locator("th", has_text="Description"))
    expect(mine.locator("td").nth(1)).to_have_text("not changed")
    expect(mine.locator("td").nth(2)).to_have_text("Measured: 55 s on average.")
    expect(mine).not_to_have_class(re.compile("table-danger"))
    expect(conflict.locator("tbody tr")).to_have_count(2)
    # One way forward, in the message itself.
    expect(conflict.get_by_role("button")).to_have_text("Save my changes on top of theirs")

    # Nothing of Max's was written, Mia's title stands.
    item.refresh_from_db()
    assert item.title == "VPN log-in takes a minute"
    assert item.description == "Log-in takes a minute."
    assert item.version == 2

    # Max's input is kept on the form; he reviews and saves again, now deliberately over Mia's.
    expect(max_.get_by_label("Title")).to_have_value("VPN connection is slow")
    expect(max_.get_by_label("Description")).to_have_value("Measured: 55 s on average.")
    conflict.get_by_role("button", name="Save my changes on top of theirs").click()
    expect(max_.get_by_role("alert").filter(has_text=f"{item.ref} saved.")).to_be_visible()
    expect(max_.locator("#item-title")).to_contain_text("VPN connection is slow")
    item.refresh_from_db()
    assert item.title == "VPN connection is slow"
    assert item.description == "Measured: 55 s on average."
    assert item.version == 3

    # Both saves are in the timeline, each by its author.
    timeline = max_.locator("#timeline")
    expect(timeline.locator(".tk-event").filter(has_text="Max Manager")).to_contain_text(
        "VPN connection is slow"
    )
    expect(timeline.locator(".tk-event").filter(has_text="Mia Manager").first).to_contain_text(
        "VPN log-in takes a minute"
    )


def test_second_save_of_another_field_keeps_both_changes(two_managers, cast, item):
    mia, max_ = two_managers

    mia.get_by_label("Title").fill("VPN log-in takes a minute")
    save(mia)
    expect(mia.get_by_role("alert").filter(has_text=f"{item.ref} saved.")).to_be_visible()

    # Max changes a different field: why it matters.
    max_.get_by_label("Why it matters").fill("Remote staff lose ten minutes a day.")
    save(max_)
    conflict = max_.locator(".tk-conflict")
    expect(conflict).to_contain_text("changed by Mia Manager")
    row = conflict.locator("tbody tr", has=max_.locator("th", has_text="Title"))
    expect(row.locator("td").nth(3)).to_have_text("theirs")  # in the form now
    expect(row.locator("td").nth(2)).to_have_text("not changed")
    item.refresh_from_db()
    assert (item.title, item.justification) == ("VPN log-in takes a minute", "")

    # The form now shows Mia's title and Max's justification: saving keeps both.
    expect(max_.get_by_label("Title")).to_have_value("VPN log-in takes a minute")
    expect(max_.get_by_label("Why it matters")).to_have_value("Remote staff lose ten minutes a day.")
    save(max_)
    expect(max_.get_by_role("alert").filter(has_text=f"{item.ref} saved.")).to_be_visible()
    item = Item.objects.get(pk=item.pk)
    assert item.title == "VPN log-in takes a minute"
    assert item.justification == "Remote staff lose ten minutes a day."
