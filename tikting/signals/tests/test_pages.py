"""The intake pages: the queue, a candidate and its triage forms, bulk triage, the detector runs."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from tikting.improvement import services as IS
from tikting.improvement.models import Item
from tikting.lib.display import when
from tikting.signals import services as S
from tikting.signals.models import Candidate, DetectorRun
from tikting.signals.tests.fixtures import NAME, incident, proposal

pytestmark = pytest.mark.django_db


def raise_one(fingerprint: str = "scripted:1", **extra) -> Candidate:
    S.ingest([proposal(fingerprint, **extra)], detector=NAME, channel="sla_breach")
    return Candidate.objects.get(fingerprint=fingerprint)


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


ROLES = ["viewer", "contributor", "owner", "manager", "admin"]


@pytest.mark.parametrize("role", ROLES)
def test_every_role_reads_the_queue_managers_triage(cast, role):
    candidate = raise_one()
    client = signed_in(getattr(cast, role))
    triager = role in {"manager", "admin"}
    queue = client.get("/signals/")
    assert queue.status_code == 200
    assert candidate.title in queue.content.decode()
    assert ('name="ids"' in queue.content.decode()) == triager
    page = client.get(f"/signals/{candidate.pk}/")
    assert page.status_code == 200
    assert ('id="triage-accept"' in page.content.decode()) == triager
    assert client.get("/signals/runs/").status_code == 200
    assert client.get("/signals/feedback/").status_code == 200
    for action, data in (("dismiss", {"reason": "noise"}), ("defer", {"until": "2099-01-01"})):
        response = client.post(f"/signals/{candidate.pk}/{action}/", data)
        assert response.status_code == (302 if triager else 403)
        if triager:
            break  # decided: the others would be refused as already triaged
    assert client.post("/signals/bulk/", {"ids": [candidate.pk], "action": "dismiss"}).status_code == (
        302 if triager else 403
    )


def test_the_queue_filters_and_sorts_by_score(cast):
    raise_one("scripted:low", magnitude=1)
    raise_one("scripted:high", magnitude=9, service_id=cast.email.pk)
    S.submit_candidate(actor=cast.viewer, channel="staff_feedback", title="Feedback about printers")
    client = signed_in(cast.viewer)
    page = client.get("/signals/").content.decode()
    assert page.index("Breaches pile up (9)") < page.index("Breaches pile up (1)")
    only_email = client.get(f"/signals/?service={cast.email.pk}").content.decode()
    assert "Breaches pile up (9)" in only_email and "Breaches pile up (1)" not in only_email
    manual = client.get("/signals/?detector=manual").content.decode()
    assert "Feedback about printers" in manual and "Breaches pile up" not in manual
    by_channel = client.get("/signals/?channel=staff_feedback").content.decode()
    assert "Feedback about printers" in by_channel and "Breaches" not in by_channel
    searched = client.get("/signals/?q=printers").content.decode()
    assert "Feedback about printers" in searched and "Breaches" not in searched


def test_the_queue_shows_new_by_default_and_triaged_on_request(cast):
    done = raise_one("scripted:done")
    S.dismiss_candidate(done, actor=cast.manager, reason="noise")
    raise_one("scripted:open", magnitude=3)
    client = signed_in(cast.viewer)
    assert done.title not in client.get("/signals/").content.decode()
    assert done.title in client.get("/signals/?status=dismissed").content.decode()
    assert done.title in client.get("/signals/?status=all").content.decode()


def test_an_htmx_filter_swaps_only_the_table(cast):
    raise_one()
    response = signed_in(cast.viewer).get("/signals/?status=new", headers={"HX-Request": "true"})
    body = response.content.decode()
    assert "<html" not in body and "Breaches pile up" in body


def test_the_candidate_page_shows_the_evidence_figures_period_and_regrowth(cast):
    inc = incident("INC77")
    candidate = raise_one(incidents=[inc])
    page = signed_in(cast.viewer).get(f"/signals/{candidate.pk}/").content.decode()
    assert f'href="/records/incident/{inc.pk}/"' in page and "INC77" in page
    assert "breaches" in page  # a figure
    assert f"{when(candidate.period_start, 'date')} to {when(candidate.period_end, 'date')}" in page
    assert "Many breaches; a rota change." in page
    assert "comes back only if it grows past <strong>6</strong>" in page
    S.dismiss_candidate(candidate, actor=cast.manager, reason="noise")
    page = signed_in(cast.viewer).get(f"/signals/{candidate.pk}/").content.decode()
    assert "Only if its magnitude grows past <strong>6</strong>" in page


def test_accepting_from_the_page_goes_to_the_new_item(cast):
    candidate = raise_one(incidents=[incident("INC5")])
    client = signed_in(cast.manager)
    response = client.post(
        f"/signals/{candidate.pk}/accept/",
        {
            "title": "Rota for nights",
            "description": "See the breaches",
            "practice": "sla",
            "service": cast.email.pk,
            "impact": 5,
            "effort": 2,
            "expected_version": candidate.version,
        },
    )
    item = Item.objects.get()
    assert response.status_code == 302 and response["Location"] == item.get_absolute_url()
    assert (item.title, item.impact, item.service) == ("Rota for nights", 5, cast.email)


def test_a_triage_form_with_errors_comes_back_with_them(cast):
    candidate = raise_one()
    client = signed_in(cast.manager)
    response = client.post(f"/signals/{candidate.pk}/dismiss/", {"reason": ""})
    assert response.status_code == 400
    assert "This field is required" in response.content.decode()
    htmx = client.post(
        f"/signals/{candidate.pk}/defer/",
        {"until": timezone.localdate().isoformat()},
        headers={"HX-Request": "true"},
    )
    assert htmx.status_code == 200 and "<html" not in htmx.content.decode()
    assert "must be in the future" in htmx.content.decode()
    ok = client.post(
        f"/signals/{candidate.pk}/defer/",
        {"until": (timezone.localdate() + dt.timedelta(days=3)).isoformat()},
        headers={"HX-Request": "true"},
    )
    assert ok.headers["HX-Redirect"] == f"/signals/{candidate.pk}/"


def test_a_stale_form_reports_the_conflict(cast):
    candidate = raise_one()
    client = signed_in(cast.manager)
    old = candidate.version
    S.defer_candidate(candidate, actor=cast.admin, until=timezone.localdate() + dt.timedelta(days=3))
    response = client.post(f"/signals/{candidate.pk}/dismiss/", {"reason": "noise", "expected_version": old})
    assert response.status_code == 400
    assert "changed by someone else" in response.content.decode()


def test_merge_from_the_page_takes_an_item_reference(cast):
    target = IS.create_item(actor=cast.manager, title="Fix the rota", practice="sla")
    candidate = raise_one()
    client = signed_in(cast.manager)
    bad = client.post(f"/signals/{candidate.pk}/merge/", {"item": "CI-99999"})
    assert bad.status_code == 400 and "No register item CI-99999" in bad.content.decode()
    client.post(f"/signals/{candidate.pk}/merge/", {"item": target.ref})
    candidate.refresh_from_db()
    assert (candidate.status, candidate.item) == ("merged", target)


def test_bulk_from_the_queue_is_all_or_nothing(cast):
    a, b = raise_one("scripted:a"), raise_one("scripted:b")
    S.dismiss_candidate(b, actor=cast.admin, reason="noise")
    client = signed_in(cast.manager)
    response = client.post(
        "/signals/bulk/", {"ids": [a.pk, b.pk], "action": "defer", "until": "2099-01-01"}, follow=True
    )
    assert "Nothing was changed" in response.content.decode() and b.ref in response.content.decode()
    a.refresh_from_db()
    assert a.status == "new"
    client.post("/signals/bulk/", {"ids": [a.pk], "action": "defer", "until": "2099-01-01"})
    a.refresh_from_db()
    assert a.status == "deferred"


def test_the_runs_page_lists_runs_and_detectors(cast):
    DetectorRun.objects.create(
        detector="major_incidents",
        window_start=timezone.now() - dt.timedelta(days=90),
        window_end=timezone.now(),
        started_at=timezone.now(),
        status="failed",
        error="Traceback …\nZeroDivisionError: boom",
        raised=0,
    )
    page = signed_in(cast.manager).get("/signals/runs/").content.decode()
    assert "ZeroDivisionError: boom" in page
    assert "Major incidents without a post-incident review" in page
    assert 'value="detector:major_incidents"' in page  # run now, for managers
    assert (
        'value="detector:major_incidents"' not in signed_in(cast.owner).get("/signals/runs/").content.decode()
    )


def test_the_nav_links_the_queue_and_feedback_for_everyone(cast):
    page = signed_in(cast.viewer).get("/register/").content.decode()
    assert 'href="/signals/"' in page and 'href="/signals/feedback/"' in page
