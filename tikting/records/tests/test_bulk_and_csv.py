"""Record lists: CSV of what the filters show (full precision, units in headers), bulk actions."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from typing import Any

import pytest
from django.db import models
from django.test import Client
from django.utils import timezone

from tikting.accounts.models import Team
from tikting.core.audit import history_for
from tikting.records import bulk as B
from tikting.records import registry as R
from tikting.records.export import header, value
from tikting.records.registry import create_record

pytestmark = pytest.mark.django_db


def _csv(response: Any) -> list[dict[str, str]]:
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


def test_the_csv_is_what_the_filters_show_at_full_precision(cast):
    at = dt.datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=dt.UTC)
    create_record(
        "incident",
        actor=None,
        number="INC-1",
        opened_at=at,
        priority=1,
        service=cast.email,
        short_description="=cmd|x",
    )
    create_record("incident", actor=None, number="INC-2", opened_at=at, priority=3)
    create_record("interaction", actor=None, number="IMS-1", opened_at=at, handle_time_seconds=754)
    client = Client()
    client.force_login(cast.viewer)
    response = client.get("/records/incident/export.csv?priority=1")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response.streaming
    rows = _csv(response)
    assert [r["Number"] for r in rows] == ["INC-1"]
    row = rows[0]
    assert row["Opened at (UTC, ISO 8601)"] == "2026-03-01T09:30:15.123456+00:00"
    assert row["Service (key)"] == "E-mail"
    assert row["Short description"] == "'=cmd|x"  # no formula runs in a spreadsheet
    interactions = _csv(client.get("/records/interaction/export.csv"))
    assert interactions[0]["Handle time (seconds)"] == "754"


def test_decimals_keep_every_digit_and_headers_name_units(cast):
    kind = R.KINDS["sla"]
    names = {f.name: header(kind, f) for f in kind.model._meta.concrete_fields}
    assert names["response_minutes"].endswith("(minutes)")
    fulfilled = R.KINDS["request"].model._meta.get_field("fulfilled_at")
    assert isinstance(fulfilled, models.Field)
    assert header(R.KINDS["request"], fulfilled).endswith("(UTC, ISO 8601)")
    create_record("catalog-item", actor=None, name="Laptop", manual_minutes=12)
    client = Client()
    client.force_login(cast.viewer)
    rows = _csv(client.get("/records/catalog-item/export.csv"))
    assert rows[0]["Manual (minutes)"] == "12"
    # No record kind stores decimals today; the writer keeps every digit of one, never an exponent.
    amount = models.DecimalField(name="amount", max_digits=20, decimal_places=6)
    amount.attname = "amount"

    class Row:
        pass

    row = Row()
    for raw, text in (
        (Decimal("1E+2"), "100"),
        (Decimal("0.000001"), "0.000001"),
        (Decimal("12.345600"), "12.345600"),
    ):
        row.amount = raw  # type: ignore[attr-defined]
        assert value(amount, row) == text  # type: ignore[arg-type]
    ratio = models.FloatField(name="ratio")
    ratio.attname = "ratio"
    row.ratio = 0.1 + 0.2  # type: ignore[attr-defined]
    assert value(ratio, row) == "0.30000000000000004"  # type: ignore[arg-type]


def test_a_bad_filter_is_a_clear_400(cast):
    client = Client()
    client.force_login(cast.viewer)
    response = client.get("/records/incident/export.csv?priority=9")
    assert response.status_code == 400 and b"priority" in response.content


def test_bulk_assign_and_status_record_by_record(cast):
    group = Team.objects.create(name="Network team")
    incidents = [
        create_record("incident", actor=None, number=f"INC-B{i}", opened_at=timezone.now()) for i in range(4)
    ]
    ids = [i.pk for i in incidents]
    result = B.run(R.KINDS["incident"], "assignment_group", ids, str(group.pk), actor=cast.contributor)
    assert len(result.done) == 4
    assert all(history_for(i).filter(changes__has_key="assignment_group").count() == 1 for i in incidents)
    refused = B.run(R.KINDS["incident"], "assignment_group", ids, str(group.pk), actor=cast.viewer)
    assert not refused.done and all("may not" in o.reason for o in refused.refused)
    moved = B.run(R.KINDS["incident"], "status", [*ids, 10**9], "in_progress", actor=cast.contributor)
    assert len(moved.done) == 4 and moved.refused[0].ref == f"#{10**9}"


def test_bulk_page_and_export_selected(cast):
    incidents = [
        create_record("incident", actor=None, number=f"INC-P{i}", opened_at=timezone.now()) for i in range(3)
    ]
    ids = [str(i.pk) for i in incidents]
    client = Client()
    client.force_login(cast.contributor)
    page = client.post(
        "/records/incident/bulk/", {"action": "service", "service": str(cast.network.pk), "ids": ids}
    )
    assert page.status_code == 200 and b"3</strong> done" in page.content
    viewer = Client()
    viewer.force_login(cast.viewer)
    assert (
        viewer.post("/records/incident/bulk/", {"action": "service", "service": "", "ids": ids}).status_code
        == 403
    )
    rows = _csv(viewer.post("/records/incident/bulk/", {"action": "export", "ids": ids[:2]}))
    assert [r["Number"] for r in rows] == ["INC-P0", "INC-P1"]
    html = client.get("/records/incident/").content.decode()
    assert 'action="/records/incident/bulk/"' in html and "/records/incident/export.csv" in html
    assert {a["key"] for a in B.offered(R.KINDS["incident"])} == {
        "assignment_group",
        "assigned_to",
        "service",
        "status",
    }
