"""Manual channels: post-incident review findings, audit findings, staff feedback (anonymous to peers)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone

from tikting.accounts.models import ApiToken
from tikting.audits.models import AuditFinding
from tikting.core.exceptions import PermissionDeniedError
from tikting.problems.models import Problem
from tikting.signals import services as S
from tikting.signals.models import Candidate
from tikting.signals.tests.fixtures import incident

pytestmark = pytest.mark.django_db


def api(user) -> Client:
    _, raw = ApiToken.issue(user, "script")
    return Client(headers={"Authorization": f"Bearer {raw}"})


def test_staff_feedback_from_any_signed_in_user_lands_in_the_queue(cast):
    client = Client()
    client.force_login(cast.viewer)
    response = client.post(
        "/signals/feedback/", {"title": "Password resets take two days", "description": "…"}
    )
    candidate = Candidate.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/signals/{candidate.pk}/"
    assert (candidate.channel, candidate.detector, candidate.status) == ("staff_feedback", "", "new")
    assert candidate.reporter == cast.viewer and not candidate.anonymous


def test_feedback_from_a_record_page_carries_the_record(cast):
    inc = incident("INC42", service=cast.email, short_description="Mail down")
    client = Client()
    client.force_login(cast.contributor)
    record_page = client.get(f"/records/incident/{inc.pk}/").content.decode()
    assert f"/signals/feedback/?record=incident:{inc.pk}" in record_page
    assert f"/signals/findings/post-incident-review/?record=incident:{inc.pk}" in record_page
    form = client.get(f"/signals/feedback/?record=incident:{inc.pk}").content.decode()
    assert "INC42" in form
    client.post(
        "/signals/feedback/", {"title": "The mail runbook is outdated", "record": f"incident:{inc.pk}"}
    )
    candidate = Candidate.objects.get()
    assert candidate.service == cast.email  # from the record
    assert [(e.kind, e.key, e.role) for e in candidate.evidence.all()] == [
        ("incident", "INC42", "reported_from")
    ]


def test_a_viewer_sees_no_finding_link_on_a_record_page(cast):
    inc = incident("INC43")
    client = Client()
    client.force_login(cast.viewer)
    page = client.get(f"/records/incident/{inc.pk}/").content.decode()
    assert "post-incident-review" not in page
    assert f"/signals/feedback/?record=incident:{inc.pk}" in page


def test_anonymous_feedback_hides_the_reporter_from_peers_only(cast):
    client = Client()
    client.force_login(cast.contributor)
    client.post("/signals/feedback/", {"title": "Night shift is understaffed", "anonymous": "on"})
    candidate = Candidate.objects.get()
    assert candidate.anonymous and candidate.reporter == cast.contributor
    name = "Carl Contributor"
    for peer in (cast.viewer, cast.owner):
        page = _page(peer, candidate)
        assert name not in page and "carl" not in page
        assert "anonymous" in page
        assert api(peer).get(f"/api/signals/candidates/{candidate.pk}").json()["reporter"] is None
        listed = api(peer).get("/api/signals/candidates").json()["items"][0]
        assert listed["reporter"] is None
    for trusted in (cast.manager, cast.admin, cast.contributor):  # managers, admins, the reporter
        assert name in _page(trusted, candidate)
    assert (
        api(cast.manager).get(f"/api/signals/candidates/{candidate.pk}").json()["reporter"]["username"]
        == "carl"
    )


def test_signed_feedback_shows_the_reporter_to_everyone(cast):
    S.submit_candidate(actor=cast.contributor, channel="staff_feedback", title="Slow VPN")
    assert "Carl Contributor" in _page(cast.viewer, Candidate.objects.get())


def _page(user, candidate) -> str:
    client = Client()
    client.force_login(user)
    return client.get(f"/signals/{candidate.pk}/").content.decode()


def test_a_pir_finding_is_raised_from_an_incident_or_a_problem(cast):
    inc = incident("INC7", major=True)
    problem = Problem.objects.create(number="PRB1", title="Disk fills", opened_at=timezone.now())
    a = S.submit_candidate(
        actor=cast.contributor, channel="post_incident_review", title="No paging", record=inc
    )
    b = S.submit_candidate(
        actor=cast.contributor, channel="post_incident_review", title="No runbook", record=problem
    )
    assert (a.channel, a.practice, b.practice) == ("post_incident_review", "incident", "problem")
    with pytest.raises(ValidationError) as exc:
        S.submit_candidate(actor=cast.contributor, channel="post_incident_review", title="Vague")
    assert "record" in exc.value.message_dict


def test_an_audit_finding_is_raised_from_an_audit_finding_record(cast):
    finding = AuditFinding.objects.create(
        number="AUD-3", title="No asset owner", found_at=timezone.localdate()
    )
    candidate = S.submit_candidate(
        actor=cast.contributor, channel="audit_finding", title="Assets without owner", record=finding
    )
    assert candidate.evidence.get().key == "AUD-3"
    with pytest.raises(ValidationError) as exc:
        S.submit_candidate(
            actor=cast.contributor, channel="audit_finding", title="x", record=incident("INC8")
        )
    assert "record" in exc.value.message_dict


def test_findings_need_a_contributor_and_only_feedback_may_be_anonymous(cast):
    inc = incident("INC9")
    with pytest.raises(PermissionDeniedError):
        S.submit_candidate(actor=cast.viewer, channel="post_incident_review", title="x", record=inc)
    with pytest.raises(ValidationError) as exc:
        S.submit_candidate(
            actor=cast.contributor, channel="post_incident_review", title="x", record=inc, anonymous=True
        )
    assert "anonymous" in exc.value.message_dict


def test_the_forms_refuse_what_the_services_refuse(cast):
    inc = incident("INC10")
    client = Client()
    client.force_login(cast.viewer)
    assert client.get(f"/signals/findings/post-incident-review/?record=incident:{inc.pk}").status_code == 403
    client.force_login(cast.contributor)
    response = client.post(f"/signals/findings/post-incident-review/?record=incident:{inc.pk}", {"title": ""})
    assert response.status_code == 400
    assert "This field is required" in response.content.decode()
    assert client.get("/signals/findings/post-incident-review/?record=incident:999999").status_code == 404
    response = client.post("/signals/findings/audit/", {"title": "An audit finding without its record"})
    assert response.status_code == 400
    assert "raised from a record: audit-finding" in response.content.decode()
    assert not Candidate.objects.exists()


def test_the_api_takes_findings_and_feedback(cast):
    inc = incident("INC11")
    response = api(cast.contributor).post(
        "/api/signals/findings",
        {
            "channel": "post_incident_review",
            "title": "Escalation too late",
            "record_kind": "incident",
            "record_id": inc.pk,
        },
        content_type="application/json",
    )
    assert response.status_code == 201
    assert response.json()["source_keys"] == ["INC11"]
    refused = api(cast.viewer).post(
        "/api/signals/findings",
        {"channel": "post_incident_review", "title": "x", "record_kind": "incident", "record_id": inc.pk},
        content_type="application/json",
    )
    assert refused.status_code == 403
    feedback = api(cast.viewer).post(
        "/api/feedback",
        {"title": "The portal search is useless", "anonymous": True},
        content_type="application/json",
    )
    assert feedback.status_code == 201
    assert feedback.json()["reporter"]["username"] == "vera"  # the reporter sees their own name
    assert feedback.json()["anonymous"] is True
    missing = api(cast.viewer).post(
        "/api/feedback",
        {"title": "x", "record_kind": "incident", "record_id": 999999},
        content_type="application/json",
    )
    assert missing.status_code == 422 and missing.json()["detail"][0]["field"] == "record_id"
