"""Who may do what on the intake queue and the jobs pages, in the UI and the API: one table, played
for every role. An allowed call succeeds and leaves its trace; a refused one is answered 403 (401 /
a sign-in redirect for anonymous callers) and changes nothing.

(The project-wide role table, tests/integration/test_permissions_matrix.py, walks every route for
anonymous callers and viewers; this table adds the answer of each role for these apps.)
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from tikting.accounts.models import ApiToken
from tikting.audits.models import AuditFinding
from tikting.improvement import services as IS
from tikting.incidents.models import Incident
from tikting.jobs import services as JS
from tikting.signals import services as SS
from tikting.signals.models import Candidate
from tikting.signals.tests.fixtures import NAME, proposal

pytestmark = pytest.mark.django_db

ROLES = ("viewer", "contributor", "owner", "manager", "admin", "anonymous")
SIGNED_IN = frozenset(ROLES) - {"anonymous"}
CONTRIBUTORS = SIGNED_IN - {"viewer"}
MANAGERS = frozenset({"manager", "admin"})


@dataclass
class World:
    candidate: Candidate
    incident: Incident
    finding: AuditFinding
    item_ref: str
    failed_job: DBTaskResult

    def ids(self) -> dict[str, Any]:
        return {
            "c": self.candidate.pk,
            "inc": self.incident.pk,
            "aud": self.finding.pk,
            "job": self.failed_job.pk,
            "item": self.item_ref,
        }


@pytest.fixture
def world(cast, settings) -> World:
    settings.TIKTING_SCHEDULE = {"intake": {"task": "tikting.signals.tasks.housekeeping", "every": 3600}}
    SS.ingest([proposal()], detector=NAME, channel="sla_breach")
    JS.enqueue("tikting.signals.tasks.run_detectors", kwargs={"detectors": ["nope"]}, origin="manual")
    call_command("worker", "--once", "--no-schedule", stdout=io.StringIO())
    return World(
        candidate=Candidate.objects.get(),
        incident=Incident.objects.create(number="INC-P", opened_at=timezone.now()),
        finding=AuditFinding.objects.create(number="AUD-P", title="No owner", found_at=timezone.localdate()),
        item_ref=IS.create_item(actor=cast.manager, title="Target", practice="sla").ref,
        failed_job=DBTaskResult.objects.get(status="FAILED"),
    )


@dataclass(frozen=True)
class Row:
    what: str
    method: str
    path: str  # formatted with World.ids()
    allowed: frozenset[str]
    ok: int
    body: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    @property
    def is_api(self) -> bool:
        return self.path.startswith("/api/")


def _none(ids: dict[str, Any]) -> dict[str, Any]:
    return {}


TABLE: tuple[Row, ...] = (
    Row("Read the queue", "GET", "/signals/", SIGNED_IN, 200),
    Row("Read a candidate", "GET", "/signals/{c}/", SIGNED_IN, 200),
    Row("Read the detector runs", "GET", "/signals/runs/", SIGNED_IN, 200),
    Row("Open the feedback form", "GET", "/signals/feedback/", SIGNED_IN, 200),
    Row("Give feedback", "POST", "/signals/feedback/", SIGNED_IN, 302, lambda i: {"title": "Printers jam"}),
    Row(
        "Open a PIR finding form",
        "GET",
        "/signals/findings/post-incident-review/?record=incident:{inc}",
        CONTRIBUTORS,
        200,
    ),
    Row(
        "Submit a PIR finding",
        "POST",
        "/signals/findings/post-incident-review/?record=incident:{inc}",
        CONTRIBUTORS,
        302,
        lambda i: {"title": "No paging"},
    ),
    Row(
        "Submit an audit finding",
        "POST",
        "/signals/findings/audit/?record=audit-finding:{aud}",
        CONTRIBUTORS,
        302,
        lambda i: {"title": "Owners missing"},
    ),
    Row(
        "Accept a candidate",
        "POST",
        "/signals/{c}/accept/",
        MANAGERS,
        302,
        lambda i: {"title": "Accepted", "practice": "sla", "impact": 3, "effort": 3},
    ),
    Row("Merge a candidate", "POST", "/signals/{c}/merge/", MANAGERS, 302, lambda i: {"item": i["item"]}),
    Row("Defer a candidate", "POST", "/signals/{c}/defer/", MANAGERS, 302, lambda i: {"until": "2099-01-01"}),
    Row("Dismiss a candidate", "POST", "/signals/{c}/dismiss/", MANAGERS, 302, lambda i: {"reason": "noise"}),
    Row(
        "Bulk triage",
        "POST",
        "/signals/bulk/",
        MANAGERS,
        302,
        lambda i: {"ids": [i["c"]], "action": "dismiss", "reason": "noise"},
    ),
    Row("Read the jobs page", "GET", "/jobs/", MANAGERS, 200),
    Row("Read a job", "GET", "/jobs/{job}/", MANAGERS, 200),
    Row(
        "Run a schedule entry now", "POST", "/jobs/run/", MANAGERS, 302, lambda i: {"name": "schedule:intake"}
    ),
    Row("Retry a failed job", "POST", "/jobs/{job}/retry/", MANAGERS, 302, _none),
    Row("API: list candidates", "GET", "/api/signals/candidates", SIGNED_IN, 200),
    Row("API: a candidate", "GET", "/api/signals/candidates/{c}", SIGNED_IN, 200),
    Row("API: detectors", "GET", "/api/signals/detectors", SIGNED_IN, 200),
    Row("API: detector runs", "GET", "/api/signals/runs", SIGNED_IN, 200),
    Row(
        "API: triage",
        "POST",
        "/api/signals/candidates/{c}/triage",
        MANAGERS,
        200,
        lambda i: {"action": "dismiss", "reason": "noise"},
    ),
    Row(
        "API: bulk triage",
        "POST",
        "/api/signals/candidates/triage",
        MANAGERS,
        200,
        lambda i: {"ids": [i["c"]], "action": "defer", "until": "2099-01-01"},
    ),
    Row(
        "API: a PIR finding",
        "POST",
        "/api/signals/findings",
        CONTRIBUTORS,
        201,
        lambda i: {
            "channel": "post_incident_review",
            "title": "x",
            "record_kind": "incident",
            "record_id": i["inc"],
        },
    ),
    Row(
        "API: run detectors now", "POST", "/api/signals/runs", MANAGERS, 202, lambda i: {"detectors": [NAME]}
    ),
    Row("API: give feedback", "POST", "/api/feedback", SIGNED_IN, 201, lambda i: {"title": "Slow VPN"}),
    Row("API: list jobs", "GET", "/api/jobs", MANAGERS, 200),
    Row("API: the schedule", "GET", "/api/jobs/schedule", MANAGERS, 200),
    Row("API: runnable actions", "GET", "/api/jobs/actions", MANAGERS, 200),
    Row("API: a job", "GET", "/api/jobs/{job}", MANAGERS, 200),
    Row(
        "API: run now", "POST", "/api/jobs/run", MANAGERS, 202, lambda i: {"name": "detector:major_incidents"}
    ),
    Row("API: retry a job", "POST", "/api/jobs/{job}/retry", MANAGERS, 202, _none),
)


def _state() -> tuple:
    return (
        list(Candidate.objects.order_by("pk").values_list("pk", "status", "version")),
        DBTaskResult.objects.count(),
    )


@pytest.fixture(autouse=True)
def scripted_detector(settings):
    settings.TIKTING_SIGNALS_DETECTORS = [
        "tikting.signals.detectors.major_incidents",
        "tikting.signals.tests.fixtures",
    ]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("row", TABLE, ids=[row.what for row in TABLE])
def test_the_table(row: Row, role: str, world: World, cast):
    ids = world.ids()
    path = row.path.format(**ids)
    user = getattr(cast, role, None)
    client, headers = Client(), {}
    if user is not None and row.is_api:
        headers = {"Authorization": f"Bearer {ApiToken.issue(user, 'table')[1]}"}
    elif user is not None:
        client.force_login(user)
    body = row.body(ids) if row.body else None
    before = _state()
    if row.method == "GET":
        response = client.get(path, headers=headers)
    elif row.is_api:
        response = client.post(path, body or {}, content_type="application/json", headers=headers)
    else:
        response = client.post(path, body or {}, headers=headers)
    status = response.status_code
    where = f"{role} {row.method} {path} → {status}"
    if role in row.allowed:
        assert status == row.ok, where
        if row.method == "POST" and not row.is_api:
            assert "/login/" not in response["Location"], where
        if row.method == "POST":
            assert _state() != before, f"{where}: allowed, but nothing changed"
    else:
        if role == "anonymous":
            assert status == (401 if row.is_api else 302), where
            if not row.is_api:
                assert response["Location"].startswith("/login/"), where
        else:
            assert status == 403, where
        assert _state() == before, f"{where}: refused, yet something changed"
