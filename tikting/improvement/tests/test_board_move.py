"""Moving cards on the register board: the step's preconditions, refusals said in place."""

from __future__ import annotations

import pytest
from django.test import Client

from tikting.improvement.models import Item
from tikting.test import ready_item

pytestmark = pytest.mark.django_db

JSON = {"Accept": "application/json"}


def test_a_move_goes_through_the_transition_and_answers_the_next_moves(cast):
    item = ready_item(cast)
    client = Client()
    client.force_login(cast.owner)
    response = client.post(
        "/register/board/move/", {"item": item.pk, "to": "action", "version": item.version}, headers=JSON
    )
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["status"] == "action" and data["version"] == item.version + 1
    assert [m[0] for m in data["moves"]] == ["evaluation", "plan"]  # forward first
    assert Item.objects.get(pk=item.pk).status == "action"


def test_a_refused_move_says_what_is_missing(cast):
    item = ready_item(cast)
    item.actions.all().delete()
    client = Client()
    client.force_login(cast.owner)
    response = client.post("/register/board/move/", {"item": item.pk, "to": "action"}, headers=JSON)
    assert response.status_code == 400
    assert "action" in response.json()["error"].lower() and item.ref in response.json()["error"]
    skip = client.post("/register/board/move/", {"item": item.pk, "to": "momentum"}, headers=JSON)
    assert skip.status_code == 400 and "Allowed" in skip.json()["error"]
    stale = client.post(
        "/register/board/move/", {"item": item.pk, "to": "target_state", "version": 1}, headers=JSON
    )
    assert stale.status_code == 409
    assert Item.objects.get(pk=item.pk).status == "plan"


def test_only_who_drives_the_item_moves_it_and_the_form_works_without_script(cast):
    item = ready_item(cast)
    other = Client()
    other.force_login(cast.other_owner)
    assert other.post("/register/board/move/", {"item": item.pk, "to": "action"}).status_code == 403
    owner = Client()
    owner.force_login(cast.owner)
    response = owner.post(
        "/register/board/move/", {"item": item.pk, "to": "action", "next": "/register/board/"}
    )
    assert response.status_code == 302 and response["Location"] == "/register/board/"
    assert Item.objects.get(pk=item.pk).status == "action"
    away = owner.post(
        "/register/board/move/", {"item": item.pk, "to": "plan", "next": "https://evil.example/"}
    )
    assert away["Location"] == "/register/board/"


def test_the_board_offers_moves_to_the_items_driver_only(cast):
    item = ready_item(cast)
    owner = Client()
    owner.force_login(cast.owner)
    html = owner.get("/register/board/").content.decode()
    assert f'id="board-to-{item.pk}"' in html and "data-movable" in html
    viewer = Client()
    viewer.force_login(cast.viewer)
    assert f'id="board-to-{item.pk}"' not in viewer.get("/register/board/").content.decode()
