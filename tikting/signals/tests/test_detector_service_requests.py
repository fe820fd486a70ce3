"""The service request detector: automation and self-service candidates, ranked, with hours a year."""

from __future__ import annotations

import datetime as dt
import itertools
import json

import pytest

from tikting.cmdb.models import Service
from tikting.incidents.models import Interaction
from tikting.knowledge.models import Article
from tikting.service_requests.models import CatalogItem, ServiceRequest
from tikting.signals.detectors import service_requests
from tikting.signals.proposals import Window

pytestmark = pytest.mark.django_db

# 13 weeks, Monday 5 January to Sunday 5 April 2026 (91 days).
WINDOW = Window(dt.datetime(2026, 1, 5, tzinfo=dt.UTC), dt.datetime(2026, 4, 6, tzinfo=dt.UTC))
_numbers = itertools.count(1)


def requests(item, count, *, every_days=1.0, channel="portal", manual=3, automated=0, **fields):
    for i in range(count):
        n = next(_numbers)
        ServiceRequest.objects.create(
            number=f"REQ{n:05d}",
            external_key=f"REQ{n:05d}",
            source="test",
            catalog_item=item,
            opened_at=WINDOW.start + dt.timedelta(days=i * every_days, hours=9),
            channel=channel,
            manual_steps=manual,
            automated_steps=automated,
            **fields,
        )


def contacts(count, *, article=None, fcr=True, seconds=600, every_days=1.0, **fields):
    for i in range(count):
        n = next(_numbers)
        Interaction.objects.create(
            number=f"IMS{n:05d}",
            external_key=f"IMS{n:05d}",
            source="test",
            opened_at=WINDOW.start + dt.timedelta(days=i * every_days, hours=10),
            handle_time_seconds=seconds,
            first_contact_resolution=fcr if isinstance(fcr, bool) else fcr(i),
            knowledge_article=article,
            **fields,
        )


def run(**overrides: float):
    return service_requests.detect(
        WINDOW, thresholds={**service_requests.THRESHOLDS, **overrides}, progress=lambda d, t: None
    )


def of_kind(proposals, kind):
    return [p for p in proposals if p.figures["kind"] == kind]


def test_a_frequent_manual_catalogue_item_is_an_automation_candidate():
    vpn = Service.objects.create(name="VPN")
    access = CatalogItem.objects.create(name="VPN access", service=vpn, manual_minutes=30)
    requests(access, 91, channel="phone", manual=6, automated=2)  # every day of the window
    # Noise: an automated item, a rare one, a quick one.
    reset = CatalogItem.objects.create(name="Password reset", automated=True, manual_minutes=5)
    requests(reset, 91)
    laptop = CatalogItem.objects.create(name="Laptop", manual_minutes=120)
    requests(laptop, 5, every_days=14)
    lists = CatalogItem.objects.create(name="Distribution list", manual_minutes=2)
    requests(lists, 20, every_days=4, manual=1)

    found = of_kind(run(), "catalogue_item")

    assert [p.figures["catalog_item"] for p in found] == ["VPN access"]
    p = found[0]
    year = 91 * 365 / 91
    assert p.figures["hours_a_year"] == pytest.approx(year * 30 * 0.75 / 60)  # 6 of 8 steps by hand
    assert p.figures["repetitiveness"] == 1.0 and p.figures["weeks_with_requests"] == 13
    assert p.figures["suggests"] == ["automation", "self-service"]  # by phone: a portal form would do
    assert p.magnitude == pytest.approx(p.figures["hours_a_year"])
    assert p.score == pytest.approx(p.figures["hours_a_year"])
    assert p.evidence[0].kind == "catalog-item" and p.evidence[0].key == "VPN access"
    assert len([e for e in p.evidence if e.kind == "request"]) == 91
    assert p.service_id == vpn.pk and p.practice == "request"
    assert p.figures["unit"] == "h/month" and p.figures["lower_is_better"] is True
    assert "about 137 hours a year" in p.explanation
    json.dumps(p.figures)


def test_the_ranking_is_volume_times_handling_time_times_repetitiveness():
    steady = CatalogItem.objects.create(name="Steady", manual_minutes=20)
    requests(steady, 91)
    bursty = CatalogItem.objects.create(name="Bursty", manual_minutes=60)  # same hours, in four weeks only
    requests(bursty, 30, every_days=0.9)
    estimated = CatalogItem.objects.create(name="No minutes")  # 4 manual steps × 10 minutes
    requests(estimated, 91, manual=4)

    found = of_kind(run(), "catalogue_item")

    assert [p.figures["catalog_item"] for p in found] == ["No minutes", "Steady", "Bursty"]
    assert found[0].figures["handling_estimated"] is True and found[0].figures["handling_minutes"] == 40.0
    assert "estimated: 10 minutes × 4.0 manual steps" in found[0].explanation
    assert found[2].figures["repetitiveness"] == pytest.approx(4 / 13)


def test_first_contact_answers_with_one_article_are_a_self_service_candidate():
    kb = Article.objects.create(number="KB1", title="Connect to the VPN", source="test", external_key="KB1")
    contacts(91, article=kb, fcr=lambda i: i % 10 != 0, seconds=720)
    # Noise: an article used rarely, contacts never resolved at the first call.
    other = Article.objects.create(number="KB2", title="Rare", source="test", external_key="KB2")
    contacts(10, article=other)
    contacts(60, article=None, fcr=False, category="incident")

    found = of_kind(run(), "contacts")

    assert [p.figures["article"] for p in found] == ["KB1"]
    p = found[0]
    fcr = 81 / 91
    assert p.figures["fcr_share"] == pytest.approx(fcr)
    assert p.figures["hours_a_year"] == pytest.approx(91 * 365 / 91 * fcr * 0.2 * 0.5)
    assert p.evidence[0].kind == "article" and p.evidence[0].key == "KB1"
    assert p.figures["unit"] == "contacts/month" and p.practice == "service_desk"


def test_contacts_without_an_article_are_grouped_by_service_and_category():
    desk = Service.objects.create(name="Service desk")
    contacts(91, service=desk, category="how-to", seconds=900)

    found = of_kind(run(), "contacts")

    assert found[0].figures["category"] == "how-to" and found[0].service_id == desk.pk
    assert found[0].fingerprint == f"service_requests:contacts:service={desk.pk}:category=how-to"


def test_only_the_best_contact_groups_are_proposed():
    for i in range(4):
        kb = Article.objects.create(number=f"KB{i}", source="test", external_key=f"KB{i}")
        contacts(91, article=kb, seconds=600 + 60 * i)

    found = of_kind(run(max_contact_proposals=2), "contacts")

    assert [p.figures["article"] for p in found] == ["KB3", "KB2"]
