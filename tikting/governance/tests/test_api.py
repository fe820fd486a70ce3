import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from tikting.accounts.models import ApiToken
from tikting.governance import services as GS
from tikting.governance.models import Minute, ReviewMeeting
from tikting.improvement import choices as C
from tikting.improvement import services as S
from tikting.improvement.models import Item
from tikting.lib.display import when

pytestmark = pytest.mark.django_db

READERS = ["viewer", "contributor", "owner", "manager", "admin"]
NOT_MANAGERS = ["viewer", "contributor", "owner"]
BASE = "/api/governance"


@pytest.fixture
def meeting(cast):
    return GS.create_review(actor=cast.manager, title="March review", scheduled_for=dt.date(2025, 3, 4))


@pytest.fixture
def new_item(cast):
    return S.create_item(actor=cast.contributor, title="Password self-service")


def fields(response):
    return {error["field"] for error in response.json()["detail"]}


# --- Authentication -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/agenda"), ("get", "/reviews"), ("post", "/reviews"), ("get", "/practice-metrics")],
)
def test_anonymous_callers_get_401(client, method, path):
    response = getattr(client, method)(BASE + path, content_type="application/json")
    assert response.status_code == 401


def test_a_bearer_token_authenticates(cast, new_item):
    _, raw = ApiToken.issue(cast.viewer, "script")
    response = Client().get(f"{BASE}/agenda", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 200


def test_session_posts_need_csrf(cast):
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.manager)
    response = client.post(f"{BASE}/reviews", {}, content_type="application/json")
    assert response.status_code == 403
    assert not ReviewMeeting.objects.exists()


# --- Agenda ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", READERS)
def test_every_role_reads_the_agenda(cast, login, role, new_item):
    response = login(getattr(cast, role)).get(f"{BASE}/agenda")
    assert response.status_code == 200
    assess = response.json()["sections"][0]
    assert assess["key"] == "assess"
    assert assess["count"] == 1
    assert assess["register_url"] == "/register/?status=all&flag=to_assess"
    assert assess["items"][0]["ref"] == new_item.ref


def test_the_agenda_takes_a_section_and_limit(cast, login):
    for n in range(3):
        S.create_item(actor=cast.contributor, title=f"n{n}")
    body = login(cast.viewer).get(f"{BASE}/agenda?section=assess&limit=2").json()
    assert [s["key"] for s in body["sections"]] == ["assess"]
    assert (body["sections"][0]["count"], len(body["sections"][0]["items"])) == (3, 2)


def test_a_bad_agenda_parameter_is_422_naming_it(cast, login):
    response = login(cast.viewer).get(f"{BASE}/agenda?section=nope&limit=0")
    assert response.status_code == 422
    assert fields(response) == {"section", "limit"}


# --- Reviews --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", READERS)
def test_every_role_lists_and_reads_reviews(cast, login, role, meeting, new_item):
    GS.record_minute(meeting, actor=cast.manager, item=new_item, kind="note", text="seen")
    client = login(getattr(cast, role))
    listed = client.get(f"{BASE}/reviews").json()
    assert [(r["id"], r["minute_count"]) for r in listed] == [(meeting.pk, 1)]
    detail = client.get(f"{BASE}/reviews/{meeting.pk}").json()
    assert detail["chair"]["username"] == cast.manager.username
    assert detail["minutes"][0]["item"]["ref"] == new_item.ref
    assert detail["minutes"][0]["kind"] == "note"


def test_an_unknown_review_is_404(cast, login):
    assert login(cast.viewer).get(f"{BASE}/reviews/999").status_code == 404


@pytest.mark.parametrize("role", NOT_MANAGERS)
def test_only_managers_create_reviews(cast, login, role):
    response = login(getattr(cast, role)).post(f"{BASE}/reviews", {}, content_type="application/json")
    assert response.status_code == 403
    assert not ReviewMeeting.objects.exists()


@pytest.mark.parametrize("role", ["manager", "admin"])
def test_managers_create_reviews(cast, login, role):
    response = login(getattr(cast, role)).post(
        f"{BASE}/reviews",
        {"scheduled_for": "2025-04-01", "chair_id": cast.manager.pk, "notes": "agenda attached"},
        content_type="application/json",
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["title"], body["chair"]["id"], body["status"]) == (
        "Register review, April 2025",
        cast.manager.pk,
        "planned",
    )


def test_a_bad_review_body_is_422_with_field_names(cast, login):
    client = login(cast.manager)
    response = client.post(
        f"{BASE}/reviews", {"scheduled_for": "soon", "colour": "red"}, content_type="application/json"
    )
    assert response.status_code == 422
    assert fields(response) == {"scheduled_for", "colour"}
    response = client.post(f"{BASE}/reviews", {"chair_id": 999}, content_type="application/json")
    assert response.status_code == 422
    assert fields(response) == {"chair_id"}


# --- Minutes ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", NOT_MANAGERS)
def test_only_managers_record_minutes(cast, login, role, meeting, new_item):
    response = login(getattr(cast, role)).post(
        f"{BASE}/reviews/{meeting.pk}/minutes",
        {"item_id": new_item.pk, "kind": "note", "text": "x"},
        content_type="application/json",
    )
    assert response.status_code == 403
    assert not Minute.objects.exists()


def test_a_manager_defers_an_item_through_a_minute(cast, login, meeting, new_item):
    revisit = timezone.localdate() + dt.timedelta(days=60)
    response = login(cast.manager).post(
        f"{BASE}/reviews/{meeting.pk}/minutes",
        {"item_id": new_item.pk, "kind": "defer", "text": "No budget", "revisit_date": revisit.isoformat()},
        content_type="application/json",
    )
    assert response.status_code == 201
    body = response.json()
    assert body["effect"] == f"Assessed: Deferred until {when(revisit)}"
    assert body["actor"]["id"] == cast.manager.pk
    assert Item.objects.get(pk=new_item.pk).status == C.Status.DEFERRED


def test_a_manager_assigns_an_owner(cast, login, meeting, new_item):
    response = login(cast.manager).post(
        f"{BASE}/reviews/{meeting.pk}/minutes",
        {"item_id": new_item.pk, "kind": "assign", "owner_id": cast.owner.pk},
        content_type="application/json",
    )
    assert response.status_code == 201
    assert Item.objects.get(pk=new_item.pk).owner == cast.owner


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"kind": "defer", "text": "x"}, {"revisit_date"}),
        ({"kind": "defer"}, {"text"}),
        ({"kind": "approve"}, {"kind"}),
        ({"kind": "assign", "owner_id": 99999}, {"owner_id"}),
        ({"kind": "assign"}, {"owner_id"}),
        ({"kind": "note", "text": "x", "item_id": 99999}, {"item_id"}),
        ({"kind": "note", "text": "x", "extra": 1}, {"extra"}),
    ],
)
def test_bad_minutes_are_422_naming_the_field(cast, login, meeting, new_item, body, expected):
    payload = {"item_id": new_item.pk, **body}
    response = login(cast.manager).post(
        f"{BASE}/reviews/{meeting.pk}/minutes", payload, content_type="application/json"
    )
    assert response.status_code == 422, response.content
    assert fields(response) == expected
    assert not Minute.objects.exists()


def test_minutes_of_an_unknown_review_are_404(cast, login, new_item):
    response = login(cast.manager).post(
        f"{BASE}/reviews/999/minutes",
        {"item_id": new_item.pk, "kind": "note", "text": "x"},
        content_type="application/json",
    )
    assert response.status_code == 404


# --- Practice metrics -------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", READERS)
def test_every_role_reads_practice_metrics(cast, login, role, new_item):
    response = login(getattr(cast, role)).get(f"{BASE}/practice-metrics")
    assert response.status_code == 200
    body = response.json()
    assert body["totals"]["total"] == 1
    assert body["by_status"]["new"] == 1
    assert body["cycle_time"] == {"count": 0, "mean_days": None, "median_days": None}
    assert body["closed_on_time"]["percent"] is None
    assert len(body["created_vs_closed"]) == 12


def test_practice_metrics_filter_and_report_deltas(cast, login):
    item = S.create_item(actor=cast.contributor, title="a", practice="change", service=cast.email)
    now = timezone.now()
    Item.objects.filter(pk=item.pk).update(
        status="closed",
        identified_at=now - dt.timedelta(days=10),
        closed_at=now,
        target_date=timezone.localdate(now),
        outcome="successful",
        benefit_category="time_saved",
        realised_delta="-2.5000",
    )
    S.create_item(actor=cast.contributor, title="b", practice="incident")
    client = login(cast.viewer)
    body = client.get(f"{BASE}/practice-metrics?practice=change&service={cast.email.pk}").json()
    assert body["totals"]["total"] == 1
    assert body["cycle_time"]["mean_days"] == 10.0
    assert body["closed_on_time"]["percent"] == 100.0
    assert body["outcomes"]["items"][0]["realised_delta"] == "-2.5"


def test_practice_metrics_count_open_items_past_target_as_missed_at_full_precision(cast, login):
    now = timezone.now()
    today = timezone.localdate(now)
    on_time = S.create_item(actor=cast.contributor, title="on time")
    Item.objects.filter(pk=on_time.pk).update(
        status="closed", identified_at=now - dt.timedelta(days=5), closed_at=now, target_date=today
    )
    for title in ("late one", "late two"):  # still open, target passed: missed
        late = S.create_item(actor=cast.contributor, title=title)
        Item.objects.filter(pk=late.pk).update(target_date=today - dt.timedelta(days=3))
    body = login(cast.viewer).get(f"{BASE}/practice-metrics").json()["closed_on_time"]
    assert (body["on_time"], body["open_past_target"], body["missed"]) == (1, 2, 2)
    assert body["percent"] == pytest.approx(100 / 3, abs=1e-9)  # not 33.3: rounding is for display


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("practice=nope", {"practice"}),
        ("service=99999", {"service"}),
        ("start=2025-02-01&end=2025-01-01", {"end"}),
        ("start=yesterday", {"start"}),
    ],
)
def test_bad_metric_filters_are_422_naming_them(cast, login, query, expected):
    response = login(cast.viewer).get(f"{BASE}/practice-metrics?{query}")
    assert response.status_code == 422
    assert fields(response) == expected
