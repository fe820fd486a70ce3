"""The pages: the bell's count, the list, mark read (htmx), following from a page, the @ lookup,
preferences and the webhook pages."""

from __future__ import annotations

import pytest
from django.test import Client

from tikting.core.events import Kind
from tikting.improvement import services as S
from tikting.notifications import services as NS
from tikting.notifications.models import DigestChoice, Follow, Notification, Preference, Webhook
from tikting.records.registry import create_record
from tikting.test import ready_item

pytestmark = pytest.mark.django_db


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_bell_list_and_marking_read(cast):
    item = ready_item(cast)
    Notification.objects.all().delete()
    S.add_comment(item, actor=cast.contributor, body="@otto one")
    S.add_comment(item, actor=cast.contributor, body="@otto two")
    otto = signed_in(cast.other_owner)
    assert 'data-unread="2"' in otto.get("/notifications/bell/").content.decode()
    page = otto.get("/notifications/?show=unread").content.decode()
    assert "@otto one" in page and "@otto two" in page
    first = Notification.objects.filter(recipient=cast.other_owner).order_by("pk").first()
    assert first is not None
    response = otto.post(f"/notifications/{first.pk}/read/", headers={"HX-Request": "true"})
    assert response.status_code == 200 and 'hx-swap-oob="innerHTML"' in response.content.decode()
    assert 'data-unread="1"' in response.content.decode()
    # somebody else's notification: not found
    assert signed_in(cast.viewer).post(f"/notifications/{first.pk}/read/").status_code == 404
    # opening one goes to what it is about
    second = Notification.objects.get(recipient=cast.other_owner, read_at=None)
    response = otto.post(f"/notifications/{second.pk}/read/", {"next": second.url})
    assert response.status_code == 302 and response["Location"] == f"/register/{item.pk}/"
    S.add_comment(item, actor=cast.contributor, body="@otto three")
    assert otto.post("/notifications/read-all/").status_code == 302
    assert not Notification.objects.filter(recipient=cast.other_owner, read_at=None).exists()
    assert "No unread notifications" in otto.get("/notifications/bell/").content.decode()


def test_following_from_the_item_and_the_record_page(cast):
    item = ready_item(cast)
    incident = create_record("incident", actor=None, number="INC-7", opened_at="2026-11-20T10:00Z")
    vera = signed_in(cast.viewer)
    page = vera.get(f"/register/{item.pk}/").content.decode()
    assert f'hx-post="/notifications/follow/item/{item.pk}/"' in page and "bi-eye" in page
    response = vera.post(
        f"/notifications/follow/item/{item.pk}/", {"follow": "1"}, headers={"HX-Request": "true"}
    )
    assert "Following" in response.content.decode()
    assert Follow.objects.filter(user=cast.viewer).count() == 1
    assert "Following" in vera.get(f"/register/{item.pk}/").content.decode()
    assert vera.post(f"/notifications/follow/item/{item.pk}/", {"follow": "0"}).status_code == 302
    assert Follow.objects.count() == 0
    assert vera.post(f"/notifications/follow/item/{item.pk}/", {}).status_code == 400
    page = vera.get(f"/records/incident/{incident.pk}/").content.decode()
    assert f"/notifications/follow/records/incident/{incident.pk}/" in page
    vera.post(f"/notifications/follow/records/incident/{incident.pk}/", {"follow": "1"})
    assert NS.is_following(cast.viewer, incident)
    assert vera.post(f"/notifications/follow/records/nope/{incident.pk}/", {"follow": "1"}).status_code == 404


def test_the_mention_lookup_lists_active_people(cast):
    cast.other_owner.is_active = False
    cast.other_owner.save()
    client = signed_in(cast.viewer)
    assert client.get("/notifications/people/?q=o").json() == {
        "people": [{"username": "olga", "name": "Olga Owner"}]
    }
    assert client.get("/notifications/people/?q=Mia").json()["people"][0]["username"] == "mia"
    assert client.get("/notifications/people/?q=").json() == {"people": []}
    assert Client().get("/notifications/people/?q=o").status_code == 302


def test_preferences_page(cast):
    client = signed_in(cast.viewer)
    page = client.get("/notifications/preferences/").content.decode()
    assert 'name="kind_assigned" value="email" id="id_kind_assigned_1" aria-label' in page
    form = {f"kind_{k}": "app" for k in Kind.values}
    form["kind_commented"] = "off"
    form["daily_digest"] = "on"
    assert client.post("/notifications/preferences/", form).status_code == 302
    assert Preference.objects.get(user=cast.viewer, kind="commented").channel == "off"
    assert DigestChoice.objects.get(user=cast.viewer).daily
    form["kind_commented"] = "loud"
    assert client.post("/notifications/preferences/", form).status_code == 400


def test_webhook_pages_for_managers(cast, settings):
    mia = signed_in(cast.manager)
    form = {"name": "Chat", "url": "http://127.0.0.1:9/in", "kinds": ["commented"], "active": "on"}
    response = mia.post("/notifications/webhooks/", form)
    assert response.status_code == 400 and "loopback address" in response.content.decode()
    settings.TIKTING_WEBHOOK_ALLOW_PRIVATE = True
    response = mia.post("/notifications/webhooks/", form)
    hook = Webhook.objects.get()
    assert response["Location"] == f"/notifications/webhooks/{hook.pk}/"
    page = mia.get(f"/notifications/webhooks/{hook.pk}/").content.decode()
    assert hook.secret in page and "Delivery log" in page
    assert signed_in(cast.owner).get(f"/notifications/webhooks/{hook.pk}/").status_code == 403
    assert mia.post(f"/notifications/webhooks/{hook.pk}/delete/").status_code == 302
    assert Webhook.objects.count() == 0
