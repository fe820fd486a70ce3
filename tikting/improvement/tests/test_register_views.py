"""The register pages: list, board, matrix, my items, submit, create / edit, and drag-and-drop ranking."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tikting.improvement import services as S
from tikting.improvement.models import Item
from tikting.test import ready_item

pytestmark = pytest.mark.django_db

LIST = reverse("improvement:list")
BOARD = reverse("improvement:board")
MATRIX = reverse("improvement:matrix")
MINE = reverse("improvement:mine")
SUBMIT = reverse("improvement:submit")
CREATE = reverse("improvement:create")
RANK = reverse("improvement:rank")
HTMX = {"HTTP_HX_REQUEST": "true"}


def make_items(cast, n: int, **extra) -> list[Item]:
    items = []
    for i in range(n):
        data = {
            "title": f"Opportunity {i}",
            "practice": "incident",
            "service": cast.email if i % 2 else cast.network,
            "impact": i % 5 + 1,
            "effort": (i * 2) % 5 + 1,
            **extra,
        }
        items.append(S.create_item(actor=None, **data))
    return items


def accept(item: Item, cast, owner=None) -> Item:
    return S.assess_item(item, actor=cast.manager, decision="accept", owner=owner)


def edit_data(item: Item, **changes) -> dict:
    """The edit form as the browser posts it: every field, the values read, and expected_version."""
    from tikting.improvement.forms import ItemForm, initial_for, widget_value

    initial = initial_for(item)
    data: dict[str, Any] = {}
    for name in ItemForm(can_manage=True).item_fields():
        data[name] = widget_value(name, initial.get(name))
        data[f"initial-{name}"] = data[name]
    data["expected_version"] = item.version
    data.update({k: widget_value(k, v) for k, v in changes.items()})
    return data


# --- Access per role -----------------------------------------------------------------------------


@pytest.mark.parametrize("url", [LIST, BOARD, MATRIX, MINE, SUBMIT, CREATE])
def test_it_redirects_anonymous_users_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


@pytest.mark.parametrize("url", [LIST, BOARD, MATRIX, MINE])
def test_it_lets_a_viewer_read_the_register_pages(cast, login, url):
    make_items(cast, 3)
    response = login(cast.viewer).get(url)
    assert response.status_code == 200


def test_it_refuses_the_submit_form_to_a_viewer(cast, login):
    client = login(cast.viewer)
    assert client.get(SUBMIT).status_code == 403
    assert client.post(SUBMIT, {"title": "x", "impact": 3, "effort": 3}).status_code == 403
    assert not Item.objects.exists()


def test_it_lets_a_contributor_submit_an_opportunity(cast, login):
    client = login(cast.contributor)
    response = client.post(
        SUBMIT,
        {
            "title": "Password resets take two days",
            "description": "Users wait",
            "practice": "request",
            "service": cast.email.pk,
            "source_channel": "staff_feedback",
            "source_reference": "INC-1042",
            "impact": 4,
            "effort": 2,
            "justification_type": "operational",
            "justification": "200 requests a month",
        },
    )
    item = Item.objects.get()
    assert response.status_code == 302
    assert response.url == item.get_absolute_url()
    assert item.submitted_by == cast.contributor
    assert item.status == "new"
    assert item.quadrant == "quick_win"
    assert item.source_reference == "INC-1042"


def test_it_shows_submit_errors_inline(cast, login):
    response = login(cast.contributor).post(SUBMIT, {"title": "", "impact": 9, "effort": 3})
    assert response.status_code == 400
    assert response.context["form"].errors["title"]
    assert response.context["form"].errors["impact"]
    assert not Item.objects.exists()


def test_it_keeps_the_full_create_form_for_managers(cast, login):
    assert login(cast.owner).get(CREATE).status_code == 403
    client = login(cast.manager)
    assert client.get(CREATE).status_code == 200
    parent = make_items(cast, 1)[0]
    target = timezone.localdate() + dt.timedelta(days=30)
    response = client.post(
        CREATE,
        {
            "title": "Automate password resets",
            "practice": "request",
            "source_channel": "request_analysis",
            "impact": 5,
            "effort": 4,
            "justification_type": "business",
            "owner": cast.owner.pk,
            "target_date": target.isoformat(),
            "rank": 1,
            "parent": parent.ref,
            "vision": "Self-service",
        },
    )
    assert response.status_code == 302
    item = Item.objects.get(title="Automate password resets")
    assert (item.owner, item.target_date, item.rank, item.parent) == (cast.owner, target, 1, parent)


def test_it_does_not_let_an_owner_edit_someone_elses_item(cast, login):
    item = accept(make_items(cast, 1)[0], cast, owner=cast.other_owner)
    client = login(cast.owner)
    assert client.get(reverse("improvement:edit", args=[item.pk])).status_code == 403
    response = client.post(reverse("improvement:edit", args=[item.pk]), edit_data(item, title="Mine now"))
    assert response.status_code == 403
    item.refresh_from_db()
    assert item.title == "Opportunity 0"


def test_it_lets_an_owner_edit_their_item_but_not_its_owner(cast, login):
    item = accept(make_items(cast, 1)[0], cast, owner=cast.owner)
    client = login(cast.owner)
    response = client.get(reverse("improvement:edit", args=[item.pk]))
    assert response.context["form"].fields["owner"].disabled
    # A forged owner value is ignored: the field is disabled for non-managers.
    data = edit_data(item, title="Better title", owner=cast.other_owner)
    response = client.post(reverse("improvement:edit", args=[item.pk]), data)
    assert response.status_code == 302
    item.refresh_from_db()
    assert (item.title, item.owner) == ("Better title", cast.owner)


def test_it_lets_a_manager_edit_any_item(cast, login):
    item = make_items(cast, 1)[0]
    response = login(cast.manager).post(
        reverse("improvement:edit", args=[item.pk]), edit_data(item, owner=cast.owner, impact=5)
    )
    assert response.status_code == 302
    item.refresh_from_db()
    assert (item.owner, item.impact, item.version) == (cast.owner, 5, 2)


def test_it_maps_service_validation_errors_onto_fields(cast, login):
    item = make_items(cast, 1)[0]
    response = login(cast.manager).post(
        reverse("improvement:edit", args=[item.pk]), edit_data(item, parent=item.ref)
    )
    assert response.status_code == 400
    assert "cannot be its own parent" in str(response.context["form"].errors["parent"])


# --- Optimistic concurrency ----------------------------------------------------------------------


def test_it_refuses_a_stale_edit_and_shows_what_changed(cast, login):
    item = accept(make_items(cast, 1)[0], cast, owner=cast.owner)
    opened = edit_data(item)  # the owner opens the form ...
    S.update_item(item, actor=cast.manager, title="Their title", effort=5)  # ... the manager saves first
    opened.update(title="My title", description="My description")
    response = login(cast.owner).post(reverse("improvement:edit", args=[item.pk]), opened)

    assert response.status_code == 409
    item.refresh_from_db()
    assert (item.title, item.effort, item.description) == ("Their title", 5, "")  # nothing overwritten
    rows = {row["label"]: row for row in response.context["conflict"]["rows"]}
    assert rows["Title"]["theirs"] == "Their title" and rows["Title"]["yours"] == "My title"
    assert rows["Title"]["clash"]
    assert not rows["Effort"]["you_changed"]
    form = response.context["form"]
    # The user's input is kept; a field only they changed shows their new value; the next save
    # is checked against the version now in the database.
    assert form["title"].value() == "My title"
    assert form["description"].value() == "My description"
    assert str(form["effort"].value()) == "5"
    assert str(form["expected_version"].value()) == str(item.version)
    assert b"was changed" in response.content


def test_it_applies_the_merged_form_after_a_conflict(cast, login):
    item = accept(make_items(cast, 1)[0], cast, owner=cast.owner)
    opened = edit_data(item, title="My title")
    S.update_item(item, actor=cast.manager, effort=5)
    client = login(cast.owner)
    response = client.post(reverse("improvement:edit", args=[item.pk]), opened)
    merged = response.context["form"].data
    response = client.post(reverse("improvement:edit", args=[item.pk]), merged)
    assert response.status_code == 302
    item.refresh_from_db()
    assert (item.title, item.effort) == ("My title", 5)  # both changes survive


# --- List: filters, sort, search, htmx, pagination -------------------------------------------


def test_it_lists_open_items_by_default_and_all_on_request(cast, login):
    items = make_items(cast, 3)
    S.assess_item(items[0], actor=cast.manager, decision="reject", reason="Duplicate")
    client = login(cast.viewer)
    assert {i.pk for i in client.get(LIST).context["items"]} == {items[1].pk, items[2].pk}
    assert len(client.get(LIST, {"status": "all"}).context["items"]) == 3
    assert [i.pk for i in client.get(LIST, {"status": "ended"}).context["items"]] == [items[0].pk]


def test_it_filters_by_practice_service_owner_quadrant_and_flag(cast, login):
    a, b, c = make_items(cast, 3)
    accept(a, cast, owner=cast.owner)
    S.update_item(b, actor=None, practice="change")
    S.set_blocked(accept(c, cast), actor=cast.manager, blocked=True, blocker="Vendor")
    client = login(cast.owner)

    def pks(**params):
        return {i.pk for i in client.get(LIST, params).context["items"]}

    assert pks(practice="change") == {b.pk}
    assert pks(service=cast.email.pk) == {b.pk}
    assert pks(owner="me") == {a.pk}
    assert pks(owner="none") == {b.pk, c.pk}
    assert pks(quadrant=a.quadrant) == {i.pk for i in (a, b, c) if i.quadrant == a.quadrant}
    assert pks(flag="blocked") == {c.pk}
    assert pks(source_channel="audit_finding") == set()


def test_it_searches_by_text_and_reference(cast, login):
    items = make_items(cast, 12)
    client = login(cast.viewer)
    assert [i.pk for i in client.get(LIST, {"q": "Opportunity 11"}).context["items"]] == [items[11].pk]
    assert [i.pk for i in client.get(LIST, {"q": items[3].ref}).context["items"]] == [items[3].pk]


def test_it_sorts_by_column_both_ways(cast, login):
    make_items(cast, 5)
    client = login(cast.viewer)
    titles = [i.title for i in client.get(LIST, {"sort": "title"}).context["items"]]
    assert titles == sorted(titles)
    titles = [i.title for i in client.get(LIST, {"sort": "-title"}).context["items"]]
    assert titles == sorted(titles, reverse=True)
    scores = [i.priority_score for i in client.get(LIST, {"sort": "priority"}).context["items"]]
    assert scores == sorted(scores, reverse=True)


def test_it_reports_invalid_filters_instead_of_failing(cast, login):
    make_items(cast, 2)
    client = login(cast.viewer)
    response = client.get(LIST, {"status": "bogus", "sort": "nope"})
    assert response.status_code == 400
    assert b"Unknown value(s) bogus" in response.content
    assert b"Unknown sort" in response.content
    response = client.get(LIST, {"owner": "someone"}, **HTMX)
    assert response.status_code == 200  # htmx swaps 2xx only: the message must reach the page
    assert b"is not a user id" in response.content


def test_it_returns_only_the_table_to_htmx(cast, login):
    make_items(cast, 3)
    client = login(cast.viewer)
    full = client.get(LIST, {"practice": "incident"})
    partial = client.get(LIST, {"practice": "incident", "q": ""}, **HTMX)
    assert b"<html" in full.content and b"<html" not in partial.content
    assert b"<table" in partial.content
    assert [t.name for t in partial.templates][0] == "improvement/register_table.html"
    # The address bar gets the clean URL (no empty parameters).
    assert partial["HX-Push-Url"] == f"{LIST}?practice=incident&status=open"
    assert "HX-Request" in partial["Vary"]


def test_it_paginates_with_a_total(cast, login, settings):
    settings.TIKTING_PAGE_SIZE = 5
    make_items(cast, 12)
    client = login(cast.viewer)
    response = client.get(LIST, {"page": 3})
    assert response.context["page"].paginator.count == 12
    assert len(response.context["items"]) == 2
    assert b"<strong>12</strong> items" in response.content


def test_the_list_query_count_does_not_grow_with_items(cast, login):
    client = login(cast.viewer)
    make_items(cast, 5)
    for item in Item.objects.all()[:3]:
        accept(item, cast, owner=cast.owner)
    with CaptureQueriesContext(connection) as few:
        assert client.get(LIST, {"status": "all"}).status_code == 200
    for item in make_items(cast, 45)[:20]:
        accept(item, cast, owner=cast.other_owner)
    with CaptureQueriesContext(connection) as many:
        response = client.get(LIST, {"status": "all"})
    assert len(response.context["items"]) == 50
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]


@pytest.mark.parametrize("url", [BOARD, MATRIX, MINE])
def test_the_other_pages_query_count_does_not_grow_with_items(cast, login, url):
    client = login(cast.owner)
    for item in make_items(cast, 5):
        accept(item, cast, owner=cast.owner)
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    for item in make_items(cast, 45):
        accept(item, cast, owner=cast.owner)
    with CaptureQueriesContext(connection) as many:
        assert client.get(url).status_code == 200
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]


# --- Ranking -------------------------------------------------------------------------------------


def test_it_lets_a_manager_rank_the_open_backlog_page(cast, login):
    items = make_items(cast, 4)
    client = login(cast.manager)
    response = client.get(LIST)
    assert response.context["can_rank"]
    assert b"data-rank-url" in response.content
    order = [items[2].pk, items[0].pk, items[3].pk, items[1].pk]
    response = client.post(RANK, {"ids": order, "page": 1})
    assert response.status_code == 200, response.content
    assert response.json()["changed"] == 4
    ranked = [i.pk for i in client.get(LIST).context["items"]]
    assert ranked == order
    assert [Item.objects.get(pk=pk).rank for pk in order] == [1, 2, 3, 4]


def test_ranking_a_later_page_keeps_ranks_dense_across_pages(cast, login, settings):
    settings.TIKTING_PAGE_SIZE = 3
    make_items(cast, 7)
    client = login(cast.manager)
    page1 = [i.pk for i in client.get(LIST).context["items"]]
    page2 = [i.pk for i in client.get(LIST, {"page": 2}).context["items"]]
    response = client.post(RANK, {"ids": list(reversed(page2)), "page": 2})
    assert response.status_code == 200
    ranks = dict(Item.objects.values_list("pk", "rank"))
    # Page 1 keeps its order as ranks 1-3; the dragged page takes 4-6, not a second 1-3.
    assert [ranks[pk] for pk in page1] == [1, 2, 3]
    assert [ranks[pk] for pk in reversed(page2)] == [4, 5, 6]


def test_it_refuses_a_rank_of_a_stale_page(cast, login):
    items = make_items(cast, 3)
    response = login(cast.manager).post(RANK, {"ids": [items[0].pk, items[1].pk], "page": 1})
    assert response.status_code == 409
    assert not Item.objects.filter(rank__isnull=False).exists()


def test_only_managers_rank(cast, login):
    items = make_items(cast, 2)
    client = login(cast.owner)
    assert not client.get(LIST).context["can_rank"]
    assert client.post(RANK, {"ids": [i.pk for i in items], "page": 1}).status_code == 403
    assert client.get(RANK).status_code in (403, 405)


def test_ranking_is_offered_only_on_the_unfiltered_open_backlog(cast, login):
    make_items(cast, 2)
    client = login(cast.manager)
    assert not client.get(LIST, {"practice": "incident"}).context["can_rank"]
    assert not client.get(LIST, {"sort": "title"}).context["can_rank"]
    assert not client.get(LIST, {"status": "all"}).context["can_rank"]


# --- Board, matrix, my items ---------------------------------------------------------------------


def test_the_board_groups_items_by_status_and_caps_columns(cast, login, monkeypatch):
    from tikting.improvement.views import register

    monkeypatch.setattr(register, "BOARD_CAP", 2)
    items = make_items(cast, 5)
    accept(items[0], cast)
    response = login(cast.viewer).get(BOARD)
    columns = {c["status"]: c for c in response.context["columns"]}
    assert columns["new"]["count"] == 4
    assert len(columns["new"]["items"]) == 2
    assert columns["new"]["more"] == 2
    assert b"+2 more" in response.content
    assert [i.pk for i in columns["vision"]["items"]] == [items[0].pk]


def test_the_board_filters_like_the_list(cast, login):
    a, b = make_items(cast, 2)
    response = login(cast.viewer).get(BOARD, {"service": cast.network.pk}, **HTMX)
    shown = [i.pk for c in response.context["columns"] for i in c["items"]]
    assert shown == [a.pk]
    assert b"<html" not in response.content


def test_the_matrix_counts_quadrants_and_cells(cast, login):
    S.create_item(actor=None, title="Quick", impact=5, effort=1)
    S.create_item(actor=None, title="Quick too", impact=4, effort=2)
    S.create_item(actor=None, title="Big", impact=5, effort=5)
    S.create_item(actor=None, title="Meh", impact=1, effort=5)
    response = login(cast.viewer).get(MATRIX)
    quadrants = {q["key"]: q for q in response.context["quadrants"]}
    assert quadrants["quick_win"]["count"] == 2
    assert quadrants["major_project"]["count"] == 1
    assert quadrants["thankless"]["count"] == 1
    assert quadrants["fill_in"]["count"] == 0
    assert [i.title for i in quadrants["quick_win"]["items"]] == ["Quick", "Quick too"]
    assert "quadrant=quick_win" in quadrants["quick_win"]["url"]
    grid = {
        (row["impact"], cell["effort"]): cell["count"]
        for row in response.context["grid"]
        for cell in row["cells"]
    }
    assert grid[(5, 1)] == 1 and grid[(1, 5)] == 1 and grid[(3, 3)] == 0
    # Quick wins (high impact, low effort) are the top-left of the heat map.
    assert response.context["grid"][0]["impact"] == 5
    assert response.context["grid"][0]["cells"][0]["quadrant"] == "quick_win"


def test_my_items_shows_owned_submitted_and_open_actions(cast, login):
    mine = ready_item(cast)  # owned by the owner, with an action for them
    S.create_item(actor=cast.owner, title="My idea")
    rejected = S.create_item(actor=cast.owner, title="Rejected idea")
    S.assess_item(rejected, actor=cast.manager, decision="reject", reason="Covered by CI-1")
    response = login(cast.owner).get(MINE)
    assert [i.pk for i in response.context["owned"]] == [mine.pk]
    assert {i.title for i in response.context["submitted"]} == {"My idea", "Rejected idea"}
    assert [a.title for a in response.context["actions"]] == ["Write runbook"]
    assert b"Covered by CI-1" in response.content


def test_it_sorts_descending_by_nullable_columns_with_empty_values_last(cast, login):
    a, b, c = make_items(cast, 3)
    S.update_item(a, actor=None, target_date=timezone.localdate() + dt.timedelta(days=5))
    S.update_item(b, actor=None, target_date=timezone.localdate() + dt.timedelta(days=9))
    response = login(cast.viewer).get(LIST, {"sort": "-target_date"})
    assert [i.pk for i in response.context["items"]] == [b.pk, a.pk, c.pk]
