"""Working together in the browser (docs/collaboration.md): attach a file by dropping it on the panel
and by the file input, download it; save a filtered view and find it again in the sidebar;
bulk-assign twenty items; move a card on the board by dragging and from the keyboard, a refusal
shown inside the card. At 1440 px and at 375 px wide. Set TIKTING_SHOTS=<dir> to keep screenshots."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tikting.attachments.models import Attachment
from tikting.improvement import services as S
from tikting.improvement.models import Item
from tikting.savedviews.models import SavedView
from tikting.test import ready_item

from .conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
WIDTHS = [1440, 375]
SHOTS = os.environ.get("TIKTING_SHOTS", "")


def shot(page: Page, name: str, width: int) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{SHOTS}/{name}-{width}.png", full_page=True)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def _no_sideways_scroll(page: Page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 1, f"the page scrolls sideways by {overflow} px"


@pytest.mark.parametrize("width", WIDTHS)
def test_attach_by_drop_and_by_input_then_download(page: Page, live_server, cast, password, width, tmp_path):
    page.set_viewport_size({"width": width, "height": 900})
    item = ready_item(cast)
    log_in(page, live_server.url, cast.contributor, password)
    page.goto(f"{live_server.url}{item.get_absolute_url()}")
    panel = page.locator(f"#attachments-item-{item.pk}")
    expect(panel).to_contain_text("No file attached")

    # Dropped on the panel (what a drag from the desktop delivers: a DataTransfer with files).
    page.evaluate(
        """([selector, name, text]) => {
            const zone = document.querySelector(selector + " [data-attach-drop]");
            const data = new DataTransfer();
            data.items.add(new File([text], name, { type: "text/plain" }));
            for (const type of ["dragenter", "dragover", "drop"]) {
              const init = { bubbles: true, cancelable: true, dataTransfer: data };
              zone.dispatchEvent(new DragEvent(type, init));
            }
        }""",
        [f"#attachments-item-{item.pk}", "../incident timeline.txt", "09:14 mail queue stalls\n"],
    )
    expect(panel.locator("[data-attachment]")).to_have_count(1)
    expect(panel).to_contain_text("incident timeline.txt")

    # The file input (keyboard and no-drag users), with a file the allow-list refuses, then a good one.
    bad = tmp_path / "run.exe"
    bad.write_bytes(b"MZ\x90\x00")
    page.set_input_files(f"#attachments-item-{item.pk}-file", str(bad))
    page.locator(f"#attachments-item-{item.pk} button", has_text="Attach").click()
    expect(page.locator(f"#attachments-item-{item.pk} [role=alert]")).to_contain_text("not accepted")
    report = tmp_path / "PIR report.pdf"
    report.write_bytes(b"%PDF-1.4\n%%EOF\n")
    page.set_input_files(f"#attachments-item-{item.pk}-file", str(report))
    page.locator(f"#attachments-item-{item.pk} button", has_text="Attach").click()
    expect(panel.locator("[data-attachment]")).to_have_count(2)
    _no_sideways_scroll(page)
    panel.scroll_into_view_if_needed()
    shot(page, "attachments-item", width)

    with page.expect_download() as caught:
        panel.get_by_role("link", name="PIR report.pdf").click()
    download = caught.value
    assert download.suggested_filename == "PIR report.pdf"
    assert Path(download.path()).read_bytes() == b"%PDF-1.4\n%%EOF\n"
    assert Attachment.objects.filter(uploaded_by=cast.contributor).count() == 2
    # On the timeline of the item, as every change.
    page.reload()
    expect(page.locator("#item-timeline")).to_contain_text("PIR report.pdf")
    page.locator("#item-timeline").scroll_into_view_if_needed()
    shot(page, "attachments-timeline", width)


@pytest.mark.parametrize("width", WIDTHS)
def test_save_a_view_and_find_it_again_in_the_sidebar(page: Page, live_server, cast, password, width):
    page.set_viewport_size({"width": width, "height": 900})
    S.create_item(actor=cast.contributor, title="Faster password resets", practice="service_desk")
    S.create_item(actor=cast.contributor, title="Patch Tuesday checklist", practice="change")
    log_in(page, live_server.url, cast.owner, password)
    page.goto(f"{live_server.url}/register/")
    page.select_option("select[name=practice]", "change")
    expect(page.locator("#results")).not_to_contain_text("Faster password resets")
    expect(page).to_have_url(re.compile(r"practice=change"))
    if width < 1600:  # above the list below 1600 px, folded until opened
        page.get_by_role("navigation", name="Saved views").locator("summary").click()
    page.fill("#saved-view-name", "Change items")
    page.get_by_role("button", name="Save view").click()
    sidebar = page.get_by_role("navigation", name="Saved views")
    expect(sidebar.get_by_role("link", name="Change items")).to_have_attribute("aria-current", "page")
    assert "practice=change" in SavedView.objects.get().query
    shot(page, "saved-view-register", width)
    _no_sideways_scroll(page)

    # Elsewhere (a record list), the sidebar still lists it; opening it brings the filter back.
    page.goto(f"{live_server.url}/records/incident/")
    if width < 1600:
        page.get_by_role("navigation", name="Saved views").locator("summary").click()
    page.get_by_role("navigation", name="Saved views").get_by_role("link", name="Change items").click()
    expect(page.locator("#results")).to_contain_text("Patch Tuesday checklist")
    expect(page.locator("#results")).not_to_contain_text("Faster password resets")
    shot(page, "saved-view-opened", width)


@pytest.mark.parametrize("width", WIDTHS)
def test_bulk_assign_twenty_items(page: Page, live_server, cast, password, width):
    page.set_viewport_size({"width": width, "height": 900})
    items = [S.create_item(actor=cast.contributor, title=f"Opportunity {n:02}") for n in range(20)]
    closed_elsewhere = items[0]
    log_in(page, live_server.url, cast.manager, password)
    page.goto(f"{live_server.url}/register/?status=new")
    # Select every row of the page from the keyboard: the "select all" box, Space.
    page.locator("#bulk-select-all").focus()
    page.keyboard.press("Space")
    expect(page.locator("[data-bulk-count]")).to_have_text("20 selected")
    page.select_option("#bulk-owner", label=f"Owner: {cast.owner}")
    shot(page, "bulk-bar", width)
    _no_sideways_scroll(page)
    page.locator("#bulk-form button[value=owner]").click()
    expect(page.locator("[data-bulk-summary]")).to_contain_text("20 done, 0 refused")
    shot(page, "bulk-result", width)
    assert Item.objects.filter(pk__in=[i.pk for i in items], owner=cast.owner).count() == 20
    assert closed_elsewhere.pk in {i.pk for i in items}


@pytest.mark.parametrize("width", WIDTHS)
def test_board_moves_by_drag_and_keyboard_refusals_in_place(page: Page, live_server, cast, password, width):
    page.set_viewport_size({"width": width, "height": 900})
    ready = ready_item(cast, title="Ready to act")
    unready = ready_item(cast, title="No plan yet")
    unready.actions.all().delete()
    log_in(page, live_server.url, cast.owner, password)
    page.goto(f"{live_server.url}/register/board/")
    card = page.locator(f"article[data-id='{unready.pk}']")
    if width >= 992:  # dragged with the mouse, in steps as a hand does
        start = card.locator(".tk-board-meta").bounding_box()
        end = page.locator("[data-board-drop='action']").bounding_box()
        assert start and end
        page.mouse.move(start["x"] + 5, start["y"] + 5)
        page.mouse.down()
        page.mouse.move(end["x"] + end["width"] / 2, end["y"] + 20, steps=20)
        page.mouse.move(end["x"] + end["width"] / 2, end["y"] + 30, steps=5)
        page.mouse.up()
    else:
        card.focus()
        page.keyboard.press("Alt+ArrowRight")
    refusal = card.locator("[data-board-refusal]")
    expect(refusal).to_be_visible()
    expect(refusal).to_contain_text("cannot enter")
    expect(
        page.locator("[data-board-drop='plan']").locator(f"article[data-id='{unready.pk}']")
    ).to_have_count(1)
    shot(page, "board-refusal", width)
    # The other card moves with its Move form, from the keyboard.
    select = page.locator(f"#board-to-{ready.pk}")
    select.select_option("action")
    select.press("Tab")
    page.keyboard.press("Enter")
    expect(
        page.locator("[data-board-drop='action']").locator(f"article[data-id='{ready.pk}']")
    ).to_have_count(1)
    expect(page.locator("#tk-board-status")).to_contain_text("moved to")
    assert Item.objects.get(pk=ready.pk).status == "action"
    assert Item.objects.get(pk=unready.pk).status == "plan"
