"""The generic record pages: permissions per role, filters, htmx, query counts, edit conflicts,
history, and raising an improvement from a record.

The module doubles as a URLconf (the project's URLs plus /records/), so the tests run before the
records URLs are wired into tikting/urls.py.
"""

import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import URLResolver, include, path
from django.utils import timezone

from tikting.accounts.models import Team
from tikting.cmdb.models import ConfigurationItem
from tikting.core.audit import history_for
from tikting.improvement.models import Item, SourceLink
from tikting.incidents.models import Incident
from tikting.problems.models import Problem
from tikting.records import registry as R
from tikting.test import form_data
from tikting.urls import urlpatterns as project_urlpatterns

urlpatterns = [
    path("records/", include("tikting.records.urls")),
    *(p for p in project_urlpatterns if not (isinstance(p, URLResolver) and p.namespace == "records")),
]

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tikting.records.tests.test_views")]

NOW = timezone.now()


def incident(number, *, actor=None, **data):
    data.setdefault("opened_at", NOW - dt.timedelta(days=1))
    return R.create_record("incident", actor=actor, number=number, **data)


@pytest.fixture
def incidents(cast):
    return [
        incident("INC001", short_description="Mail bounces", status="new", priority=2, service=cast.email),
        incident(
            "INC002",
            short_description="Router down",
            status="resolved",
            priority=1,
            service=cast.network,
            major=True,
            opened_at=NOW - dt.timedelta(days=40),
        ),
        incident(
            "INC003", short_description="Mailbox full", status="in_progress", priority=3, service=cast.email
        ),
    ]


def numbers(response) -> list[str]:
    return re.findall(r"INC\d{3}", response.content.decode().split("<tbody>", 1)[-1])


# --- Permissions --------------------------------------------------------------------------------


class TestPermissions:
    def test_it_sends_anonymous_visitors_to_the_login_page(self, client, incidents):
        for url in ("/records/", "/records/incident/", f"/records/incident/{incidents[0].pk}/"):
            response = client.get(url)
            assert response.status_code == 302
            assert response["Location"].startswith("/login/")

    def test_it_lets_a_viewer_read_but_not_write(self, login, cast, incidents):
        client = login(cast.viewer)
        pk = incidents[0].pk
        assert client.get("/records/").status_code == 200
        assert client.get("/records/incident/").status_code == 200
        page = client.get(f"/records/incident/{pk}/")
        assert page.status_code == 200
        assert b"Raise an improvement" not in page.content  # viewers cannot submit
        assert client.get("/records/incident/new/").status_code == 403
        assert client.post("/records/incident/new/", {"number": "X"}).status_code == 403
        assert client.get(f"/records/incident/{pk}/edit/").status_code == 403
        assert client.post(f"/records/incident/{pk}/edit/", {"number": "X"}).status_code == 403
        assert client.post(f"/records/incident/{pk}/delete/").status_code == 403
        assert Incident.objects.filter(pk=pk, number="INC001").exists()

    def test_it_lets_a_contributor_create_an_incident(self, login, cast):
        client = login(cast.contributor)
        assert client.get("/records/incident/new/").status_code == 200
        response = client.post(
            "/records/incident/new/",
            {
                "number": "INC900",
                "short_description": "VPN drops",
                "status": "new",
                "opened_at": "2026-03-01T09:30",
                "priority": "2",
                "service": cast.network.pk,
                "reopen_count": "0",
                "source": "manual",
            },
        )
        created = Incident.objects.get(number="INC900")
        assert response.status_code == 302
        assert response["Location"] == f"/records/incident/{created.pk}/"
        assert created.service == cast.network and created.priority == 2
        assert history_for(created).get().actor == cast.contributor

    def test_it_shows_service_errors_inline(self, login, cast, incidents):
        client = login(cast.contributor)
        response = client.post(
            "/records/incident/new/",
            {"number": "INC001", "opened_at": "2026-03-01T09:30", "reopen_count": "0", "status": "new"},
        )
        assert response.status_code == 400
        assert "Incident with this Number already exists" in response.content.decode()

    def test_it_lets_a_contributor_edit_but_not_delete(self, login, cast, incidents):
        client = login(cast.contributor)
        record = incidents[0]
        form = client.get(f"/records/incident/{record.pk}/edit/")
        assert form.status_code == 200
        assert 'name="expected_version" value="1"' in form.content.decode()
        data = _form_data(form)
        data["short_description"] = "Mail bounces for all staff"
        response = client.post(f"/records/incident/{record.pk}/edit/", data)
        assert response.status_code == 302, response.content.decode()[:2000]
        record.refresh_from_db()
        assert record.short_description == "Mail bounces for all staff"
        assert record.version == 2
        assert client.post(f"/records/incident/{record.pk}/delete/").status_code == 403

    def test_it_lets_a_manager_delete_after_confirming(self, login, cast, incidents):
        client = login(cast.manager)
        pk = incidents[0].pk
        confirm = client.get(f"/records/incident/{pk}/delete/")
        assert confirm.status_code == 200
        assert b"Delete INC001" in confirm.content
        response = client.post(f"/records/incident/{pk}/delete/")
        assert response.status_code == 302 and response["Location"] == "/records/incident/"
        assert not Incident.objects.filter(pk=pk).exists()

    def test_it_answers_404_for_an_unknown_kind_or_record(self, login, cast):
        client = login(cast.viewer)
        assert client.get("/records/nothing/").status_code == 404
        assert client.get("/records/incident/999999/").status_code == 404


def _form_data(response) -> dict:
    """What a browser would post back from a rendered form: each widget's value as rendered."""
    return form_data(response.context["form"])


# --- Lists --------------------------------------------------------------------------------------


class TestList:
    def test_it_lists_every_kind_and_the_index_counts_them(self, login, cast, incidents):
        client = login(cast.viewer)
        index = client.get("/records/")
        assert "Incidents" in index.content.decode()
        for slug in R.KINDS:
            assert client.get(f"/records/{slug}/").status_code == 200, slug

    def test_it_shows_newest_first_with_names_and_labels(self, login, cast, incidents):
        response = login(cast.viewer).get("/records/incident/")
        assert numbers(response) == ["INC003", "INC002", "INC001"]
        text = response.content.decode()
        assert "E-mail" in text  # the service by name, not its id
        assert "2 - High" in text  # the priority by label

    def test_it_filters_by_choice_relation_and_boolean(self, login, cast, incidents):
        client = login(cast.viewer)
        assert numbers(client.get("/records/incident/", {"status": "resolved"})) == ["INC002"]
        assert numbers(client.get("/records/incident/", {"service": cast.email.pk})) == ["INC003", "INC001"]
        assert numbers(client.get("/records/incident/", {"major": "yes"})) == ["INC002"]
        assert numbers(client.get("/records/incident/", {"priority": "1,3"})) == ["INC003", "INC002"]

    def test_it_filters_a_relation_by_name_too(self, login, cast, incidents):
        ci = R.create_record("ci", actor=None, name="mx-01", service=cast.email)
        R.update_record(incidents[2], actor=None, ci=ci)
        client = login(cast.viewer)
        assert numbers(client.get("/records/incident/", {"ci": "mx-01"})) == ["INC003"]
        assert numbers(client.get("/records/incident/", {"service": "Network"})) == ["INC002"]
        assert client.get("/records/incident/", {"ci": "nowhere"}).status_code == 400

    def test_it_searches_and_bounds_the_date(self, login, cast, incidents):
        client = login(cast.viewer)
        assert numbers(client.get("/records/incident/", {"q": "mail"})) == ["INC003", "INC001"]
        since = (NOW - dt.timedelta(days=10)).date().isoformat()
        assert numbers(client.get("/records/incident/", {"date_from": since})) == ["INC003", "INC001"]
        until = (NOW - dt.timedelta(days=30)).date().isoformat()
        assert numbers(client.get("/records/incident/", {"date_to": until})) == ["INC002"]

    def test_it_sorts_by_a_column_both_ways(self, login, cast, incidents):
        client = login(cast.viewer)
        assert numbers(client.get("/records/incident/", {"sort": "priority"})) == [
            "INC002",
            "INC001",
            "INC003",
        ]
        assert numbers(client.get("/records/incident/", {"sort": "-priority"})) == [
            "INC003",
            "INC001",
            "INC002",
        ]
        assert numbers(client.get("/records/incident/", {"sort": "service"})) == [
            "INC001",
            "INC003",
            "INC002",
        ]

    def test_it_reports_a_bad_filter_instead_of_failing(self, login, cast, incidents):
        response = login(cast.viewer).get("/records/incident/", {"status": "bogus", "sort": "nope"})
        assert response.status_code == 400
        text = response.content.decode()
        assert "status:" in text and "sort:" in text

    def test_it_swaps_only_the_table_for_htmx(self, login, cast, incidents):
        response = login(cast.viewer).get(
            "/records/incident/", {"status": "new"}, headers={"HX-Request": "true"}
        )
        text = response.content.decode()
        assert response.status_code == 200
        assert "<html" not in text and "<table" in text
        assert numbers(response) == ["INC001"]
        assert response["HX-Push-Url"] == "/records/incident/?status=new"
        assert "HX-Request" in response["Vary"]

    def test_it_pages_by_fifty(self, login, cast):
        for n in range(55):
            incident(f"INC{n:03d}")
        client = login(cast.viewer)
        first = client.get("/records/incident/")
        assert len(numbers(first)) == 50
        assert len(numbers(client.get("/records/incident/", {"page": 2}))) == 5

    def test_it_keeps_a_constant_number_of_queries(self, login, cast):
        client = login(cast.viewer)

        def queries_for(n: int) -> int:
            Incident.objects.all().delete()
            for i in range(n):
                team = Team.objects.create(name=f"Team {n}-{i}")
                ci = ConfigurationItem.objects.create(name=f"ci-{n}-{i}", service=cast.email)
                incident(f"INC{n}{i:03d}", service=cast.email, ci=ci, assignment_group=team)
            with CaptureQueriesContext(connection) as ctx:
                assert client.get("/records/incident/").status_code == 200
            return len(ctx.captured_queries)

        assert queries_for(5) == queries_for(50)

    def test_it_follows_a_related_link_filter(self, login, cast):
        problem = R.create_record("problem", actor=None, number="PRB1", title="Mail", opened_at=NOW)
        for n in range(12):
            incident(f"INC{n:03d}", problem=problem)
        incident("INC999")
        client = login(cast.viewer)
        page = client.get(f"/records/problem/{problem.pk}/")
        assert f"/records/incident/?problem={problem.pk}" in page.content.decode()
        listed = client.get("/records/incident/", {"problem": problem.pk})
        assert len(numbers(listed)) == 12 and "INC999" not in numbers(listed)


# --- Detail, history, conflicts ------------------------------------------------------------------


class TestDetail:
    def test_it_shows_fields_source_data_and_related_records(self, login, cast):
        problem = R.create_record(
            "problem", actor=None, number="PRB7", title="Recurring bounces", opened_at=NOW
        )
        record = incident(
            "INC100",
            short_description="Bounce",
            problem=problem,
            service=cast.email,
        )
        Incident.objects.filter(pk=record.pk).update(raw={"u_symptom": "550 rejected"})  # as an import does
        R.create_record(
            "interaction", actor=None, number="SD1", opened_at=NOW, incident=record, channel="phone"
        )
        client = login(cast.viewer)
        text = client.get(f"/records/incident/{record.pk}/").content.decode()
        assert "Source data" in text and "u_symptom" in text and "550 rejected" in text
        assert f'href="/records/problem/{problem.pk}/"' in text
        assert "SD1" in text  # its interactions
        assert "INC100" in client.get(f"/records/problem/{problem.pk}/").content.decode()

    def test_every_kind_has_a_detail_and_a_form(self, login, cast):
        client = login(cast.admin)
        for kind in R.KINDS.values():
            assert client.get(f"/records/{kind.slug}/new/").status_code == 200, kind.slug
        record = incident("INC1")
        assert client.get(f"/records/incident/{record.pk}/").status_code == 200
        assert client.get(f"/records/service/{cast.email.pk}/").status_code == 200
        assert client.get(f"/records/service/{cast.email.pk}/edit/").status_code == 200

    def test_a_kind_without_a_version_edits_too(self, login, cast):
        client = login(cast.admin)
        form = client.get(f"/records/service/{cast.email.pk}/edit/")
        assert "expected_version" not in form.context["form"].fields
        data = _form_data(form)
        data["description"] = "Mail for every member of staff"
        assert client.post(f"/records/service/{cast.email.pk}/edit/", data).status_code == 302
        cast.email.refresh_from_db()
        assert cast.email.description == "Mail for every member of staff"

    def test_the_history_shows_who_changed_what_old_to_new(self, login, cast, incidents):
        record = incidents[0]
        R.update_record(record, actor=cast.contributor, expected_version=1, category="mail")
        R.update_record(
            record, actor=cast.manager, expected_version=2, service=cast.network, status="resolved"
        )
        text = login(cast.viewer).get(f"/records/incident/{record.pk}/").content.decode()
        history = text.split('id="pane-history"', 1)[1]
        assert "Carl Contributor" in history and "Mia Manager" in history
        assert re.search(r"Category</span>: <del>—</del> → <ins>mail</ins>", history)
        # Relations by name and choices by label, not ids and slugs.
        assert re.search(r"Service</span>: <del>E-mail</del> → <ins>Network</ins>", history)
        assert re.search(r"Status</span>: <del>New</del> → <ins>Resolved</ins>", history)

    def test_a_stale_edit_conflicts_and_overwrites_nothing(self, login, cast, incidents):
        client = login(cast.contributor)
        record = incidents[0]
        data = _form_data(client.get(f"/records/incident/{record.pk}/edit/"))
        # Someone else saves first.
        R.update_record(record, actor=cast.manager, expected_version=1, short_description="Theirs")
        data["short_description"] = "Mine"
        response = client.post(f"/records/incident/{record.pk}/edit/", data)
        assert response.status_code == 409
        assert "changed by Mia Manager" in response.content.decode()
        record.refresh_from_db()
        assert record.short_description == "Theirs"


# --- Raising an improvement from a record --------------------------------------------------------


class TestRaiseImprovement:
    def test_the_record_page_offers_it_to_contributors(self, login, cast, incidents):
        text = login(cast.contributor).get(f"/records/incident/{incidents[0].pk}/").content.decode()
        assert f'href="/register/submit/?record=incident:{incidents[0].pk}"' in text

    def test_it_prefills_the_form_and_links_the_new_item(self, login, cast, incidents):
        client = login(cast.contributor)
        record = incidents[0]
        form = client.get(f"/register/submit/?record=incident:{record.pk}")
        assert form.status_code == 200
        initial = form.context["form"].initial
        assert initial["practice"] == "incident"
        assert initial["service"] == cast.email.pk
        assert initial["source_channel"] == "staff_feedback"  # an ordinary incident (not major)
        assert "INC001" in initial["source_reference"]
        assert initial["title"] == "Mail bounces"
        # The submit template posts to /register/submit/ without the query string.
        response = client.post(
            "/register/submit/",
            {
                "title": "Stop mail bounces",
                "practice": initial["practice"],
                "service": initial["service"],
                "source_channel": initial["source_channel"],
                "source_reference": initial["source_reference"],
                "impact": 3,
                "effort": 2,
                "justification_type": "operational",
            },
        )
        assert response.status_code == 302
        item = Item.objects.get(title="Stop mail bounces")
        link = SourceLink.objects.get(item=item)
        assert link.record == record
        item_page = client.get(item.get_absolute_url()).content.decode()
        assert f"/records/incident/{record.pk}/" in item_page  # the item lists its source record
        record_page = client.get(f"/records/incident/{record.pk}/").content.decode()
        assert item.ref in record_page and "Stop mail bounces" in record_page

    def test_an_explicit_record_in_the_body_links_too(self, login, cast):
        client = login(cast.contributor)
        ci = R.create_record("ci", actor=None, name="mx-01", service=cast.email)
        response = client.post(
            "/register/submit/",
            {
                "record": f"ci:{ci.pk}",
                "title": "Replace mx-01",
                "source_channel": "asset_data",
                "impact": 3,
                "effort": 3,
                "justification_type": "operational",
            },
        )
        assert response.status_code == 302
        assert SourceLink.objects.get(item__title="Replace mx-01").record == ci

    def test_a_plain_submission_links_nothing(self, login, cast, incidents):
        client = login(cast.contributor)
        client.get(f"/register/submit/?record=incident:{incidents[0].pk}")
        client.get("/register/submit/")  # a fresh, unrelated form forgets the record
        client.post(
            "/register/submit/",
            {
                "title": "Unrelated",
                "source_channel": "staff_feedback",
                "impact": 3,
                "effort": 3,
                "justification_type": "operational",
            },
        )
        assert Item.objects.filter(title="Unrelated").exists()
        assert not SourceLink.objects.exists()


def test_problem_lists_are_ordered_by_key_when_sorted(login, cast):
    for n in (3, 1, 2):
        R.create_record("problem", actor=None, number=f"PRB{n}", title="x", opened_at=NOW)
    text = login(cast.viewer).get("/records/problem/", {"sort": "number"}).content.decode()
    assert re.findall(r"PRB\d", text.split("<tbody>", 1)[1]) == ["PRB1", "PRB2", "PRB3"]
    assert Problem.objects.count() == 3
