import datetime as dt
import json

import pytest
from django.template.loader import render_to_string
from django.test import Client
from django.utils import timezone

from tikting.governance import services as GS
from tikting.governance.models import Minute, ReviewMeeting, ReviewStatus
from tikting.improvement import choices as C
from tikting.improvement import services as S
from tikting.improvement.models import Item
from tikting.test import ready_item

pytestmark = pytest.mark.django_db

READERS = ["viewer", "contributor", "owner", "manager", "admin"]
NOT_MANAGERS = ["viewer", "contributor", "owner"]
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def meeting(cast):
    return GS.create_review(actor=cast.manager, title="March review")


@pytest.fixture
def new_item(cast):
    return S.create_item(actor=cast.contributor, title="Password self-service")


# --- Anonymous users are sent to the login page ---------------------------------------------------


@pytest.mark.parametrize(
    "url", ["/governance/agenda/", "/governance/dashboard/", "/governance/reviews/", "/governance/reviews/1/"]
)
def test_anonymous_users_are_sent_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response.url.startswith("/login/")


# --- The agenda -----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", READERS)
def test_every_role_reads_the_agenda(cast, login, role, new_item):
    response = login(getattr(cast, role)).get("/governance/agenda/")
    assert response.status_code == 200
    assert new_item.title in response.content.decode()
    assert [s.key for s in response.context["sections"]][0] == "assess"


def test_managers_are_offered_to_start_a_review(cast, login):
    assert "Start review meeting" in login(cast.manager).get("/governance/agenda/").content.decode()


def test_viewers_are_not_offered_to_start_a_review(cast, login):
    assert "Start review meeting" not in login(cast.viewer).get("/governance/agenda/").content.decode()


def test_the_agenda_uses_the_planned_review_and_offers_decisions_to_managers(cast, login, meeting, new_item):
    page = login(cast.manager).get("/governance/agenda/").content.decode()
    assert "Recording decisions in" in page
    assert f"/governance/reviews/{meeting.pk}/minutes/new/?item={new_item.pk}" in page


def test_viewers_see_no_decision_buttons(cast, login, meeting, new_item):
    page = login(cast.viewer).get("/governance/agenda/").content.decode()
    assert "/minutes/new/" not in page


def test_the_agenda_links_to_the_filtered_register(cast, login, new_item):
    page = login(cast.viewer).get("/governance/agenda/").content.decode()
    assert 'href="/register/?status=all&amp;flag=to_assess"' in page


def test_an_unknown_meeting_is_404(cast, login):
    assert login(cast.viewer).get("/governance/agenda/?meeting=999").status_code == 404


# --- Reviews ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", READERS)
def test_every_role_reads_reviews(cast, login, role, meeting):
    client = login(getattr(cast, role))
    assert client.get("/governance/reviews/").status_code == 200
    assert client.get(f"/governance/reviews/{meeting.pk}/").status_code == 200
    assert client.get(f"/governance/reviews/{meeting.pk}/print/").status_code == 200


@pytest.mark.parametrize("role", NOT_MANAGERS)
def test_only_managers_start_reviews(cast, login, role):
    response = login(getattr(cast, role)).post("/governance/reviews/", {"title": "x"})
    assert response.status_code == 403
    assert not ReviewMeeting.objects.exists()


def test_a_manager_starts_a_review_from_the_agenda(cast, login):
    response = login(cast.manager).post(
        "/governance/reviews/", {"title": "", "scheduled_for": "2025-03-04", "next": "/governance/agenda/"}
    )
    meeting = ReviewMeeting.objects.get()
    assert response.status_code == 302
    assert response.url == f"/governance/agenda/?meeting={meeting.pk}"
    assert meeting.title == "Register review, March 2025"
    assert meeting.chair == cast.manager


def test_an_offsite_next_is_ignored(cast, login):
    response = login(cast.manager).post(
        "/governance/reviews/", {"title": "x", "next": "https://evil.example/"}
    )
    assert response.url == ReviewMeeting.objects.get().get_absolute_url()


def test_a_bad_date_is_shown_with_the_form(cast, login):
    response = login(cast.manager).post("/governance/reviews/", {"scheduled_for": "soon"})
    assert response.status_code == 400
    assert "scheduled_for" in response.context["form"].errors


@pytest.mark.parametrize("role", NOT_MANAGERS)
def test_only_managers_edit_and_hold_reviews(cast, login, role, meeting):
    client = login(getattr(cast, role))
    assert client.post(f"/governance/reviews/{meeting.pk}/", {"title": "x"}).status_code == 403
    assert client.post(f"/governance/reviews/{meeting.pk}/hold/").status_code == 403
    meeting.refresh_from_db()
    assert (meeting.title, meeting.status) == ("March review", ReviewStatus.PLANNED)


def test_a_manager_edits_and_holds_a_review(cast, login, meeting):
    client = login(cast.manager)
    response = client.post(
        f"/governance/reviews/{meeting.pk}/",
        {"title": "March review", "scheduled_for": "2025-03-04", "chair": cast.admin.pk, "notes": "Quorum"},
    )
    assert response.status_code == 302
    response = client.post(f"/governance/reviews/{meeting.pk}/hold/")
    assert response.status_code == 302
    meeting.refresh_from_db()
    assert (meeting.notes, meeting.chair, meeting.status) == ("Quorum", cast.admin, ReviewStatus.HELD)


def test_the_review_page_lists_minutes_by_item(cast, login, meeting, new_item):
    other = ready_item(cast, title="Other item")
    GS.record_minute(meeting, actor=cast.manager, item=new_item, kind="note", text="first on new")
    GS.record_minute(meeting, actor=cast.manager, item=other, kind="continue", text="on track")
    GS.record_minute(meeting, actor=cast.manager, item=new_item, kind="accept", text="go")
    response = login(cast.viewer).get(f"/governance/reviews/{meeting.pk}/")
    groups = response.context["minutes_by_item"]
    assert [(group["item_id"], [m.kind for m in group["minutes"]]) for group in groups] == [
        (new_item.pk, ["note", "accept"]),
        (other.pk, ["continue"]),
    ]


def test_the_printable_view_has_agenda_and_minutes(cast, login, meeting, new_item):
    GS.record_minute(meeting, actor=cast.manager, item=new_item, kind="note", text="Discussed at length")
    page = login(cast.viewer).get(f"/governance/reviews/{meeting.pk}/print/").content.decode()
    assert "Discussed at length" in page
    assert "New items to assess" in page


# --- Minutes, inline ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", NOT_MANAGERS)
def test_only_managers_record_minutes(cast, login, role, meeting, new_item):
    client = login(getattr(cast, role))
    url = f"/governance/reviews/{meeting.pk}/minutes/"
    assert client.get(f"{url}new/?item={new_item.pk}").status_code == 403
    assert client.post(url, {"item": new_item.pk, "kind": "note", "text": "x"}).status_code == 403
    assert not Minute.objects.exists()


def test_the_decision_form_is_a_row_for_htmx_and_a_page_otherwise(cast, login, meeting, new_item):
    client = login(cast.manager)
    url = f"/governance/reviews/{meeting.pk}/minutes/new/?item={new_item.pk}&section=assess"
    partial = client.get(url, **HTMX)
    assert partial.templates[0].name == "governance/partials/minute_form_row.html"
    assert partial.context["form"].initial["kind"] == "accept"
    assert client.get(url).templates[0].name == "governance/minute_form.html"


def test_an_htmx_decision_swaps_the_row(cast, login, meeting, new_item):
    response = login(cast.manager).post(
        f"/governance/reviews/{meeting.pk}/minutes/",
        {"item": new_item.pk, "section": "assess", "kind": "accept", "text": "Go", "owner": cast.owner.pk},
        **HTMX,
    )
    assert response.status_code == 200
    assert response.templates[0].name == "governance/partials/agenda_row.html"
    page = response.content.decode()
    assert f'id="row-assess-{new_item.pk}"' in page
    assert "Assessed: 1. Vision" in page
    new_item.refresh_from_db()
    assert (new_item.status, new_item.owner) == (C.Status.VISION, cast.owner)


def test_an_htmx_decision_with_errors_returns_the_form_row(cast, login, meeting, new_item):
    response = login(cast.manager).post(
        f"/governance/reviews/{meeting.pk}/minutes/",
        {"item": new_item.pk, "section": "assess", "kind": "defer", "text": "budget"},
        **HTMX,
    )
    assert response.status_code == 200  # htmx swaps 2xx only
    assert response.templates[0].name == "governance/partials/minute_form_row.html"
    assert "revisit_date" in response.context["form"].errors
    assert not Minute.objects.exists()


def test_a_plain_form_post_redirects_to_the_agenda(cast, login, meeting, new_item):
    revisit = (timezone.localdate() + dt.timedelta(days=30)).isoformat()
    response = login(cast.manager).post(
        f"/governance/reviews/{meeting.pk}/minutes/",
        {
            "item": new_item.pk,
            "section": "assess",
            "kind": "defer",
            "text": "budget",
            "revisit_date": revisit,
        },
    )
    assert response.status_code == 302
    assert response.url == f"/governance/agenda/?meeting={meeting.pk}#section-assess"
    assert Item.objects.get(pk=new_item.pk).status == C.Status.DEFERRED


def test_a_plain_form_post_with_errors_is_400(cast, login, meeting, new_item):
    response = login(cast.manager).post(
        f"/governance/reviews/{meeting.pk}/minutes/", {"item": new_item.pk, "kind": "note"}
    )
    assert response.status_code == 400
    assert "text" in response.context["form"].errors


def test_an_unknown_item_is_an_error(cast, login, meeting):
    response = login(cast.manager).post(
        f"/governance/reviews/{meeting.pk}/minutes/", {"item": 999, "kind": "note", "text": "x"}
    )
    assert response.status_code == 400
    assert "item" in response.context["form"].errors


def test_cancel_returns_the_row(cast, login, meeting, new_item):
    response = login(cast.viewer).get(
        f"/governance/reviews/{meeting.pk}/row/?item={new_item.pk}&section=assess", **HTMX
    )
    assert response.status_code == 200
    assert f'id="row-assess-{new_item.pk}"' in response.content.decode()


def test_posts_need_the_csrf_token(cast, meeting, new_item):
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.manager)
    response = client.post(
        f"/governance/reviews/{meeting.pk}/minutes/", {"item": new_item.pk, "kind": "accept"}
    )
    assert response.status_code == 403
    assert client.post("/governance/reviews/", {"title": "x"}).status_code == 403
    assert not Minute.objects.exists()


# --- The include for the item page ------------------------------------------------------------------


def test_the_item_minutes_include_lists_the_items_minutes(cast, meeting, new_item):
    GS.record_minute(meeting, actor=cast.manager, item=new_item, kind="accept", text="Worth it")
    html = render_to_string("governance/_item_minutes.html", {"item": new_item})
    assert "Worth it" in html
    assert "March review" in html
    assert "Assessed: 1. Vision" in html


def test_the_item_minutes_include_says_when_there_are_none(new_item):
    assert "Not discussed" in render_to_string("governance/_item_minutes.html", {"item": new_item})


# --- The dashboard ----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", READERS)
def test_every_role_reads_the_dashboard(cast, login, role, new_item):
    response = login(getattr(cast, role)).get("/governance/dashboard/")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="gov-chart-data"' in page
    assert "vendor/chart.umd.min.js" in page
    assert response.context["m"]["totals"]["total"] == 1


def test_the_dashboard_embeds_the_chart_data(cast, login, new_item):
    response = login(cast.viewer).get("/governance/dashboard/")
    data = response.context["chart_data"]
    assert len(data["months"]) == 12
    assert data["status"]["keys"][0] == "new"
    assert data["status"]["values"][0] == 1
    assert json.loads(json.dumps(data)) == data


def test_the_dashboard_filters_by_practice_and_service(cast, login):
    S.create_item(actor=cast.contributor, title="a", practice="incident", service=cast.email)
    S.create_item(actor=cast.contributor, title="b", practice="change", service=cast.network)
    client = login(cast.viewer)
    assert client.get("/governance/dashboard/?practice=change").context["m"]["totals"]["total"] == 1
    response = client.get(f"/governance/dashboard/?service={cast.email.pk}")
    assert response.context["m"]["totals"]["total"] == 1


def test_a_bad_dashboard_filter_is_reported_and_ignored(cast, login, new_item):
    response = login(cast.viewer).get("/governance/dashboard/?practice=nope")
    assert response.status_code == 200
    assert response.context["form"].errors
    assert response.context["m"]["totals"]["total"] == 1


def test_the_dashboard_rounds_closed_by_target_date_for_display_and_names_the_missed(cast, login):
    now = timezone.now()
    done = S.create_item(actor=cast.contributor, title="done on time")
    Item.objects.filter(pk=done.pk).update(
        status="closed", closed_at=now, target_date=timezone.localdate(now), outcome="successful"
    )
    for title in ("late one", "late two"):
        late = S.create_item(actor=cast.contributor, title=title)
        Item.objects.filter(pk=late.pk).update(target_date=timezone.localdate(now) - dt.timedelta(days=2))
    page = login(cast.viewer).get("/governance/dashboard/").content.decode()
    assert "33.3 %" in page and "33.33" not in page
    assert "1 of 3 due · 2 open past target (missed)" in page
