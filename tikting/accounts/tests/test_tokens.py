"""API tokens: the /account/tokens/ page and the /api/tokens endpoints."""

import pytest
from django.test import Client
from django.urls import reverse

from tikting.accounts.models import ApiToken
from tikting.accounts.services import issue_token
from tikting.core.models import AuditEntry

pytestmark = pytest.mark.django_db


def bearer(raw: str) -> dict:
    return {"Authorization": f"Bearer {raw}"}


class TestTokensPage:
    def test_it_requires_signing_in(self, client):
        response = client.get(reverse("accounts:tokens"))
        assert response.status_code == 302
        assert response["Location"].startswith("/login/")

    def test_it_creates_a_token_and_shows_it_once(self, cast, login):
        client = login(cast.owner)
        response = client.post(reverse("accounts:tokens"), {"name": "nightly import"})
        assert response.status_code == 200
        token = ApiToken.objects.get(user=cast.owner)
        raw = response.context["raw_token"]
        assert raw.startswith("tkt_")
        assert raw in response.content.decode()
        assert response["Cache-Control"] == "no-store"
        assert ApiToken.objects.authenticate(raw) == cast.owner
        assert token.key_hash != raw  # only the fingerprint is stored
        # A later visit lists the token by its hint, never its value.
        page = client.get(reverse("accounts:tokens")).content.decode()
        assert "nightly import" in page
        assert token.key_hint in page
        assert raw not in page

    def test_a_blank_name_is_refused(self, cast, login):
        response = login(cast.owner).post(reverse("accounts:tokens"), {"name": "   "})
        assert response.status_code == 200
        assert response.context["form"].errors["name"]
        assert not ApiToken.objects.exists()

    def test_it_revokes_a_token(self, cast, login):
        token, raw = ApiToken.issue(cast.owner, "laptop")
        client = login(cast.owner)
        response = client.post(reverse("accounts:token_revoke", args=[token.pk]))
        assert response.status_code == 302
        token.refresh_from_db()
        assert token.revoked_at is not None
        assert Client().get("/api/items", headers=bearer(raw)).status_code == 401
        assert "Revoked" in client.get(reverse("accounts:tokens")).content.decode()

    def test_it_does_not_revoke_someone_elses_token(self, cast, login):
        token, _ = ApiToken.issue(cast.manager, "theirs")
        response = login(cast.owner).post(reverse("accounts:token_revoke", args=[token.pk]))
        assert response.status_code == 404
        token.refresh_from_db()
        assert token.revoked_at is None

    def test_revoking_needs_a_post(self, cast, login):
        token, _ = ApiToken.issue(cast.owner, "laptop")
        assert login(cast.owner).get(reverse("accounts:token_revoke", args=[token.pk])).status_code == 405

    def test_the_form_needs_the_csrf_token(self, cast):
        client = Client(enforce_csrf_checks=True)
        client.force_login(cast.owner)
        assert client.post(reverse("accounts:tokens"), {"name": "x"}).status_code == 403


class TestTokensApi:
    def test_it_lists_own_tokens_without_their_value(self, cast):
        _, raw = ApiToken.issue(cast.viewer, "script")
        ApiToken.issue(cast.manager, "not mine")
        body = Client().get("/api/tokens", headers=bearer(raw)).json()
        assert [t["name"] for t in body] == ["script"]
        assert "token" not in body[0]
        assert body[0]["active"] is True

    def test_it_creates_a_token_and_returns_the_value_once(self, cast):
        _, raw = ApiToken.issue(cast.viewer, "script")
        response = Client().post(
            "/api/tokens", {"name": "second"}, content_type="application/json", headers=bearer(raw)
        )
        assert response.status_code == 201
        new = response.json()["token"]
        assert ApiToken.objects.authenticate(new) == cast.viewer
        assert AuditEntry.objects.filter(action="create", object_repr__startswith="second").exists()

    def test_a_blank_name_is_422(self, cast):
        _, raw = ApiToken.issue(cast.viewer, "script")
        response = Client().post(
            "/api/tokens", {"name": " "}, content_type="application/json", headers=bearer(raw)
        )
        assert response.status_code == 422
        assert response.json()["detail"][0]["field"] == "name"

    def test_it_revokes_own_tokens_only(self, cast):
        _, raw = ApiToken.issue(cast.viewer, "script")
        doomed, doomed_raw = ApiToken.issue(cast.viewer, "doomed")
        theirs, _ = ApiToken.issue(cast.manager, "theirs")
        client = Client()
        assert client.delete(f"/api/tokens/{theirs.pk}", headers=bearer(raw)).status_code == 404
        assert client.delete(f"/api/tokens/{doomed.pk}", headers=bearer(raw)).status_code == 204
        assert client.get("/api/tokens", headers=bearer(doomed_raw)).status_code == 401
        theirs.refresh_from_db()
        assert theirs.revoked_at is None

    def test_anonymous_is_401(self, db):
        assert Client().post("/api/tokens", {"name": "x"}, content_type="application/json").status_code == 401

    def test_issue_token_records_an_audit_row(self, cast):
        token, _ = issue_token(actor=cast.owner, name="cli")
        assert AuditEntry.objects.filter(object_id=str(token.pk), action="create").count() == 1
