"""The item page (/register/<id>/) and the actions posted from it."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tikting.improvement import choices as C
from tikting.improvement import services as S
from tikting.improvement.models import Action, Item
from tikting.lib.display import when
from tikting.test import ready_item

pytestmark = pytest.mark.django_db


def url(name, item, *args):
    return reverse(f"improvement:{name}", args=[item.pk, *args])


def fresh(item):
    return Item.objects.get(pk=item.pk)


def new_item(cast, **data):
    return S.create_item(actor=cast.contributor, **{"title": "Password resets by phone", **data})


def close_data(outcome="successful", follow_ups=(), **extra):
    data = {
        "outcome": outcome,
        "benefit_category": "time_saved",
        "realised_delta": "",
        "lessons": "",
        "follow_ups-TOTAL_FORMS": "3",
        "follow_ups-INITIAL_FORMS": "0",
        "follow_ups-MIN_NUM_FORMS": "0",
        "follow_ups-MAX_NUM_FORMS": "10",
    }
    for n, (title, description) in enumerate(follow_ups):
        data[f"follow_ups-{n}-title"] = title
        data[f"follow_ups-{n}-description"] = description
    data.update(extra)
    return data


def indicator_data(prefix, **values):
    data = {
        "name": "MTTR",
        "unit": "h",
        "direction": "lower",
        "role": "primary",
        "baseline_value": "10",
        "baseline_date": "",
        "baseline_method": "",
        "target_value": "6",
        "target_date": "",
        "version": "",
    }
    data.update(values)
    return {f"{prefix}-{k}": v for k, v in data.items()}


# --- Reading ---------------------------------------------------------------------------------


def test_it_requires_login(client, cast):
    item = new_item(cast)
    response = client.get(item.get_absolute_url())
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_viewer_reads_the_page_without_action_forms(cast, login):
    item = ready_item(cast)
    response = login(cast.viewer).get(item.get_absolute_url())
    assert response.status_code == 200
    html = response.content.decode()
    assert item.ref in html and "Cut e-mail MTTR" in html
    assert "How do we get there?" in html  # the stepper
    assert 'data-status="plan"' in html
    assert url("item_transition", item) not in html
    assert url("action_add", item) not in html
    assert url("item_comment", item) not in html


def test_it_is_404_for_an_unknown_item(cast, login):
    assert login(cast.viewer).get(reverse("improvement:detail", args=[999999])).status_code == 404


def test_page_shows_indicator_chart_data_and_progress(cast, login):
    item = ready_item(cast)
    indicator = item.indicators.get()
    S.record_measurement(indicator, actor=cast.owner, value="8", note="after runbook")
    response = login(cast.owner).get(item.get_absolute_url())
    html = response.content.decode()
    assert f'id="indicator-chart-{indicator.pk}-data"' in html
    assert '"values": ["8"]' in html and '"baseline": 10.0' in html and '"target": 6.0' in html
    assert "50 %" in html  # 10 → 8 is half way to 6


def test_a_target_behind_the_baseline_shows_no_progress_but_a_warning(cast, login):
    item = ready_item(cast)
    indicator = item.indicators.get()  # lower is better, baseline 10, target 6
    S.record_measurement(indicator, actor=cast.owner, value="9")
    indicator.baseline_value = 4  # e.g. a re-computed baseline overtook the target
    indicator.save()
    assert indicator.target_improves is False and indicator.progress(9) is None
    html = login(cast.owner).get(item.get_absolute_url()).content.decode()
    assert "The target does not improve on the baseline (lower is better)" in html
    assert "Progress to target" not in html


def test_next_step_shows_missing_preconditions_before_the_click(cast, login):
    item = S.assess_item(new_item(cast), actor=cast.manager, decision="accept", owner=cast.owner)
    html = login(cast.owner).get(item.get_absolute_url()).content.decode()
    assert "Before moving on" in html
    assert C.GAP_MESSAGES["vision"] in html
    # The "ready to act" checklist lists what is still missing.
    assert 'data-ready="target_date" class="tk-missing"' in html
    assert 'data-ready="owner" class="tk-ok"' in html


def test_query_count_does_not_grow_with_measurements_actions_and_history(cast, login):
    item = ready_item(cast)
    indicator = item.indicators.get()
    client = login(cast.owner)

    def count():
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(item.get_absolute_url()).status_code == 200
        return len(ctx.captured_queries)

    S.record_measurement(indicator, actor=cast.owner, value="9")
    S.add_action(item, actor=cast.owner, title="First action", owner=cast.owner)
    # one of each kind of row before the baseline: a page with comments also reads their files
    # (one query whatever their number), and the people told of them have a bell count
    S.add_comment(item, actor=cast.contributor, body="first note")
    count()  # warm the content-type cache
    before = count()
    for n in range(8):
        S.record_measurement(indicator, actor=cast.owner, value=str(9 - n / 10))
        S.add_action(item, actor=cast.owner, title=f"Action {n}", owner=cast.owner)
        S.add_comment(item, actor=cast.contributor, body=f"note {n}")
    # Fewer is fine: the capped timeline may then name fewer kinds of record (users, services).
    assert count() <= before


# --- Permissions -----------------------------------------------------------------------------

POSTS = [
    ("item_transition", {"to": "action"}),
    ("item_assess", {"decision": "accept"}),
    ("item_reopen", {"reason": "x"}),
    ("item_block", {"blocked": "on", "blocker": "x"}),
    ("item_escalate", {"note": "x"}),
    ("item_evaluate", {}),
    ("item_close", close_data("withdrawn", lessons="x")),
    ("item_comment", {"body": "x"}),
    ("indicator_add", indicator_data("ind-new")),
    ("action_add", {"action-title": "x"}),
]


@pytest.mark.parametrize(("name", "data"), POSTS)
def test_viewer_gets_403_on_every_post(cast, login, name, data):
    item = ready_item(cast)
    response = login(cast.viewer).post(url(name, item), data)
    assert response.status_code == 403
    assert fresh(item).version == item.version


def test_viewer_gets_403_on_child_record_posts(cast, login):
    item = ready_item(cast)
    indicator, action = item.indicators.get(), item.actions.get()
    client = login(cast.viewer)
    assert (
        client.post(
            url("indicator_edit", item, indicator.pk), indicator_data(f"ind{indicator.pk}")
        ).status_code
        == 403
    )
    assert (
        client.post(url("measurement_add", item, indicator.pk), {f"m{indicator.pk}-value": "5"}).status_code
        == 403
    )
    assert client.post(url("action_toggle", item, action.pk), {"done": "on"}).status_code == 403
    assert client.post(url("action_remove", item, action.pk)).status_code == 403
    assert Action.objects.filter(pk=action.pk, done=False).exists()


def test_get_on_an_action_url_is_not_allowed(cast, login):
    item = ready_item(cast)
    assert login(cast.owner).get(url("item_transition", item)).status_code == 405


def test_owner_of_another_item_gets_403(cast, login):
    item = ready_item(cast)
    client = login(cast.other_owner)
    assert (
        client.post(url("item_transition", item), {"to": "action", "version": item.version}).status_code
        == 403
    )
    assert client.post(url("action_add", item), {"action-title": "Sneaky"}).status_code == 403
    indicator = item.indicators.get()
    assert (
        client.post(url("measurement_add", item, indicator.pk), {f"m{indicator.pk}-value": "1"}).status_code
        == 403
    )
    assert fresh(item).status == C.Status.PLAN


def test_htmx_403_is_a_short_message(cast, login):
    item = ready_item(cast)
    response = login(cast.other_owner).post(
        url("item_transition", item), {"to": "action"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 403
    assert "You may not" in response.content.decode()


def test_owner_moves_own_item_forward(cast, login):
    item = ready_item(cast)
    response = login(cast.owner).post(url("item_transition", item), {"to": "action", "version": item.version})
    assert response.status_code == 302
    assert response["Location"].startswith(item.get_absolute_url())
    assert fresh(item).status == C.Status.ACTION


def test_refused_transition_shows_the_service_message(cast, login):
    item = S.assess_item(new_item(cast), actor=cast.manager, decision="accept", owner=cast.owner)
    response = login(cast.owner).post(
        url("item_transition", item), {"to": "current_state", "version": item.version}
    )
    assert response.status_code == 422
    html = response.content.decode()
    assert "data-transition-error" in html
    assert "cannot enter" in html and C.GAP_MESSAGES["vision"] in html
    assert fresh(item).status == C.Status.VISION


def test_transition_over_a_stale_version_is_a_conflict(cast, login):
    item = ready_item(cast)
    S.update_item(item, actor=cast.manager, title="Renamed meanwhile")
    client = login(cast.owner)
    response = client.post(url("item_transition", item), {"to": "action", "version": item.version})
    assert response.status_code == 409
    assert "changed by someone else" in response.content.decode()
    assert fresh(item).status == C.Status.PLAN


def test_manager_accepts_and_assigns_an_owner(cast, login):
    item = new_item(cast)
    response = login(cast.manager).post(
        url("item_assess", item), {"decision": "accept", "owner": cast.owner.pk, "version": item.version}
    )
    assert response.status_code == 302
    item = fresh(item)
    assert item.status == C.Status.VISION and item.owner == cast.owner


def test_assessment_panel_only_for_managers(cast, login):
    item = new_item(cast)
    assert url("item_assess", item) in login(cast.manager).get(item.get_absolute_url()).content.decode()
    assert url("item_assess", item) not in login(cast.owner).get(item.get_absolute_url()).content.decode()
    assert login(cast.owner).post(url("item_assess", item), {"decision": "accept"}).status_code == 403


def test_defer_without_reason_names_the_reason_field_and_keeps_input(cast, login):
    item = new_item(cast)
    revisit = (timezone.localdate() + dt.timedelta(days=30)).isoformat()
    response = login(cast.manager).post(
        url("item_assess", item), {"decision": "defer", "reason": "", "revisit_date": revisit}
    )
    assert response.status_code == 422
    html = response.content.decode()
    assert 'data-field="reason"' in html
    assert "A reason is required to defer an item." in html
    assert f'value="{revisit}"' in html  # the user's input is kept
    assert fresh(item).status == C.Status.NEW


def test_defer_with_reason_and_reject_and_reopen(cast, login):
    item = new_item(cast)
    client = login(cast.manager)
    revisit = (timezone.localdate() + dt.timedelta(days=30)).isoformat()
    client.post(url("item_assess", item), {"decision": "defer", "reason": "Budget", "revisit_date": revisit})
    item = fresh(item)
    assert item.status == C.Status.DEFERRED and item.revisit_date.isoformat() == revisit
    client.post(url("item_assess", item), {"decision": "reject", "reason": "Out of scope"})
    assert fresh(item).status == C.Status.REJECTED
    assert url("item_reopen", item) in client.get(item.get_absolute_url()).content.decode()
    response = client.post(url("item_reopen", item), {"reason": "New evidence"})
    assert response.status_code == 302
    assert fresh(item).status == C.Status.NEW


def test_contributor_comments_and_it_shows_in_the_timeline(cast, login):
    item = ready_item(cast)
    client = login(cast.contributor)
    response = client.post(
        url("item_comment", item), {"body": "Seen the same on the service desk"}, follow=True
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Seen the same on the service desk" in html
    assert "Comment added." in html


def test_empty_comment_is_refused_inline(cast, login):
    item = ready_item(cast)
    response = login(cast.contributor).post(url("item_comment", item), {"body": ""})
    assert response.status_code == 422
    assert 'data-field="body"' in response.content.decode()


def test_block_escalate_and_unblock(cast, login):
    item = ready_item(cast)
    client = login(cast.owner)
    response = client.post(url("item_block", item), {"blocked": "on", "blocker": "", "version": item.version})
    assert response.status_code == 422
    assert 'data-field="blocker"' in response.content.decode()
    client.post(
        url("item_block", item),
        {"blocked": "on", "blocker": "No budget for the tool", "version": item.version},
    )
    item = fresh(item)
    assert item.blocked and item.blocker == "No budget for the tool"
    client.post(url("item_escalate", item), {"note": "Need a budget decision"})
    item = fresh(item)
    assert item.escalated_at is not None
    html = client.get(item.get_absolute_url()).content.decode()
    assert "tk-event-escalation" in html and "Need a budget decision" in html
    client.post(url("item_block", item), {"version": item.version})
    assert not fresh(item).blocked


def test_withdraw_needs_a_reason(cast, login):
    item = ready_item(cast)
    client = login(cast.owner)
    response = client.post(
        url("item_close", item), close_data("withdrawn", benefit_category="", version=item.version)
    )
    assert response.status_code == 422
    assert 'data-field="lessons"' in response.content.decode()
    action = item.actions.get()
    client.post(url("action_cancel", item, action.pk), {f"cancel{action.pk}-reason": "Vendor fix instead"})
    client.post(
        url("item_close", item),
        close_data(
            "withdrawn", benefit_category="", lessons="Superseded by a vendor fix", version=item.version
        ),
    )
    item = fresh(item)
    assert item.status == C.Status.CLOSED and item.outcome == C.Outcome.WITHDRAWN


# --- Indicators, measurements, actions ------------------------------------------------------


def test_indicator_add_and_edit(cast, login):
    item = ready_item(cast)
    client = login(cast.owner)
    response = client.post(
        url("indicator_add", item), indicator_data("ind-new", name="Reopen rate", unit="%", role="impacted")
    )
    assert response.status_code == 302
    added = item.indicators.get(name="Reopen rate")
    assert added.role == "impacted" and added.baseline_value == Decimal("10")
    response = client.post(
        url("indicator_edit", item, added.pk),
        indicator_data(
            f"ind{added.pk}", name="Reopen rate", unit="%", target_value="4", version=added.version
        ),
    )
    assert response.status_code == 302
    added.refresh_from_db()
    assert added.target_value == Decimal("4") and added.version == 2


def test_indicator_with_a_bad_number_is_refused_inline(cast, login):
    item = ready_item(cast)
    response = login(cast.owner).post(
        url("indicator_add", item), indicator_data("ind-new", baseline_value="ten")
    )
    assert response.status_code == 422
    assert 'data-field="baseline_value"' in response.content.decode()
    assert item.indicators.count() == 1


def test_indicator_edit_with_a_stale_version_is_a_conflict_not_an_overwrite(cast, login):
    item = ready_item(cast)
    indicator = item.indicators.get()
    read_version = indicator.version
    S.update_indicator(indicator, actor=cast.manager, expected_version=read_version, target_value="5")
    client = login(cast.owner)
    for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
        response = client.post(
            url("indicator_edit", item, indicator.pk),
            indicator_data(f"ind{indicator.pk}", target_value="7", version=read_version),
            **headers,
        )
        assert response.status_code == 409
        html = response.content.decode()
        assert "changed by someone else" in html
        assert "data-indicator-conflict" in html
        assert 'value="7"' in html  # the user's input is kept for a deliberate retry
    indicator.refresh_from_db()
    assert indicator.target_value == Decimal("5")


def test_measurement_is_recorded_and_shown(cast, login):
    item = ready_item(cast)
    indicator = item.indicators.get()
    client = login(cast.owner)
    at = timezone.localtime().replace(second=0, microsecond=0) - dt.timedelta(hours=1)
    response = client.post(
        url("measurement_add", item, indicator.pk),
        {
            f"m{indicator.pk}-value": "7.5",
            f"m{indicator.pk}-measured_at": at.strftime("%Y-%m-%dT%H:%M"),
            f"m{indicator.pk}-note": "week 1",
        },
        follow=True,
    )
    assert response.status_code == 200
    measurement = indicator.measurements.get()
    assert measurement.value == Decimal("7.5") and measurement.note == "week 1"
    assert measurement.measured_at == at
    assert "Measured MTTR: 7.5 h." in response.content.decode()


def test_measurement_in_the_future_is_refused_inline(cast, login):
    item = ready_item(cast)
    indicator = item.indicators.get()
    later = (timezone.localtime() + dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    response = login(cast.owner).post(
        url("measurement_add", item, indicator.pk),
        {f"m{indicator.pk}-value": "7", f"m{indicator.pk}-measured_at": later},
    )
    assert response.status_code == 422
    assert 'data-field="measured_at"' in response.content.decode()
    assert not indicator.measurements.exists()


def test_actions_add_toggle_remove(cast, login):
    item = ready_item(cast)
    client = login(cast.owner)
    due = (timezone.localdate() - dt.timedelta(days=1)).isoformat()
    client.post(
        url("action_add", item),
        {"action-title": "Train the desk", "action-owner": cast.owner.pk, "action-due_date": due},
    )
    action = item.actions.get(title="Train the desk")
    assert action.owner == cast.owner
    assert "overdue" in client.get(item.get_absolute_url()).content.decode()
    client.post(url("action_toggle", item, action.pk), {"done": "on", "version": action.version})
    action.refresh_from_db()
    assert action.done
    client.post(url("action_toggle", item, action.pk), {"version": action.version})
    action.refresh_from_db()
    assert not action.done
    response = client.post(url("action_remove", item, action.pk))
    assert response.status_code == 302
    assert not item.actions.filter(pk=action.pk).exists()


def test_action_without_title_is_refused_inline(cast, login):
    item = ready_item(cast)
    response = login(cast.owner).post(url("action_add", item), {"action-title": ""})
    assert response.status_code == 422
    assert 'data-field="title"' in response.content.decode()


def test_htmx_post_returns_the_page_body_not_a_redirect(cast, login):
    item = ready_item(cast)
    response = login(cast.owner).post(
        url("action_add", item), {"action-title": "Publish the runbook"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="item-page"')
    assert "Publish the runbook" in html and "planned" in html
    assert "<html" not in html


def test_htmx_validation_error_is_422_with_the_form(cast, login):
    item = new_item(cast)
    response = login(cast.manager).post(
        url("item_assess", item), {"decision": "reject"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 422
    assert 'data-field="reason"' in response.content.decode()


# --- Timeline --------------------------------------------------------------------------------


def test_timeline_shows_old_and_new_values_of_an_edit(cast, login):
    item = ready_item(cast)
    S.update_item(item, actor=cast.manager, title="Cut e-mail MTTR in half", impact=5)
    html = login(cast.viewer).get(item.get_absolute_url()).content.decode()
    arrow = '</span> <i class="bi bi-arrow-right"></i> <span class="tk-new">'
    assert f"Cut e-mail MTTR{arrow}Cut e-mail MTTR in half" in html
    assert '<span class="tk-change-label">Impact</span>: <span class="tk-old">4</span>' in html
    # Status changes read as labels, not slugs.
    assert f"3. Where do we want to be?{arrow}4. How do we get there?" in html


def test_timeline_is_capped_with_a_show_all(cast, login):
    item = ready_item(cast)
    for n in range(20):
        S.add_comment(item, actor=cast.contributor, body=f"comment number {n}")
    client = login(cast.viewer)
    html = client.get(item.get_absolute_url()).content.decode()
    assert "comment number 19" in html and "comment number 0<" not in html
    assert "Show all history" in html
    response = client.get(url("item_timeline", item) + "?all=1", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert "comment number 0<" in response.content.decode()
    response = client.get(url("item_timeline", item) + "?all=1")
    assert response.status_code == 302 and "timeline=all" in response["Location"]
    assert "comment number 0<" in client.get(response["Location"]).content.decode()


# --- The whole lifecycle through the views --------------------------------------------------


def test_complete_lifecycle_through_the_views(cast, login):
    item = new_item(cast, vision="Staff can rely on e-mail", impact=4, effort=2)
    manager = login(cast.manager)
    manager.post(
        url("item_assess", item), {"decision": "accept", "owner": cast.owner.pk, "version": item.version}
    )
    item = fresh(item)
    assert item.status == C.Status.VISION
    S.update_item(item, actor=cast.manager, target_date=timezone.localdate() + dt.timedelta(days=60))

    owner = login(cast.owner)

    def step(to):
        current = fresh(item)
        response = owner.post(url("item_transition", current), {"to": to, "version": current.version})
        assert response.status_code == 302, response.content.decode()[:500]
        assert fresh(item).status == to

    owner.post(url("indicator_add", item), indicator_data("ind-new"))
    indicator = item.indicators.get()
    step("current_state")
    step("target_state")
    step("plan")
    due = (timezone.localdate() + dt.timedelta(days=7)).isoformat()
    owner.post(
        url("action_add", item),
        {"action-title": "Write runbook", "action-owner": cast.owner.pk, "action-due_date": due},
    )
    step("action")
    action = item.actions.get()
    owner.post(url("action_toggle", item, action.pk), {"done": "on", "version": action.version})
    owner.post(url("measurement_add", item, indicator.pk), {f"m{indicator.pk}-value": "5.5"})
    step("evaluation")

    current = fresh(item)
    response = owner.post(url("item_evaluate", item), {"note": "Runbook works", "version": current.version})
    assert response.status_code == 302
    current = fresh(item)
    assert current.evaluation_result == C.EvaluationResult.ACHIEVED
    assert current.realised_delta == Decimal("-4.5")
    html = owner.get(item.get_absolute_url()).content.decode()
    assert 'data-evaluation="achieved"' in html
    step("momentum")

    current = fresh(item)
    html = owner.get(item.get_absolute_url()).content.decode()
    assert 'name="realised_delta" value="-4.5"' in html  # pre-filled with the measured delta
    assert "follow_ups-2-title" in html  # at least three follow-up rows
    response = owner.post(
        url("item_close", item),
        close_data(
            "successful",
            follow_ups=[("Automate the runbook", "Script the first checks"), ("", "")],
            realised_delta="-4.5",
            lessons="Runbooks pay off",
            version=current.version,
        ),
        follow=True,
    )
    assert response.status_code == 200
    closed = fresh(item)
    assert closed.status == C.Status.CLOSED
    assert closed.outcome == C.Outcome.SUCCESSFUL and closed.sustainment == C.Sustainment.HOLDING
    child = closed.children.get()
    assert child.title == "Automate the runbook" and child.status == C.Status.NEW
    html = response.content.decode()
    assert 'data-outcome="successful"' in html and "Runbooks pay off" in html
    assert f'data-child="{child.pk}"' in html
    assert "Holding" in html and when(closed.control_until) in html
    assert item.ref in owner.get(child.get_absolute_url()).content.decode()  # the parent link


def test_follow_up_without_title_is_refused_on_its_row(cast, login):
    item = ready_item(cast)
    for to in ("action",):
        item = S.transition_item(item, actor=cast.owner, to=to)
    S.record_measurement(item.indicators.get(), actor=cast.owner, value="5")
    S.update_action(item.actions.get(), actor=cast.owner, done=True)
    item = S.transition_item(item, actor=cast.owner, to="evaluation")
    item = S.evaluate_item(item, actor=cast.owner)
    item = S.transition_item(item, actor=cast.owner, to="momentum")
    response = login(cast.owner).post(
        url("item_close", item),
        close_data("successful", follow_ups=[("", "Only a description")], version=item.version),
    )
    assert response.status_code == 422
    html = response.content.decode()
    assert "A follow-up needs a title." in html
    assert "Only a description" in html
    assert fresh(item).status == C.Status.MOMENTUM
