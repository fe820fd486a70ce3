"""ITSM records take long texts within the cap the register has (core.bounds.LONG_TEXT_LIMIT): the
same refusal, naming the field, in the record pages, the API and `tikting import <kind>`."""

import io
import json

import pytest

from tikting.core.bounds import LONG_TEXT_LIMIT
from tikting.imports.records import import_records
from tikting.improvement.tests.test_api import Api
from tikting.incidents.models import Incident
from tikting.records.forms import record_form_class
from tikting.records.registry import get_kind
from tikting.test import form_data

pytestmark = pytest.mark.django_db

TOO_LONG = "x" * (LONG_TEXT_LIMIT + 1)
MESSAGE = f"Ensure this value has at most {LONG_TEXT_LIMIT} characters (it has {LONG_TEXT_LIMIT + 1})."


def test_the_api_refuses_a_description_over_the_cap(cast):
    api = Api(cast.contributor)
    body = {"number": "INC-LONG", "opened_at": "2026-11-20T10:00:00Z", "description": TOO_LONG}
    response = api.post("/records/incident", body)
    assert response.status_code == 422
    assert {"field": "description", "message": MESSAGE} in response.json()["detail"]
    assert not Incident.objects.exists()
    created = api.post("/records/incident", {**body, "description": "x" * LONG_TEXT_LIMIT})
    assert created.status_code == 201


def test_the_page_refuses_it_on_the_field(cast, client):
    client.force_login(cast.contributor)
    data = form_data(record_form_class(get_kind("incident"))())
    data.update(number="INC-LONG", opened_at="2026-11-20T10:00", description=TOO_LONG)
    response = client.post("/records/incident/new/", data)
    assert response.status_code in {400, 422}
    assert MESSAGE in response.content.decode()
    assert not Incident.objects.exists()


def test_the_import_fails_the_row_naming_the_field(cast):
    rows = [{"number": "INC-LONG", "opened_at": "2026-11-20T10:00:00Z", "description": TOO_LONG}]
    report = import_records("incident", io.StringIO(json.dumps(rows)), fmt="json")
    assert [(e.field, e.message) for e in report.errors] == [("description", MESSAGE)]
    assert not Incident.objects.exists()
