"""The recurring-incident review page (/signals/recurring/)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from tikting.cmdb.models import Service
from tikting.incidents.models import Incident
from tikting.problems.models import Problem
from tikting.signals.tests.test_detector_recurring_incidents import ALIKE as DETECTOR_ALIKE
from tikting.signals.tests.test_detector_recurring_incidents import T0, incident

pytestmark = pytest.mark.django_db

URL = "/signals/recurring/"
WINDOW = "days=120&until=2026-05-31"
ALIKE = DETECTOR_ALIKE[:3]


@pytest.fixture
def groups(cast):
    service = Service.objects.get(name="E-mail")
    alike = [
        incident(T0 + dt.timedelta(days=7 * k), text, service=service, category="Software")
        for k, text in enumerate(ALIKE * 2)
    ]
    for k in range(200):  # the rest of the traffic
        incident(T0 + dt.timedelta(hours=7 * k), category="Other")
    burst = [incident(T0 + dt.timedelta(days=40, minutes=9 * k), category="Network") for k in range(6)]
    return alike, burst


def test_it_lists_the_groups_with_their_trend(login, cast, groups):
    alike, burst = groups
    response = login(cast.viewer).get(f"{URL}?{WINDOW}")
    assert response.status_code == 200
    page = response.content.decode()
    assert "“Outlook crashes when opening attachments”" in page
    assert "service E-mail · category Software" in page
    # the trend: one bar per week from the group's first week to the window's last, with its counts
    assert 'aria-label="Incidents per week: 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0"' in page
    assert "no service or CI · category Network" in page
    assert page.count("Problem record proposed</span>") == 2
    # the latest incidents link to their records
    assert (
        f'href="{reverse("records:detail", args=["incident", alike[-1].pk])}">{alike[-1].number}</a>' in page
    )
    assert "2 groups holding 12 of 212 incidents" in page


def test_it_filters_by_rule_and_verdict(login, cast, groups):
    client = login(cast.viewer)
    page = client.get(f"{URL}?{WINDOW}&rule=burst").content.decode()
    assert "category Network" in page
    assert "Outlook" not in page
    assert "1 match the filters" in page
    page = client.get(f"{URL}?{WINDOW}&verdict=improvement").content.decode()
    assert "No recurring incidents in this window." in page


def test_a_group_with_a_problem_says_whether_the_pattern_persists(login, cast, groups):
    alike, _burst = groups
    problem = Problem.objects.create(
        number="PRB0042", title="Attachments", opened_at=T0 + dt.timedelta(days=1)
    )
    Incident.objects.filter(pk=alike[0].pk).update(problem=problem)
    page = login(cast.viewer).get(f"{URL}?{WINDOW}&rule=text").content.decode()
    assert "Improvement proposed</span>" in page
    assert f'5 after <a href="{reverse("records:detail", args=["problem", problem.pk])}">PRB0042</a>' in page

    Problem.objects.filter(pk=problem.pk).update(opened_at=T0 + dt.timedelta(days=60))
    Incident.objects.filter(pk=alike[1].pk).update(problem=problem)  # a write: the answer is computed anew
    page = login(cast.viewer).get(f"{URL}?{WINDOW}&rule=text").content.decode()
    assert "In hand</span>" in page
    assert "2 linked to" in page


def test_a_bad_window_is_named_and_the_default_shown(login, cast, groups):
    response = login(cast.viewer).get(f"{URL}?days=0&until=31-05-2026")
    assert response.status_code == 400
    page = response.content.decode()
    assert "Days: Ensure this value is greater than or equal to 1." in page
    assert "Until: Enter a valid date." in page
    assert "Showing the default window instead." in page


def test_anonymous_visitors_are_sent_to_sign_in(client, groups):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_every_role_that_reads_records_may_read_it(login, cast, groups):
    for user in (cast.viewer, cast.contributor, cast.owner, cast.manager, cast.admin):
        assert login(user).get(f"{URL}?{WINDOW}").status_code == 200


def test_a_user_who_may_not_read_records_is_refused(cast, rf):
    from django.core.exceptions import PermissionDenied

    from tikting.signals.views_recurring import recurring_review

    cast.viewer.is_active = False  # signed in, but has_role() is false for every role
    request = rf.get(URL)
    request.user = cast.viewer
    with pytest.raises(PermissionDenied):
        recurring_review(request)


def test_the_intake_queue_links_to_it(login, cast):
    page = login(cast.viewer).get(reverse("signals:queue")).content.decode()
    assert f'href="{URL}"' in page
