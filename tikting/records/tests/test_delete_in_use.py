"""Deleting a record others still use is refused with a message that names them plainly (never a
Python repr such as `{<Item: CI-00001 …>}`), in the API and on the page."""

from __future__ import annotations

import pytest
from django.test import Client

from tikting.accounts.models import ApiToken
from tikting.cmdb.models import Service
from tikting.improvement import services as S
from tikting.improvement.models import Item

pytestmark = pytest.mark.django_db


@pytest.fixture
def service_in_use(cast):
    for n in range(7):
        S.create_item(actor=cast.contributor, title=f"Improve mail {n}", service=cast.email)
    return cast.email


def first_item() -> str:
    """How the first item is named (its ref depends on the database's sequence)."""
    return str(Item.objects.order_by("pk").first())


def assert_plain(message: str) -> None:
    assert "<" not in message and "{" not in message, message
    assert "E-mail cannot be deleted: it is still used by 7 items (" in message
    assert f"{first_item()}, " in message and "and 2 more" in message


def test_the_api_names_the_items_that_use_a_service(cast, service_in_use):
    _, raw = ApiToken.issue(cast.admin, "tests")
    response = Client().delete(
        f"/api/records/service/{service_in_use.pk}", headers={"Authorization": f"Bearer {raw}"}
    )
    assert response.status_code == 422
    [entry] = response.json()["detail"]
    assert_plain(entry["message"])
    assert Service.objects.filter(pk=service_in_use.pk).exists()


def test_the_page_names_the_items_that_use_a_service(cast, service_in_use):
    client = Client()
    client.force_login(cast.admin)
    response = client.post(f"/records/service/{service_in_use.pk}/delete/")
    text = response.content.decode()
    assert "cannot be deleted" in text
    assert "&lt;Item" not in text and "{&lt;" not in text
    assert first_item() in text


def test_name_objects_groups_by_kind_singular_and_plural(cast, service_in_use):
    from tikting.core.exceptions import name_objects

    first, second = Item.objects.order_by("pk")[:2]
    assert name_objects([second, cast.network, first]) == f"2 items ({first}, {second}); 1 service (Network)"
