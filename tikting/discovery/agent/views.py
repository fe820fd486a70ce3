"""The agent endpoint, /discovery/agent/: where FusionInventory and GLPI agents send inventories.

Agents cannot hold a session or a CSRF token: this view alone is CSRF-exempt, and it requires an
agent token as the HTTP basic-auth password instead (401 with a Basic challenge otherwise, which
is how the agents know to send it). Each inventory is reconciled as one run, under a lock per
agent (its device id), so an agent retrying while its last upload is still being reconciled is
told the server is busy rather than reconciled twice at once.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from ..agent_models import AgentToken
from ..locks import SourceBusy
from ..observations import ParseResult
from ..runs import default_source, import_result
from ..sources import detect
from ..sources.common import clean, too_deep
from ..sources.glpi import parse_glpi_json, parse_glpi_xml
from ..sources.netdiscovery import parse_netdiscovery
from . import protocol, tokens
from .protocol import Body, Refused

logger = logging.getLogger(__name__)

REALM = "tikting discovery agents"
GLPI_ACTIONS = ("inventory", "netinventory", "netdiscovery")


@csrf_exempt
@require_POST
def agent_endpoint(request: HttpRequest) -> HttpResponse:
    """Answer one agent request (PROLOG, INVENTORY, CONTACT, inventory) in the agent's protocol."""
    glpi = "GLPI-Agent-ID" in request.headers or "json" in (request.content_type or "")
    token = tokens.authenticate(request)
    if token is None:
        response = HttpResponse(
            "An agent token is required (HTTP basic auth).", status=401, content_type="text/plain"
        )
        response["WWW-Authenticate"] = f'Basic realm="{REALM}"'
        return response
    try:
        body = protocol.read_body(request)
        if body.data.lstrip()[:1] == b"{":
            return _glpi(request, body, token)
        return _ocs(body, token)
    except Refused as exc:
        logger.warning("agent request refused (%s): %s", exc.status, exc.message)
        if glpi:
            return protocol.glpi_reply(
                request, {"status": "error", "message": exc.message}, status=exc.status
            )
        return HttpResponse(exc.message, status=exc.status, content_type="text/plain")


def _ocs(body: Body, token: AgentToken) -> HttpResponse:
    query = detect.agent_query(body.data)
    if query == "PROLOG":
        return protocol.prolog_reply(body.compression)
    parsers = {
        "INVENTORY": parse_glpi_xml,
        "NETDISCOVERY": parse_netdiscovery,
        "SNMPQUERY": parse_netdiscovery,
    }
    if query not in parsers:
        raise Refused(
            400, f"unsupported QUERY '{query or 'none'}' (PROLOG, INVENTORY, NETDISCOVERY, SNMPQUERY)"
        )
    result = parsers[query](body.data)
    _reconcile(result, token, clean(detect.agent_deviceid(body.data), 200))
    return protocol.ocs_reply("<RESPONSE>NO_ACCOUNT_UPDATE</RESPONSE>", body.compression)


def _glpi(request: HttpRequest, body: Body, token: AgentToken) -> HttpResponse:
    message = protocol.json_message(body.data)
    if too_deep(message):
        raise Refused(400, "malformed json (nested too deeply)")
    action = clean(message.get("action"), 20).lower() or "inventory"
    if action == "contact":
        return protocol.contact_reply(request, message)
    if action not in GLPI_ACTIONS:
        raise Refused(400, f"unsupported action '{action}'")
    result = parse_glpi_json(body.data)
    _reconcile(result, token, clean(message.get("deviceid"), 200))
    return protocol.glpi_reply(request, {"status": "ok"})


def _reconcile(result: ParseResult, token: AgentToken, deviceid: str) -> None:
    """Reconcile an agent's inventory as one run (its problems are kept on the run); 400 when
    nothing in it could be read, 503 while the same agent's previous upload is reconciled."""
    if not result.observations:
        first = result.errors[0] if result.errors else None
        raise Refused(
            400, f"bad-format: {first.where}: {first.message}" if first else "bad-format: no device"
        )
    try:
        import_result(
            result,
            source_name=default_source(result),
            file_name=f"{deviceid or 'agent'} (token {token.name})"[:255],
            lock_name=f"agent:{deviceid or token.pk}",
        )
    except SourceBusy as exc:
        raise Refused(503, "busy server") from exc
