"""Triage in Chromium: a manager finds a detector's candidate in the intake queue, reads why it was
raised, and accepts it into the register (htmx form); the item carries its links and its baseline.
A failing form comes back with its error in place."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from tikting.improvement.models import Item
from tikting.incidents.models import Incident
from tikting.signals import services as S
from tikting.signals.models import Candidate
from tikting.signals.proposals import Evidence, Proposal

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def raise_candidate(cast) -> Candidate:
    now = timezone.now()
    incidents = [
        Incident.objects.create(
            number=f"INC90{n}",
            priority=1,
            service=cast.email,
            status="resolved",
            opened_at=now - dt.timedelta(days=20 + n),
            resolved_at=now - dt.timedelta(days=19 + n),
        )
        for n in range(3)
    ]
    proposal = Proposal(
        detector="major_incidents",
        fingerprint=f"major_incidents:service={cast.email.pk}",
        title="Post-incident reviews missing for 3 major incident(s) on E-mail",
        explanation="3 of 3 major incident(s) on E-mail have no review: INC900, INC901, INC902.",
        score=3.0,
        magnitude=3.0,
        period_start=timezone.localdate() - dt.timedelta(days=90),
        period_end=timezone.localdate(),
        evidence=[Evidence("incident", i.pk, i.number, "no_review") for i in incidents],
        figures={
            "baseline": 100.0,
            "unit": "%",
            "lower_is_better": True,
            "indicator": "Unreviewed majors (%)",
        },
        practice="incident",
        service_id=cast.email.pk,
        impact=4,
        effort=2,
        rating_reason="Critical incidents nobody reviewed.",
    )
    S.ingest([proposal], detector="major_incidents", channel="post_incident_review")
    return Candidate.objects.get()


def test_accept_a_candidate_into_the_register(page: Page, live_server, sign_in, cast, password):
    candidate = raise_candidate(cast)
    sign_in(cast.manager, password)
    page.locator("nav.tk-navbar").get_by_role("link", name="Intake").click()
    expect(page.get_by_role("heading", name="Intake queue")).to_be_visible()
    page.get_by_role("link", name=candidate.title).click()

    expect(page.locator("#explanation")).to_contain_text("INC900, INC901, INC902")
    expect(page.locator("#regrowth-rule")).to_contain_text("grows past 4.5")
    expect(page.get_by_role("link", name="INC901")).to_be_visible()

    # A defer date in the past: the form comes back with the error, in place (htmx).
    page.get_by_role("button", name="Defer").click()
    form = page.locator("#triage-defer")
    form.get_by_label("Back in the queue on").fill(timezone.localdate().isoformat())
    form.get_by_role("button", name="Defer").click()
    expect(page.locator("#triage-defer")).to_contain_text("must be in the future")
    expect(page.locator("#candidate-status")).to_have_text("New: to triage")

    # Accept, with a sharper title than the detector's.
    page.get_by_role("button", name="Accept into the register").first.click()
    accept = page.locator("#triage-accept")
    accept.get_by_label("Title").fill("Review every major incident on E-mail")
    # Accepting writes the item, its links and indicator and tells the people concerned (the
    # notifications): about 0.1 s alone, but on a machine running another test process beside this
    # one (its databases being created and migrated, commits waiting for the disk) it has taken
    # longer than the 10 s a wait lasts by default, for the answer and for the page after it.
    accepted = lambda r: "/accept/" in r.url and r.request.method == "POST"  # noqa: E731
    with page.expect_response(accepted, timeout=30_000) as posted:
        accept.get_by_role("button", name="Accept into the register").click()
    assert posted.value.status == 200, (posted.value.status, posted.value.text()[:500])
    assert posted.value.headers.get("hx-redirect", "").startswith("/register/"), posted.value.text()[:500]
    expect(page).to_have_url(re.compile(r"/register/\d+/$"), timeout=30_000)
    expect(page.get_by_role("alert").filter(has_text="is in the register")).to_be_visible()
    item = Item.objects.get()
    assert item.title == "Review every major incident on E-mail"
    assert item.source_channel == "post_incident_review"
    assert [link.label.split()[0] for link in item.source_links.order_by("id")] == [
        "INC900",
        "INC901",
        "INC902",
    ]
    assert item.indicators.get().baseline_value == 100
    candidate.refresh_from_db()
    assert (candidate.status, candidate.item) == ("accepted", item)
    expect(page.get_by_text("INC900").first).to_be_visible()
