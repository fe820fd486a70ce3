"""The Content-Security-Policy header and its nonce (tikting/core/csp.py), and templates that keep
it: no inline event handler, no <script> or <style> without the nonce (the browser tests check the
rendered pages in Chromium)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

pytestmark = pytest.mark.django_db

TEMPLATES = Path(settings.BASE_DIR) / "templates"
NONCE = re.compile(r"'nonce-([\w-]+)'")


def nonce_of(policy: str) -> str:
    match = NONCE.search(policy)
    assert match, policy
    return match.group(1)


def test_every_response_carries_the_policy_with_a_fresh_nonce(cast):
    client = Client()
    client.force_login(cast.manager)
    nonces = set()
    for url in ["/register/", "/records/incident/", "/api/items", "/login/", "/api/docs"]:
        policy = client.get(url)["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "object-src 'none'" in policy
        assert "frame-ancestors 'none'" in policy and "'unsafe-eval'" not in policy
        script_src = next(part for part in policy.split("; ") if part.startswith("script-src "))
        assert "'unsafe-inline'" not in script_src
        nonces.add(nonce_of(policy))
    assert len(nonces) == 5  # one per request


def test_inline_style_blocks_carry_the_request_nonce(cast):
    client = Client()
    client.force_login(cast.manager)
    response = client.get("/records/incident/")
    nonce = nonce_of(response["Content-Security-Policy"])
    assert f'<style nonce="{nonce}">' in response.content.decode()


@pytest.mark.parametrize(
    "path", sorted(TEMPLATES.rglob("*.html")), ids=lambda p: str(p.relative_to(TEMPLATES))
)
def test_templates_have_no_inline_handlers_or_unnonced_code(path):
    text = path.read_text()
    assert not re.search(r"\son[a-z]+\s*=", text), "an inline event handler (onclick=…): use app.js"
    assert not re.search(r"\shx-on[:-]", text), "hx-on runs code through eval: use app.js"
    for tag in re.findall(r"<(?:script|style)\b[^>]*>", text):
        assert "src=" in tag or "nonce=" in tag or 'type="application/json"' in tag, tag
