"""The sprint pages: who sees and does what (a table per role), the board's moves by form and by
fetch, logging hours, the review form."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from tikting.cadence import services as CS
from tikting.cadence.models import Column, Sprint, SprintItem, SprintStatus, TimeLog
from tikting.improvement import services as S

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()


@pytest.fixture
def card(cast, sprint):
    item = S.create_item(actor=cast.contributor, title="Self-service password reset")
    return CS.add_sprint_item(sprint, actor=cast.manager, item=item, planned_hours="4")


def test_anonymous_users_are_sent_to_login(client, sprint):
    for url in (
        "/cadence/sprints/",
        f"/cadence/sprints/{sprint.pk}/",
        f"/cadence/sprints/{sprint.pk}/review/",
    ):
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"]


# role: (plans a sprint, moves a card, logs own hours, logs for someone else, holds the review)
PERMISSIONS = {
    "viewer": (False, False, False, False, False),
    "contributor": (False, True, True, False, False),  # a member of the sprint's team
    "other_owner": (True, True, False, False, True),  # plans, but is not in the team nor owns the item
    "manager": (True, True, True, True, True),
    "admin": (True, True, True, True, True),
}


@pytest.mark.parametrize("role", PERMISSIONS)
def test_permissions_per_role(login, cast, team, sprint, card, role):
    plans, moves, logs, logs_for_others, reviews = PERMISSIONS[role]
    user = getattr(cast, role)
    client = login(user)
    assert client.get("/cadence/sprints/").status_code == 200
    assert client.get(f"/cadence/sprints/{sprint.pk}/").status_code == 200
    response = client.post(
        "/cadence/sprints/",
        {
            "team": team.pk,
            "name": f"By {role}",
            "goal": "G",
            "start": TODAY.isoformat(),
            "end": (TODAY + dt.timedelta(days=13)).isoformat(),
        },
    )
    assert Sprint.objects.filter(name=f"By {role}").exists() is plans
    assert response.status_code == (302 if plans else 403)
    response = client.post(f"/cadence/cards/{card.pk}/move/", {"column": "doing"})
    card.refresh_from_db()
    assert (card.column == Column.DOING) is moves
    assert response.status_code == (302 if moves else 403)
    CS.move_card(card, actor=None, column=Column.TODO)
    response = client.post(f"/cadence/cards/{card.pk}/log/", {"hours": "1", "day": TODAY.isoformat()})
    assert TimeLog.objects.filter(user=user).exists() is logs
    assert response.status_code == (302 if logs else 403)
    response = client.post(
        f"/cadence/cards/{card.pk}/log/", {"hours": "1", "day": TODAY.isoformat(), "user": cast.viewer.pk}
    )
    assert TimeLog.objects.filter(user=cast.viewer).exists() is logs_for_others
    assert client.get(f"/cadence/sprints/{sprint.pk}/review/").status_code == (200 if reviews else 403)


def test_the_board_moves_a_card_by_fetch_and_answers_a_stale_version_with_409(login, cast, card):
    client = login(cast.contributor)
    response = client.post(
        f"/cadence/cards/{card.pk}/move/",
        {"column": "done", "position": "1", "expected_version": card.version},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 200
    assert response.json()["version"] == card.version + 1
    response = client.post(
        f"/cadence/cards/{card.pk}/move/",
        {"column": "doing", "expected_version": card.version},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 409
    assert "changed by someone else" in response.json()["error"]
    card.refresh_from_db()
    assert card.column == Column.DONE


def test_adding_past_the_scope_size_shows_the_warning_and_keeps_the_form(login, cast, sprint, settings):
    settings.TIKTING_SPRINT_MAX_ITEMS = 1
    first, second = (S.create_item(actor=cast.contributor, title=f"Idea {i}") for i in range(2))
    client = login(cast.manager)
    assert (
        client.post(f"/cadence/sprints/{sprint.pk}/", {"item": first.pk, "planned_hours": "2"}).status_code
        == 302
    )
    page = client.get(f"/cadence/sprints/{sprint.pk}/").content.decode()
    assert "past the configured 1" in page
    response = client.post(f"/cadence/sprints/{sprint.pk}/", {"item": second.pk, "planned_hours": "2"})
    assert response.status_code == 400
    assert "Give a reason to go past it" in response.content.decode()
    response = client.post(
        f"/cadence/sprints/{sprint.pk}/",
        {"item": second.pk, "planned_hours": "2", "over_scope_reason": "Same fix"},
    )
    assert response.status_code == 302
    assert SprintItem.objects.filter(sprint=sprint).count() == 2


def test_a_bad_time_log_names_the_problem(login, cast, card):
    client = login(cast.contributor)
    response = client.post(
        f"/cadence/cards/{card.pk}/log/",
        {"hours": "3", "day": (TODAY + dt.timedelta(days=2)).isoformat()},
        follow=True,
    )
    assert "the day is in the future" in response.content.decode()
    assert not TimeLog.objects.exists()


def test_the_review_form_records_decisions(login, cast, sprint, card):
    CS.start_sprint(sprint, actor=cast.manager)
    sprint.refresh_from_db()
    client = login(cast.manager)
    page = client.get(f"/cadence/sprints/{sprint.pk}/review/").content.decode()
    assert "no indicator with a baseline" in page
    response = client.post(
        f"/cadence/sprints/{sprint.pk}/review/",
        {
            "what_changed": "Reset page live",
            "expected_version": sprint.version - 1,
            f"decision_{card.pk}": "continue",
            f"disposition_{card.pk}": "register",
        },
    )
    assert response.status_code == 400  # read before the sprint started: nothing recorded
    assert "changed by someone else" in response.content.decode()
    response = client.post(
        f"/cadence/sprints/{sprint.pk}/review/",
        {
            "what_changed": "Reset page live",
            "expected_version": sprint.version,
            f"decision_{card.pk}": "continue",
        },
    )
    assert response.status_code == 400
    assert "back to the register or into the next sprint" in response.content.decode()
    response = client.post(
        f"/cadence/sprints/{sprint.pk}/review/",
        {
            "what_changed": "Reset page live",
            "expected_version": sprint.version,
            f"decision_{card.pk}": "continue",
            f"disposition_{card.pk}": "register",
        },
    )
    assert response.status_code == 302
    sprint.refresh_from_db()
    assert sprint.status == SprintStatus.CLOSED
    list_page = client.get("/cadence/sprints/").content.decode()
    assert "over 1 reviewed sprint" in list_page


def test_the_sprint_list_pages_with_a_constant_number_of_queries(
    login, cast, team, django_assert_num_queries
):
    start = dt.date(2025, 1, 6)
    Sprint.objects.bulk_create(
        Sprint(
            team=team,
            name=f"Old {n:02d}",
            goal="G",
            start=start + dt.timedelta(weeks=2 * n),
            end=start + dt.timedelta(weeks=2 * n, days=13),
        )
        for n in range(30)
    )
    client = login(cast.viewer)
    client.get("/cadence/sprints/")
    first = client.get("/cadence/sprints/").content.decode()
    assert "Old 29" in first and "Old 04" not in first and "Page 1 of 2 (30 sprints)" in first
    second = client.get(f"/cadence/sprints/?team={team.pk}&page=2").content.decode()
    assert "Old 04" in second and "Old 05" not in second
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        client.get("/cadence/sprints/")
    Sprint.objects.bulk_create(
        Sprint(team=team, name=f"More {n}", goal="G", start=start, end=start + dt.timedelta(days=13))
        for n in range(30)
    )
    with django_assert_num_queries(len(queries)):
        client.get("/cadence/sprints/")
