"""The knowledge detector: unused and overdue articles, gaps, repeat contacts."""

from __future__ import annotations

import datetime as dt
import itertools
import json

import pytest

from tikting.cmdb.models import Service
from tikting.incidents.models import Incident, Interaction
from tikting.knowledge.models import Article
from tikting.signals.detectors import knowledge
from tikting.signals.proposals import Window

pytestmark = pytest.mark.django_db

WINDOW = Window(dt.datetime(2026, 7, 1, tzinfo=dt.UTC), dt.datetime(2026, 10, 1, tzinfo=dt.UTC))
DURING = dt.datetime(2026, 8, 3, 9, 0, tzinfo=dt.UTC)
LONG_AGO = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
_numbers = itertools.count(1)


def article(title, *, created=LONG_AGO, **fields) -> Article:
    n = next(_numbers)
    obj = Article.objects.create(
        number=f"KB{n:05d}", external_key=f"KB{n:05d}", source="test", title=title, **fields
    )
    Article.objects.filter(pk=obj.pk).update(created_at=created)  # auto_now_add: set after
    return obj


def incident(at=DURING, **fields) -> Incident:
    n = next(_numbers)
    return Incident.objects.create(
        number=f"INC{n:05d}", external_key=f"INC{n:05d}", source="test", opened_at=at, **fields
    )


def contact(at=DURING, **fields) -> Interaction:
    n = next(_numbers)
    return Interaction.objects.create(
        number=f"IMS{n:05d}", external_key=f"IMS{n:05d}", source="test", opened_at=at, **fields
    )


def run(**overrides: float):
    return knowledge.detect(
        WINDOW, thresholds={**knowledge.THRESHOLDS, **overrides}, progress=lambda d, t: None
    )


def of_kind(proposals, kind):
    return [p for p in proposals if p.figures["kind"] == kind]


def test_articles_nothing_ever_used_are_grouped_by_service():
    hr = Service.objects.create(name="HR")
    unused = [article(f"HR how-to {i}", service=hr) for i in range(3)]
    article("Used once", service=hr, uses=1)
    named = article("Named by an incident", service=hr)
    incident(knowledge_article=named, at=LONG_AGO)
    article("Too new to judge", service=hr, created=WINDOW.end - dt.timedelta(days=10))
    article("Retired", service=hr, status=Article.Status.RETIRED)

    found = of_kind(run(), "unused")

    assert len(found) == 1
    p = found[0]
    assert {e.pk for e in p.evidence} == {a.pk for a in unused}
    assert (p.figures["unused"], p.figures["published"]) == (3, 6)
    assert p.figures["baseline"] == 50.0 and p.service_id == hr.pk
    assert p.fingerprint == f"knowledge:unused:service={hr.pk}"


def test_articles_past_review_still_in_use():
    stale = article(
        "Connect to the VPN from home", review_due=dt.date(2026, 1, 1), helpful_yes=2, helpful_no=12
    )
    for i in range(3):
        incident(knowledge_article=stale, at=DURING + dt.timedelta(hours=i))
    for i in range(4):
        contact(knowledge_article=stale, first_contact_resolution=i == 0, at=DURING + dt.timedelta(hours=i))
    # Noise: overdue but barely used in the window; used a lot but reviewed in time.
    quiet = article("Quiet", review_due=dt.date(2026, 1, 1))
    incident(knowledge_article=quiet)
    incident(knowledge_article=quiet, at=LONG_AGO)
    fresh = article("Fresh", review_due=dt.date(2027, 1, 1))
    for _ in range(10):
        incident(knowledge_article=fresh)

    found = of_kind(run(), "overdue")

    assert [p.figures["article"] for p in found] == [stale.number]
    p = found[0]
    assert (p.figures["uses"], p.figures["used_by_incidents"], p.figures["used_by_contacts"]) == (7, 3, 4)
    assert p.figures["days_overdue"] == 272  # 1 January to 30 September
    assert p.figures["contacts_unresolved_at_first"] == 3
    assert p.score == pytest.approx(7 * 272 / 365)
    assert [e.role for e in p.evidence].count("used") == 7
    assert "helpful 2 times of 14" in p.explanation


def test_a_service_and_category_no_article_serves_is_a_gap():
    erp = Service.objects.create(name="ERP")
    kb = article("ERP reports", service=erp)
    for i in range(25):
        incident(service=erp, category="batch", at=DURING + dt.timedelta(hours=i))
    served = [incident(service=erp, category="reports", at=DURING + dt.timedelta(hours=i)) for i in range(25)]
    for inc in served[:5]:  # an article on one contact of the incident counts
        contact(incident=inc, knowledge_article=kb)
    for inc in served[5:10]:
        inc.knowledge_article = kb
        inc.save()
    for i in range(5):  # too few to judge
        incident(service=erp, category="print", at=DURING + dt.timedelta(hours=i))

    found = of_kind(run(), "gap")

    assert [(p.figures["category"], p.figures["incidents"]) for p in found] == [("batch", 25)]
    assert found[0].figures["baseline"] == 0.0 and found[0].figures["lower_is_better"] is False
    assert len(found[0].evidence) == 25


def test_repeat_contacts_an_article_does_not_prevent():
    vpn = Service.objects.create(name="VPN")
    stale = article("Connect to the VPN from home", service=vpn)
    for i in range(12):  # each incident: a first contact and one coming back
        inc = incident(service=vpn, category="network")
        contact(incident=inc, knowledge_article=stale, at=DURING + dt.timedelta(days=i))
        contact(incident=inc, knowledge_article=stale, at=DURING + dt.timedelta(days=i, hours=20))
    for i in range(60):  # the rest: one contact per incident
        contact(incident=incident(service=vpn, category="access"), at=DURING + dt.timedelta(hours=i))
    outage = incident(service=vpn, category="outage")  # thirty people calling about one outage
    for i in range(30):
        contact(incident=outage, at=DURING + dt.timedelta(minutes=i))

    found = of_kind(run(), "repeat")

    assert [p.figures["article"] for p in found] == [stale.number]
    p = found[0]
    assert (p.figures["repeats"], p.figures["contacts"]) == (12, 24)
    assert p.figures["rest_contacts"] == 60  # the outage's contacts are left out
    assert p.evidence[0].kind == "article" and [e.role for e in p.evidence[1:]] == ["repeat"] * 12
    assert p.figures["baseline"] == 50.0
    json.dumps(p.figures)


def test_repeat_contacts_without_an_article_are_grouped_by_service_and_category():
    hr = Service.objects.create(name="HR")
    for i in range(10):
        inc = incident(service=hr, category="payroll")
        for hours in (0, 24, 48):
            contact(incident=inc, at=DURING + dt.timedelta(days=i, hours=hours))
    for i in range(60):
        contact(incident=incident(service=hr, category="leave"), at=DURING + dt.timedelta(hours=i))

    found = of_kind(run(), "repeat")

    assert [(p.figures["category"], p.figures["repeats"]) for p in found] == [("payroll", 20)]
    assert "an article (the status, a workaround, what happens next) could answer" in found[0].explanation
