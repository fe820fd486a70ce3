"""The two agent protocols, as bytes in and replies out (no database).

FusionInventory / OCS (what Debian's `fusioninventory-agent --server URL` speaks): the agent POSTs
zlib-compressed XML (Content-Type application/x-compress-zlib; gzip or plain XML if it lacks
zlib). First `<REQUEST><QUERY>PROLOG</QUERY>…`: the server answers
`<REPLY><PROLOG_FREQ>hours</PROLOG_FREQ><RESPONSE>SEND</RESPONSE></REPLY>`, which tells the
inventory task to run and when to come back; then `<QUERY>INVENTORY</QUERY>` with the inventory,
answered by a `<REPLY>`. Replies are compressed the way the request was.

GLPI Agent (glpi-project/json-protocol): JSON, maybe zlib/gzip-compressed. `{"action": "contact",
…}` is answered with the tasks the server wants (inventory only) and when to come back;
`{"action": "inventory", "deviceid": …, "content": {…}}` (or netinventory / netdiscovery) with
`{"status": "ok", "expiration": …}`. Errors are `{"status": "error", "message": …}` with a 4xx.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from tikting.lib.archives import ArchiveRefused, inflate

from ..sources.common import max_bytes

__all__ = ["Body", "Refused", "contact_reply", "glpi_reply", "ocs_reply", "prolog_reply", "read_body"]

ZLIB_TYPE = "application/x-compress-zlib"
GZIP_TYPE = "application/x-compress-gzip"
# What the agents' own decompressors recognise: gzip's magic and zlib's default header.
GZIP_MAGIC = b"\x1f\x8b"
ZLIB_HEADERS = (b"\x78\x01", b"\x78\x5e", b"\x78\x9c", b"\x78\xda")
# The tasks a GLPI Agent is told the server does not want (everything but the inventory).
NOT_WANTED = ["collect", "deploy", "esx", "netdiscovery", "netinventory", "remoteinventory", "wakeonlan"]


class Refused(Exception):
    """The request cannot be taken: an HTTP status and a message for the agent's log."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


@dataclass
class Body:
    data: bytes
    compression: str  # "zlib", "gzip" or "none": the reply is compressed the same way


def read_body(request: HttpRequest) -> Body:
    """The request's body within TIKTING_DISCOVERY_AGENT_MAX_BYTES, decompressed within
    TIKTING_DISCOVERY_MAX_BYTES and TIKTING_DISCOVERY_MAX_RATIO (413 past any of them; 400 for a
    broken stream). Read from the stream, so Django's own body size limit does not apply."""
    limit = int(settings.TIKTING_DISCOVERY_AGENT_MAX_BYTES)
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise Refused(400, "bad Content-Length") from None
    if declared > limit:
        raise Refused(413, f"request body over {limit} bytes (TIKTING_DISCOVERY_AGENT_MAX_BYTES)")
    raw = request.read(limit + 1)
    if len(raw) > limit:
        raise Refused(413, f"request body over {limit} bytes (TIKTING_DISCOVERY_AGENT_MAX_BYTES)")
    if not raw:
        raise Refused(400, "empty request")
    content_type = (request.content_type or "").lower()
    compression = "none"
    if content_type == GZIP_TYPE or raw.startswith(GZIP_MAGIC):
        compression = "gzip"
    elif content_type == ZLIB_TYPE or raw[:2] in ZLIB_HEADERS:
        compression = "zlib"
    if compression == "none":
        if len(raw) > max_bytes():
            raise Refused(413, "request body over TIKTING_DISCOVERY_MAX_BYTES")
        return Body(raw, compression)
    try:
        data = inflate(
            raw,
            max_bytes=max_bytes(),
            max_ratio=float(settings.TIKTING_DISCOVERY_MAX_RATIO),
            what="The request body",
        )
    except ArchiveRefused as exc:
        raise Refused(413, str(exc)) from exc
    except zlib.error as exc:
        raise Refused(400, f"the {compression} stream cannot be decompressed ({exc})") from exc
    return Body(data, compression)


def _compress(data: bytes, compression: str) -> tuple[bytes, str]:
    if compression == "zlib":
        return zlib.compress(data), ZLIB_TYPE
    if compression == "gzip":
        compressor = zlib.compressobj(wbits=31)
        return compressor.compress(data) + compressor.flush(), GZIP_TYPE
    return data, "application/xml"


def ocs_reply(inner: str, compression: str, status: int = 200) -> HttpResponse:
    """A FusionInventory / OCS reply: <REPLY>inner</REPLY>, compressed as the request was."""
    xml = f'<?xml version="1.0" encoding="UTF-8"?>\n<REPLY>{inner}</REPLY>\n'.encode()
    data, content_type = _compress(xml, compression)
    return HttpResponse(data, status=status, content_type=content_type)


def prolog_reply(compression: str) -> HttpResponse:
    """The answer to a PROLOG: send an inventory now, and come back after the configured hours."""
    hours = int(settings.TIKTING_DISCOVERY_AGENT_INTERVAL_HOURS)
    return ocs_reply(f"<PROLOG_FREQ>{hours}</PROLOG_FREQ><RESPONSE>SEND</RESPONSE>", compression)


def glpi_reply(request: HttpRequest, payload: dict[str, Any], status: int = 200) -> JsonResponse:
    """A GLPI Agent protocol answer (plain JSON, which every agent reads), echoing the agent's id
    and request id headers as the protocol asks."""
    payload.setdefault("expiration", f"{int(settings.TIKTING_DISCOVERY_AGENT_INTERVAL_HOURS)}h")
    response = JsonResponse(payload, status=status)
    for header in ("GLPI-Agent-ID", "GLPI-Request-ID"):
        value = request.headers.get(header)
        if value and len(value) <= 64 and value.isprintable():
            response[header] = value
    return response


def contact_reply(request: HttpRequest, message: dict[str, Any]) -> JsonResponse:
    """The answer to CONTACT: run the inventory task (and no other), come back in N hours.
    "server": "glpi" names the protocol the agent is to speak (GLPI's native JSON inventory)."""
    installed = message.get("installed-tasks")
    unwanted = sorted(
        {str(t).lower() for t in installed if str(t).lower() != "inventory"}
        if isinstance(installed, list)
        else set(NOT_WANTED)
    )
    return glpi_reply(
        request,
        {
            "status": "ok",
            "tasks": {"inventory": {"server": "glpi", "version": "10.0.0"}},
            "disabled": unwanted,
        },
    )


def json_message(data: bytes) -> dict[str, Any]:
    """A GLPI Agent message as a dict (Refused 400 when it is not a JSON object)."""
    try:
        message = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise Refused(400, f"malformed json ({exc})") from exc
    if not isinstance(message, dict):
        raise Refused(400, "malformed json (expected an object)")
    return message
