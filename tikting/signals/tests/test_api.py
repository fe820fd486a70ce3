"""/api/signals/: the queue, a candidate, triage (one and bulk), detectors and runs; documented."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.test import Client
from django_tasks_db.models import DBTaskResult

from tikting.accounts.models import ApiToken
from tikting.improvement import services as IS
from tikting.signals import services as S
from tikting.signals.models import Candidate
from tikting.signals.tests.fixtures import NAME, incident, proposal

pytestmark = pytest.mark.django_db
JSON = "application/json"


def api(user) -> Client:
    _, raw = ApiToken.issue(user, "script")
    return Client(headers={"Authorization": f"Bearer {raw}"})


def raise_one(fingerprint: str = "scripted:1", **extra) -> Candidate:
    S.ingest([proposal(fingerprint, **extra)], detector=NAME, channel="sla_breach")
    return Candidate.objects.get(fingerprint=fingerprint)


def test_the_list_filters_like_the_page_and_carries_source_keys(cast):
    raise_one("scripted:a", magnitude=2, incidents=[incident("INC1"), incident("INC2")])
    raise_one("scripted:b", magnitude=8, service_id=cast.email.pk)
    body = api(cast.viewer).get("/api/signals/candidates").json()
    assert body["count"] == 2
    assert [c["magnitude"] for c in body["items"]] == [8, 2]  # by score
    first = body["items"][1]
    assert (first["detector"], first["source_keys"], first["evidence_count"]) == (NAME, ["INC1", "INC2"], 2)
    assert first["explanation"] and first["score"] == 3.0
    only = api(cast.viewer).get(f"/api/signals/candidates?service={cast.email.pk}&limit=1").json()
    assert only["count"] == 1 and only["items"][0]["service"]["name"] == "E-mail"
    bad = api(cast.viewer).get("/api/signals/candidates?status=bogus")
    assert bad.status_code == 422


def test_the_detail_lists_every_evidence_record(cast):
    inc = incident("INC3")
    candidate = raise_one(incidents=[inc])
    body = api(cast.viewer).get(f"/api/signals/candidates/{candidate.pk}").json()
    assert body["evidence"] == [{"kind": "incident", "id": inc.pk, "key": "INC3", "role": "breach"}]
    assert body["comes_back_above"] is None  # open: nothing suppressed yet
    assert api(cast.viewer).get("/api/signals/candidates/999999").status_code == 404


def test_triage_accept_returns_the_item(cast):
    candidate = raise_one(incidents=[incident("INC4")])
    response = api(cast.manager).post(
        f"/api/signals/candidates/{candidate.pk}/triage",
        {"action": "accept", "title": "Night rota", "expected_version": candidate.version},
        content_type=JSON,
    )
    assert response.status_code == 200
    body = response.json()
    assert body["item"]["title"] == "Night rota"
    assert body["candidate"]["status"] == "accepted" and body["candidate"]["item"]["id"] == body["item"]["id"]


def test_triage_errors_name_the_field_and_conflicts_answer_409(cast):
    candidate = raise_one()
    manager = api(cast.manager)
    url = f"/api/signals/candidates/{candidate.pk}/triage"
    missing = manager.post(url, {"action": "dismiss"}, content_type=JSON)
    assert missing.status_code == 422 and missing.json()["detail"][0]["field"] == "reason"
    merge = manager.post(url, {"action": "merge"}, content_type=JSON)
    assert merge.status_code == 422 and merge.json()["detail"][0]["field"] == "item_id"
    stale = manager.post(url, {"action": "dismiss", "reason": "x", "expected_version": 99}, content_type=JSON)
    assert stale.status_code == 409
    unknown = manager.post(url, {"action": "dismiss", "reason": "x", "colour": "red"}, content_type=JSON)
    assert unknown.status_code == 422


def test_triage_merge_and_defer(cast):
    target = IS.create_item(actor=cast.manager, title="Rota", practice="sla")
    a, b = raise_one("scripted:a"), raise_one("scripted:b")
    manager = api(cast.manager)
    merged = manager.post(
        f"/api/signals/candidates/{a.pk}/triage", {"action": "merge", "item_id": target.pk}, content_type=JSON
    )
    assert merged.json()["item"]["id"] == target.pk
    deferred = manager.post(
        f"/api/signals/candidates/{b.pk}/triage",
        {"action": "defer", "until": "2099-01-01"},
        content_type=JSON,
    )
    assert deferred.json()["candidate"]["deferred_until"] == "2099-01-01"


def test_bulk_triage_reports_each_failure_and_changes_nothing(cast):
    a, b = raise_one("scripted:a"), raise_one("scripted:b")
    S.dismiss_candidate(b, actor=cast.admin, reason="noise")
    manager = api(cast.manager)
    failed = manager.post(
        "/api/signals/candidates/triage",
        {"ids": [a.pk, b.pk], "action": "dismiss", "reason": "x"},
        content_type=JSON,
    ).json()
    assert failed["done"] == [] and [e["ref"] for e in failed["errors"]] == [b.ref]
    done = manager.post(
        "/api/signals/candidates/triage",
        {"ids": [a.pk], "action": "dismiss", "reason": "x"},
        content_type=JSON,
    ).json()
    assert [c["status"] for c in done["done"]] == ["dismissed"] and done["errors"] == []


@pytest.mark.parametrize("role", ["viewer", "contributor", "owner"])
def test_only_managers_triage_or_run_detectors_over_the_api(cast, role):
    candidate = raise_one()
    client = api(getattr(cast, role))
    url = f"/api/signals/candidates/{candidate.pk}/triage"
    assert client.post(url, {"action": "dismiss", "reason": "x"}, content_type=JSON).status_code == 403
    assert (
        client.post(
            "/api/signals/candidates/triage", {"ids": [candidate.pk], "action": "accept"}, content_type=JSON
        ).status_code
        == 403
    )
    assert client.post("/api/signals/runs", {}, content_type=JSON).status_code == 403
    assert client.get("/api/signals/runs").status_code == 200
    assert client.get("/api/signals/detectors").status_code == 200


def test_run_now_queues_a_job_and_the_runs_list_it_once_done(cast):
    manager = api(cast.manager)
    response = manager.post("/api/signals/runs", {"detectors": ["major_incidents"]}, content_type=JSON)
    assert response.status_code == 202
    job = DBTaskResult.objects.get(pk=response.json()["job_id"])
    assert job.task_path == "tikting.signals.tasks.run_detectors"
    assert job.args_kwargs["kwargs"] == {"detectors": ["major_incidents"]}
    unknown = manager.post("/api/signals/runs", {"detectors": ["nope"]}, content_type=JSON)
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["field"] == "detector"
    call_command("worker", "--once", "--no-schedule", stdout=io.StringIO())
    runs = manager.get("/api/signals/runs").json()
    assert runs["count"] == 1 and runs["items"][0]["detector"] == "major_incidents"
    assert runs["items"][0]["trigger"] == "task"


def test_the_openapi_schema_documents_the_responses(client):
    schema = client.get("/api/openapi.json").json()
    triage = schema["paths"]["/api/signals/candidates/{candidate_id}/triage"]["post"]["responses"]
    assert {"200", "401", "403", "404", "409", "422"} <= set(triage)
    assert {"201", "401", "403", "422"} <= set(schema["paths"]["/api/feedback"]["post"]["responses"])
    assert "202" in schema["paths"]["/api/signals/runs"]["post"]["responses"]
    assert "/api/jobs/{job_id}/retry" in schema["paths"]

    def properties(operation: dict, status: str | None = None) -> set[str]:
        part = operation["responses"][status] if status else operation["requestBody"]
        ref = part["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
        return set(schema["components"]["schemas"][ref]["properties"])

    # Each operation documents its own shapes (two routers' schemas of one name would share one).
    assert properties(schema["paths"]["/api/signals/runs"]["post"], "202") == {"job_id", "status"}
    assert properties(schema["paths"]["/api/signals/runs"]["post"]) == {"detectors", "start", "end"}
    assert properties(schema["paths"]["/api/jobs/run"]["post"]) == {"name"}
    assert "task_path" in properties(schema["paths"]["/api/jobs/run"]["post"], "202")
