"""The agent endpoint: the FusionInventory/OCS and GLPI Agent protocols, token authentication,
size and zlib-bomb limits, CSRF exemption for this endpoint only; and the real agents."""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import shutil
import subprocess
import zlib
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from django.core.management import call_command
from django.test import Client, override_settings

from tikting.cmdb.models import ConfigurationItem as CI
from tikting.discovery.agent.tokens import create_agent_token, revoke_agent_token
from tikting.discovery.agent_models import AgentToken
from tikting.discovery.models import DiscoveredDevice, DiscoveryRun

from .samples import fixture, held_elsewhere

URL = "/discovery/agent/"
PROLOG = b'<?xml version="1.0" encoding="UTF-8" ?>\n<REQUEST>\n  <DEVICEID>pc-42-2026-12-05-08-00-00</DEVICEID>\n  <QUERY>PROLOG</QUERY>\n  <TOKEN>12345678</TOKEN>\n</REQUEST>\n'  # noqa: E501


@pytest.fixture
def secret(db) -> str:
    return create_agent_token(name="test agents", actor=None)[1]


def auth(secret: str, user: str = "agent") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()}


def post(client: Client, body: bytes, content_type: str, secret: str | None, **headers: str) -> Any:
    return client.post(
        URL, data=body, content_type=content_type, headers={**(auth(secret) if secret else {}), **headers}
    )


def reply(response) -> ElementTree.Element:
    data = response.content
    if response["Content-Type"] in ("application/x-compress-zlib", "application/x-compress-gzip"):
        data = zlib.decompress(data, 47)  # zlib or gzip, as the request was
    return ElementTree.fromstring(data)  # noqa: S314 (our own server's reply)


# --- Authentication ---------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("how", ["none", "wrong", "revoked", "bearer"])
def test_without_a_valid_agent_token_the_agent_is_challenged(client, how, secret):
    headers: dict[str, str] = {}
    if how == "wrong":
        headers = auth("tkd_not-a-token")
    elif how == "revoked":
        revoke_agent_token(AgentToken.objects.get(), actor=None)
        headers = auth(secret)
    elif how == "bearer":
        headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    response = client.post(
        URL, data=zlib.compress(PROLOG), content_type="application/x-compress-zlib", **headers
    )
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Basic realm="tikting discovery agents"'


@pytest.mark.django_db
def test_an_api_token_does_not_open_the_agent_endpoint(client, cast):
    from tikting.accounts.models import ApiToken

    _token, raw = ApiToken.issue(cast.admin, "scripts")
    response = post(client, zlib.compress(PROLOG), "application/x-compress-zlib", raw)
    assert response.status_code == 401  # an agent token opens this endpoint only, and only it does


# --- FusionInventory / OCS --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_prolog_is_answered_send_with_the_interval_compressed_as_asked(client, secret):
    response = post(client, zlib.compress(PROLOG), "application/x-compress-zlib", secret)
    assert response.status_code == 200 and response["Content-Type"] == "application/x-compress-zlib"
    answer = reply(response)
    assert (answer.tag, answer.findtext("PROLOG_FREQ"), answer.findtext("RESPONSE")) == (
        "REPLY",
        "24",
        "SEND",
    )
    plain = post(client, PROLOG, "application/xml", secret)
    assert plain["Content-Type"] == "application/xml" and reply(plain).findtext("RESPONSE") == "SEND"
    assert not DiscoveryRun.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("compression", ["zlib", "gzip", "none"])
def test_an_inventory_is_reconciled_as_one_run(client, secret, compression):
    inventory = fixture("xml__12.xml")
    body, content_type = {
        "zlib": (zlib.compress(inventory), "application/x-compress-zlib"),
        "gzip": (gzip.compress(inventory), "application/x-compress-gzip"),
        "none": (inventory, "application/xml"),
    }[compression]
    response = post(client, body, content_type, secret)
    assert response.status_code == 200
    assert reply(response).tag == "REPLY"
    run = DiscoveryRun.objects.get()
    assert (run.source_name, run.format, run.observed, run.created_unregistered) == (
        "fusioninventory",
        "glpi-xml",
        1,
        1,
    )
    assert run.file_name == "pc-arg-23.cedre.local-2017-04-18-09-26-44 (token test agents)"
    ci = CI.objects.get(serial_number="CZC0479792")
    assert DiscoveredDevice.objects.get(ci=ci).source == "fusioninventory"
    assert AgentToken.objects.get().last_used_at is not None


@pytest.mark.django_db
def test_an_unreadable_inventory_is_refused_and_nothing_written(client, secret):
    evil = b'<?xml version="1.0"?><!DOCTYPE R [<!ENTITY x SYSTEM "file:///etc/passwd">]><REQUEST><QUERY>INVENTORY</QUERY></REQUEST>'  # noqa: E501
    response = post(client, zlib.compress(evil), "application/x-compress-zlib", secret)
    assert response.status_code == 400 and b"entities" in response.content
    odd = post(client, b"<REQUEST><QUERY>FOO</QUERY></REQUEST>", "application/xml", secret)
    assert odd.status_code == 400 and b"unsupported QUERY 'FOO'" in odd.content
    assert not DiscoveryRun.objects.exists()


# --- Limits -----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_zlib_bomb_is_refused_past_the_ratio_and_nothing_written(client, secret):
    bomb = zlib.compress(b"<REQUEST>" + b" " * (50 << 20), 9)  # 50 MiB of blanks in ~50 KB
    response = post(client, bomb, "application/x-compress-zlib", secret)
    assert response.status_code == 413
    assert b"compressed more than 100 to 1" in response.content
    assert not DiscoveryRun.objects.exists()


@pytest.mark.django_db
@override_settings(TIKTING_DISCOVERY_MAX_BYTES=100_000, TIKTING_DISCOVERY_MAX_RATIO=1_000_000)
def test_a_body_unpacking_past_the_size_limit_is_refused(client, secret):
    response = post(client, zlib.compress(b" " * 200_000), "application/x-compress-zlib", secret)
    assert response.status_code == 413 and b"more than 100,000 bytes" in response.content


@pytest.mark.django_db
@override_settings(TIKTING_DISCOVERY_AGENT_MAX_BYTES=1000)
def test_a_request_body_past_its_limit_is_refused_before_it_is_read(client, secret):
    response = post(client, fixture("xml__12.xml"), "application/xml", secret)
    assert response.status_code == 413 and b"TIKTING_DISCOVERY_AGENT_MAX_BYTES" in response.content


@pytest.mark.django_db
def test_a_broken_zlib_stream_is_a_bad_request(client, secret):
    response = post(client, zlib.compress(PROLOG)[:-6], "application/x-compress-zlib", secret)
    assert response.status_code == 400 and b"cannot be decompressed" in response.content


# --- GLPI Agent (JSON) ------------------------------------------------------------------------------------


AGENT_ID = "3a609a2e-947f-4e6a-9af9-32c024ac3944"


@pytest.mark.django_db
def test_a_glpi_agent_contact_is_told_to_send_its_inventory_only(client, secret):
    contact = {
        "action": "contact",
        "deviceid": "glpixps-2018-07-09-09-07-13",
        "name": "GLPI-Agent",
        "version": "1.7",
        "installed-tasks": ["inventory", "deploy", "netdiscovery"],
    }
    response = post(
        client,
        zlib.compress(json.dumps(contact).encode()),
        "application/x-compress-zlib",
        secret,
        **{"GLPI-Agent-ID": AGENT_ID},
        **{"GLPI-Request-ID": "42E6A9AF"},
    )
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert response.json() == {
        "status": "ok",
        "tasks": {"inventory": {"server": "glpi", "version": "10.0.0"}},
        "disabled": ["deploy", "netdiscovery"],
        "expiration": "24h",
    }
    assert (response["GLPI-Agent-ID"], response["GLPI-Request-ID"]) == (AGENT_ID, "42E6A9AF")


@pytest.mark.django_db
def test_a_glpi_agent_inventory_is_reconciled(client, secret):
    response = post(
        client, fixture("json__computer_1.json"), "application/json", secret, **{"GLPI-Agent-ID": AGENT_ID}
    )
    assert response.status_code == 200 and response.json() == {"status": "ok", "expiration": "24h"}
    run = DiscoveryRun.objects.get()
    assert (run.format, run.created_unregistered) == ("glpi-json", 1)
    assert CI.objects.filter(serial_number="640HP72").exists()


@pytest.mark.django_db
def test_glpi_agent_errors_are_json_with_a_4xx(client, secret):
    bad = post(
        client, b'{"action": "inventory", "deviceid": "x", "content": "nope"}', "application/json", secret
    )
    assert bad.status_code == 400 and bad.json()["status"] == "error"
    assert bad.json()["message"].startswith("bad-format: content: Not a GLPI inventory")
    unknown = post(
        client, b'{"action": "get_params"}', "application/json", secret, **{"GLPI-Agent-ID": AGENT_ID}
    )
    assert unknown.status_code == 400 and unknown.json()["message"] == "unsupported action 'get_params'"
    assert not DiscoveryRun.objects.exists()


@pytest.mark.django_db
def test_an_agent_sending_while_its_last_upload_is_reconciled_is_told_the_server_is_busy(client, secret):
    with held_elsewhere("agent:glpixps-2018-07-09-09-07-13"):
        response = post(client, fixture("json__computer_1.json"), "application/json", secret)
    assert response.status_code == 503 and response.json()["message"] == "busy server"
    assert not DiscoveryRun.objects.exists()


# --- HTTP ---------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_endpoint_takes_posts_only_and_is_csrf_exempt_alone(secret, cast):
    strict = Client(enforce_csrf_checks=True)
    assert strict.get(URL, headers=auth(secret)).status_code == 405
    answered = strict.post(
        URL, data=zlib.compress(PROLOG), content_type="application/x-compress-zlib", headers=auth(secret)
    )
    assert answered.status_code == 200  # agents have no CSRF token: this endpoint does not ask for one
    strict.force_login(cast.admin)
    assert strict.post("/logout/").status_code == 403  # every other form still does


# --- The real agents ----------------------------------------------------------------------------

AGENT = shutil.which("fusioninventory-agent")
VARDIR = Path("/var/lib/fusioninventory-agent")


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    AGENT is None, reason="Debian's fusioninventory-agent is not installed (scripts/system-deps test)"
)
def test_the_real_fusioninventory_agent_sends_this_machines_inventory(live_server):
    if not os.access(VARDIR if VARDIR.exists() else VARDIR.parent, os.W_OK):
        pytest.skip(f"the agent keeps its state in {VARDIR}, not writable by this user")
    _token, secret = create_agent_token(name="real agent", actor=None)
    url = f"{live_server.url}{URL}"
    done = subprocess.run(
        [
            str(AGENT),
            "--config=none",  # not /etc/fusioninventory/agent.cfg: only these options
            f"--server={url}",
            "--user=agent",
            f"--password={secret}",
            "--tasks=inventory",  # no deploy, wake-on-LAN, WMI or maintenance task
            "--no-httpd",
            "--logger=stderr",
            "--debug",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    state = VARDIR / url.replace("/", "_")  # the agent's folder for this server
    try:
        assert done.returncode == 0, done.stderr[-2000:]
        assert "authentication required, submitting credentials" in done.stderr
        run = DiscoveryRun.objects.get()
        assert (run.format, run.source_name, run.errors) == ("glpi-xml", "fusioninventory", 0)
        assert run.observed == 1 and run.created_unregistered + run.confirmed + run.updated == 1
        device = DiscoveredDevice.objects.get(last_run=run)
        hostname = subprocess.run(["hostname"], capture_output=True, text=True, check=False).stdout.strip()
        assert device.hostname == hostname.split(".")[0].lower()  # this machine, as the agent saw it
        assert len(device.details["software"]) > 10  # Debian's package list came along
    finally:
        shutil.rmtree(state, ignore_errors=True)


@pytest.mark.django_db
@pytest.mark.skipif(
    shutil.which("fusioninventory-inventory") is None,
    reason="Debian's fusioninventory-agent is not installed (scripts/system-deps test)",
)
def test_the_real_local_inventory_is_imported_from_its_file(tmp_path):
    path = tmp_path / "this-machine.ocs"
    with path.open("wb") as out:
        done = subprocess.run(
            [str(shutil.which("fusioninventory-inventory"))], stdout=out, stderr=subprocess.PIPE, timeout=300
        )
    assert done.returncode == 0, done.stderr[-2000:]
    call_command("discover", "import", str(path), stdout=io.StringIO(), stderr=io.StringIO())
    run = DiscoveryRun.objects.get()
    assert (run.format, run.source_name, run.file_name, run.errors) == (
        "glpi-xml",
        "fusioninventory",
        "this-machine.ocs",
        0,
    )
    device = DiscoveredDevice.objects.get(last_run=run)
    hostname = subprocess.run(["hostname"], capture_output=True, text=True, check=False).stdout.strip()
    assert device.hostname == hostname.split(".")[0].lower()
    assert device.os_name and len(device.details["software"]) > 10
