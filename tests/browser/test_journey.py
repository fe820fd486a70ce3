"""The register's main journey, driven in Chromium like the people who do it.

A contributor submits an opportunity; a manager assesses it, assigns an owner and sets a target
date; the owner takes it through the seven steps (vision, indicator with baseline and target, a
plan, action, a measurement, evaluation) and closes it with lessons and a follow-up.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from tikting.core.models import StatusChange
from tikting.improvement.models import Item
from tikting.test import ready_item

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sign_out(page: Page) -> None:
    page.locator("#user-menu").click()
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login/"))


def status_badge(page: Page):
    return page.locator(".tk-item-header [data-status]")


def go_to_next_step(page: Page, number: int) -> None:
    """Click the "Go to step N" button of the stepper and wait for htmx to show the new step."""
    page.locator("#steps").get_by_role("button", name=f"Go to step {number}").click()
    expect(page.locator("#steps li[aria-current=step] .tk-step-dot")).to_have_text(str(number))


def test_opportunity_to_closure(page: Page, live_server, sign_in, cast, password):
    today = timezone.localdate()
    target_date = today + dt.timedelta(days=60)

    # --- The contributor submits an opportunity ---------------------------------------------
    sign_in(cast.contributor, password)
    page.locator("nav.tk-navbar").get_by_role("link", name="Submit an opportunity").click()
    expect(page.get_by_role("heading", name="Submit an improvement opportunity")).to_be_visible()
    page.get_by_label("Title").fill("Password resets take two days")
    page.get_by_label("Description").fill("Users wait for the service desk to reset their password.")
    page.get_by_label("Practice").select_option(label="Service desk")
    page.get_by_label("Service").select_option(label="E-mail")
    # The sliders, with the keyboard: impact 3 -> 4, effort 3 -> 2 (a quick win).
    page.get_by_label("Impact").press("ArrowRight")
    page.get_by_label("Effort").press("ArrowLeft")
    expect(page.locator("[data-quadrant-badge]")).to_have_text("Quick win")
    page.get_by_label("Why it matters").fill("Every locked-out user loses half a day.")
    page.locator("form.tk-form").get_by_role("button", name="Submit").click()

    expect(page.get_by_role("alert").filter(has_text="is in the register")).to_be_visible()
    item = Item.objects.get(title="Password resets take two days")
    expect(page).to_have_url(re.compile(rf"/register/{item.pk}/$"))
    assert item.status == "new"
    assert item.submitted_by == cast.contributor
    assert (item.impact, item.effort, item.quadrant) == (4, 2, "quick_win")
    assert item.practice == "service_desk" and item.service == cast.email
    expect(status_badge(page)).to_have_attribute("data-status", "new")
    # A contributor cannot assess.
    expect(page.locator("#assessment")).to_have_count(0)
    sign_out(page)

    # --- The manager assesses and accepts it, assigning the owner -------------------------------
    sign_in(cast.manager, password)
    page.get_by_role("link", name="Password resets take two days").click()
    expect(page.locator("#item-title")).to_contain_text("Password resets take two days")
    assessment = page.locator("#assessment")
    assessment.locator("label", has_text="Accept").click()
    assessment.get_by_label("Owner").select_option(value=str(cast.owner.pk))
    assessment.get_by_label("Reason").fill("Quick win, owned by the service desk lead.")
    assessment.get_by_role("button", name="Record decision").click()
    expect(page.locator("#item-flash")).to_contain_text("assessed: 1. Vision")
    expect(status_badge(page)).to_have_attribute("data-status", "vision")
    expect(page.locator("#assessment")).to_have_count(0)
    item.refresh_from_db()
    assert item.status == "vision" and item.owner == cast.owner and item.assessed_by == cast.manager

    # Not ready to act: the checklist names what is missing.
    readiness = page.locator("#readiness")
    expect(readiness.locator("[data-ready=owner]")).to_have_class(re.compile("tk-ok"))
    for missing in ("target_date", "baseline", "target"):
        expect(readiness.locator(f"[data-ready={missing}]")).to_have_class(re.compile("tk-missing"))
    expect(readiness).to_contain_text("A target date")

    # The manager sets the target date on the edit form.
    page.locator(".tk-item-header").get_by_role("link", name="Edit").click()
    expect(page.get_by_role("heading", name=f"Edit {item.ref}")).to_be_visible()
    page.get_by_label("Target date").fill(target_date.isoformat())
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("alert").filter(has_text=f"{item.ref} saved.")).to_be_visible()
    expect(page.locator("#readiness [data-ready=target_date]")).to_have_class(re.compile("tk-ok"))
    item.refresh_from_db()
    assert item.target_date == target_date
    sign_out(page)

    # --- The owner drives it through the seven steps ----------------------------------------
    sign_in(cast.owner, password)
    nav = page.locator("nav.tk-navbar")
    nav.get_by_role("button", name="Register").click()  # the Register menu
    nav.get_by_role("link", name="My items").click()
    page.get_by_role("link", name="Password resets take two days").first.click()
    expect(page.locator("#item-title")).to_contain_text("Password resets take two days")

    # Too early: step 2 needs a vision. The form says so before and after trying.
    step2 = page.locator("#steps form.tk-next")
    expect(step2.locator(".tk-gaps")).to_contain_text("a vision (the business outcome this serves)")
    page.locator("#steps").get_by_role("button", name="Go to step 2").click()
    expect(page.locator("[data-transition-error]")).to_contain_text("it needs a vision")
    expect(status_badge(page)).to_have_attribute("data-status", "vision")
    item.refresh_from_db()
    assert item.status == "vision"

    # Step 1: the vision, on the edit form (the owner may edit what they own).
    page.locator(".tk-item-header").get_by_role("link", name="Edit").click()
    expect(page.get_by_label("Owner")).to_be_disabled()  # set by a manager only
    page.get_by_label("Vision").fill("Staff regain access to their tools within the hour.")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#about")).to_contain_text("Staff regain access to their tools within the hour.")
    expect(page.locator("#steps .tk-gaps")).to_have_count(0)
    go_to_next_step(page, 2)
    expect(status_badge(page)).to_have_attribute("data-status", "current_state")

    # Step 2: where are we now? An indicator with its baseline. Step 3 needs one.
    expect(page.locator("#steps .tk-gaps")).to_contain_text("an indicator with a baseline")
    page.locator("#indicators").get_by_role("button", name="Add indicator").first.click()
    add = page.locator("#indicator-add form")
    expect(add).to_be_visible()
    add.get_by_label("Indicator").fill("Time to reset a password")
    add.get_by_label("Unit").fill("h")
    add.get_by_label("Direction").select_option("lower")
    add.get_by_label("Role").select_option("primary")
    add.get_by_label("Baseline", exact=True).fill("48")
    add.get_by_label("Baseline date").fill((today - dt.timedelta(days=7)).isoformat())
    add.get_by_label("Baseline method").fill("Median over last month's tickets")
    add.get_by_role("button", name="Add indicator").click()
    expect(page.locator("#item-flash")).to_contain_text("Indicator “Time to reset a password” added.")
    indicator = item.indicators.get()
    assert indicator.baseline_value == 48 and indicator.target_value is None
    card = page.locator(f"#indicator-{indicator.pk}")
    expect(card).to_contain_text("48")
    go_to_next_step(page, 3)
    expect(status_badge(page)).to_have_attribute("data-status", "target_state")

    # Step 3: where do we want to be? The target, on the indicator's edit form.
    expect(page.locator("#steps .tk-gaps")).to_contain_text("an indicator with a target")
    card.get_by_role("button", name="Edit").click()
    edit = page.locator(f"#indicator-edit-{indicator.pk} form")
    expect(edit).to_be_visible()
    edit.get_by_label("Target", exact=True).fill("4")
    edit.get_by_label("Target date").fill(target_date.isoformat())
    edit.get_by_role("button", name="Save indicator").click()
    expect(page.locator("#item-flash")).to_contain_text("Indicator “Time to reset a password” saved.")
    indicator.refresh_from_db()
    assert indicator.target_value == 4
    expect(page.locator("#readiness .tk-missing")).to_have_count(0)
    go_to_next_step(page, 4)
    expect(status_badge(page)).to_have_attribute("data-status", "plan")

    # Step 4: how do we get there? Step 5 needs a planned action.
    expect(page.locator("#steps .tk-gaps")).to_contain_text("at least one planned action")
    plan = page.locator("#plan form.tk-subform")
    plan.get_by_label("Action").fill("Enable self-service password reset")
    plan.get_by_label("Owner").select_option(value=str(cast.owner.pk))
    plan.get_by_label("Due").fill((today + dt.timedelta(days=14)).isoformat())
    plan.get_by_role("button", name="Add").click()
    expect(page.locator("#item-flash")).to_contain_text(
        "Action “Enable self-service password reset” planned."
    )
    expect(page.locator("#plan .tk-actions")).to_contain_text("Enable self-service password reset")
    action = item.actions.get()
    assert action.owner == cast.owner and not action.done
    go_to_next_step(page, 5)
    expect(status_badge(page)).to_have_attribute("data-status", "action")

    # Step 5: take action. The action is done; the measurement comes in.
    page.get_by_role("button", name="Mark “Enable self-service password reset” done").click()
    expect(page.locator(f"#action-{action.pk}")).to_have_attribute("data-action-state", "done")
    action.refresh_from_db()
    assert action.done
    expect(page.locator("#steps .tk-gaps")).to_contain_text("a measurement of a primary indicator")
    card.get_by_role("button", name="Measurement").click()
    measure = page.locator(f"#measure-{indicator.pk} form")
    expect(measure).to_be_visible()
    measure.get_by_label("Value").fill("3")
    # "Measured at" is pre-filled with the current minute, which is *before* the second the item
    # entered step 5, so that measurement would not count (app bug, see
    # test_prefilled_measurement_time_counts_after_taking_action). Empty means "now".
    measure.get_by_label("Measured at").fill("")
    measure.get_by_label("Note").fill("First week after go-live")
    measure.get_by_role("button", name="Record").click()
    expect(page.locator("#item-flash")).to_contain_text("Measured Time to reset a password: 3 h.")
    expect(card.locator(".tk-measurements")).to_contain_text("First week after go-live")
    assert indicator.measurements.get().value == 3
    expect(page.locator("#steps .tk-gaps")).to_have_count(0)
    go_to_next_step(page, 6)
    expect(status_badge(page)).to_have_attribute("data-status", "evaluation")

    # Step 6: did we get there? 3 h meets the 4 h target (lower is better): achieved.
    expect(page.locator("#steps .tk-gaps")).to_contain_text("an evaluation result")
    evaluation = page.locator("#evaluation")
    evaluation.get_by_label("Evaluation note").fill("Self-service took over most resets.")
    evaluation.get_by_role("button", name="Evaluate").click()
    expect(page.locator("#evaluation [data-evaluation]")).to_have_attribute("data-evaluation", "achieved")
    expect(page.locator("#evaluation [data-evaluation]")).to_have_text("Achieved")
    expect(page.locator("#evaluation tbody")).to_contain_text("Achieved")
    item.refresh_from_db()
    assert item.evaluation_result == "achieved"
    go_to_next_step(page, 7)
    expect(status_badge(page)).to_have_attribute("data-status", "momentum")

    # Step 7: keep the momentum. Close with outcome, benefit, lessons and a follow-up.
    closure = page.locator("#closure")
    expect(closure.get_by_label("Realised delta")).to_have_value("-45")  # 3 - 48, pre-filled
    closure.get_by_label("Outcome").select_option("successful")
    closure.get_by_label("Benefit realised").select_option(label="Time saved")
    closure.get_by_label("Lessons learned").fill("Self-service beats faster tickets.")
    closure.locator("#id_follow_ups-0-title").fill("Self-service unlock of accounts")
    closure.locator("#id_follow_ups-0-description").fill("Same idea for locked accounts.")
    closure.get_by_role("button", name="Close the item").click()

    expect(page.locator("#item-flash")).to_contain_text("closed: Successful, 1 follow-up item(s) created.")
    expect(status_badge(page)).to_have_attribute("data-status", "closed")
    expect(status_badge(page)).to_have_text("Closed")
    expect(page.locator("#closure [data-outcome]")).to_have_attribute("data-outcome", "successful")
    expect(page.locator("#closure")).to_contain_text("Time saved")
    expect(page.locator("#closure")).to_contain_text("Self-service beats faster tickets.")
    expect(page.locator("#steps .tk-transitions")).to_have_count(0)

    item.refresh_from_db()
    assert item.status == "closed" and item.outcome == "successful"
    assert item.benefit_category == "time_saved" and item.lessons == "Self-service beats faster tickets."
    assert item.realised_delta == -45
    follow_up = Item.objects.get(parent=item)
    assert follow_up.title == "Self-service unlock of accounts"
    assert follow_up.status == "new" and follow_up.pk != item.pk

    # The follow-up is listed as a child, and links back to its parent.
    child_link = page.locator(f"[data-child='{follow_up.pk}']")
    expect(child_link).to_contain_text("Self-service unlock of accounts")

    # The timeline shows the changes, newest first.
    timeline = page.locator("#timeline")
    expect(timeline.locator(".tk-event").first).to_contain_text("Closed: Successful")
    expect(timeline).to_contain_text("Evaluated: Achieved")
    expect(timeline).to_contain_text("Measured Time to reset a password: 3")
    expect(timeline.locator(".tk-changes").first).to_contain_text("7. Keep the momentum")
    statuses = list(
        StatusChange.objects.filter(object_id=str(item.pk))
        .order_by("at", "id")
        .values_list("new_status", flat=True)
    )
    assert statuses[-8:] == [
        "vision",
        "current_state",
        "target_state",
        "plan",
        "action",
        "evaluation",
        "momentum",
        "closed",
    ]

    child_link.click()
    expect(page.locator("#item-title")).to_contain_text("Self-service unlock of accounts")
    expect(page.locator(".tk-item-header")).to_contain_text(f"follow-up of {item.ref}")
    expect(status_badge(page)).to_have_attribute("data-status", "new")


def test_prefilled_measurement_time_counts_after_taking_action(
    page: Page, live_server, sign_in, cast, password
):

    item = ready_item(cast)  # at step 4, with an indicator, a baseline, a target and an action
    indicator = item.indicators.get()
    sign_in(cast.owner, password)
    page.goto(f"{live_server.url}{item.get_absolute_url()}")
    # Taking action in the browser: the page that comes back carries the measurement form, its
    # time pre-filled in the same request (a real person records it minutes later, same result).
    go_to_next_step(page, 5)
    expect(page.locator("#steps .tk-gaps")).to_contain_text("a measurement of a primary indicator")
    page.locator(f"#indicator-{indicator.pk}").get_by_role("button", name="Measurement").click()
    measure = page.locator(f"#measure-{indicator.pk} form")
    measure.get_by_label("Value").fill("5")  # the pre-filled "Measured at" is kept, as a person would
    measure.get_by_role("button", name="Record").click()
    expect(page.locator("#item-flash")).to_contain_text("Measured MTTR: 5 h.")
    # The measurement was just taken, after action started: it no longer stands in the way (the
    # open action still does).
    expect(page.locator("#steps .tk-gaps")).not_to_contain_text("a measurement", timeout=2_000)
