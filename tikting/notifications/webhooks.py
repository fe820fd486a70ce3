"""Webhook mechanics: which URLs may be called (SSRF), the signature, and one POST.

- Only http and https URLs, without user:password. The host is resolved and EVERY address it
  resolves to must be public: loopback, private (RFC 1918, fc00::/7), link-local (169.254/16, where
  cloud metadata lives; fe80::/10), shared (100.64/10), multicast, unspecified and reserved
  addresses are refused, IPv4-mapped IPv6 addresses judged as the IPv4 they carry, unless
  settings.TIKTING_WEBHOOK_ALLOW_PRIVATE is on. Checked when a subscription is saved AND at each
  delivery; the delivery then connects to the very address it checked (no second DNS answer can
  point it elsewhere), sending the URL's host name as Host and, for https, as SNI with the
  certificate checked against it. Redirects are not followed.
- The body is signed with HMAC-SHA256 under the subscription's secret:
  `X-Tikting-Signature: sha256=<hex digest of the raw body>`.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

SIGNATURE_HEADER = "X-Tikting-Signature"
MAX_RESPONSE_BYTES = 64 * 1024
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def sign(secret: str, body: bytes) -> str:
    """The value of X-Tikting-Signature for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def forbidden(address: Address) -> str:
    """Why `address` may not be called ("" if it may)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for test, words in (
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address"),
        ("is_multicast", "a multicast address"),
        ("is_unspecified", "an unspecified address"),
        ("is_reserved", "a reserved address"),
        ("is_private", "a private address"),
    ):
        if getattr(address, test):
            return words
    if isinstance(address, ipaddress.IPv4Address) and address in ipaddress.ip_network("100.64.0.0/10"):
        return "a shared (carrier-grade NAT) address"
    if not address.is_global:
        return "not a public address"
    return ""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[str, ...]


def resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ValidationError({"url": f"The host {host} does not resolve ({exc})."}) from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def check_url(url: str) -> Target:
    """The URL's parts and the addresses to call; ValidationError naming `url` when it is not
    allowed (scheme, credentials, an address that is not public: see the module)."""
    parts = urlsplit((url or "").strip())
    if parts.scheme not in {"http", "https"}:
        raise ValidationError({"url": "Only http:// and https:// URLs are allowed."})
    if parts.username or parts.password:
        raise ValidationError(
            {"url": "Put no user name or password in the URL: the signature authenticates."}
        )
    host = parts.hostname
    if not host:
        raise ValidationError({"url": "The URL has no host."})
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise ValidationError({"url": f"The port is not a number ({exc})."}) from exc
    addresses = resolve(host, port)
    if not addresses:
        raise ValidationError({"url": f"The host {host} does not resolve."})
    if not settings.TIKTING_WEBHOOK_ALLOW_PRIVATE:
        for text in addresses:
            why = forbidden(ipaddress.ip_address(text.split("%")[0]))
            if why:
                raise ValidationError(
                    {
                        "url": f"{host} resolves to {text}, {why}: webhooks only call public addresses "
                        "(an administrator allows others with TIKTING_WEBHOOK_ALLOW_PRIVATE)."
                    }
                )
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(parts.scheme, host, port, path, tuple(addresses))


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to a checked address, the certificate verified against the URL's host name."""

    def __init__(self, address: str, server_name: str, port: int, timeout: float) -> None:
        super().__init__(address, port, timeout=timeout, context=ssl.create_default_context())
        self.server_name = server_name

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.server_name)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Answer:
    status_code: int | None
    error: str
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def post(url: str, body: bytes, headers: dict[str, str]) -> Answer:
    """POST `body` to `url` (checked again now: check_url), to the first address that answers."""
    started = time.monotonic()

    def took() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        target = check_url(url)
    except ValidationError as exc:
        return Answer(None, "; ".join(exc.messages)[:300], took())
    timeout = settings.TIKTING_WEBHOOK_TIMEOUT
    error = ""
    for address in target.addresses:
        connection: http.client.HTTPConnection
        if target.scheme == "https":
            connection = _PinnedHTTPS(address, target.host, target.port, timeout)
        else:
            connection = http.client.HTTPConnection(address, target.port, timeout=timeout)
        host = target.host if ":" not in target.host else f"[{target.host}]"
        default_port = 443 if target.scheme == "https" else 80
        host_header = host if target.port == default_port else f"{host}:{target.port}"
        try:
            connection.request(
                "POST",
                target.path,
                body=body,
                headers={**headers, "Host": host_header, "Content-Length": str(len(body))},
            )
            response = connection.getresponse()
            response.read(MAX_RESPONSE_BYTES)
            return Answer(
                response.status, "" if 200 <= response.status < 300 else response.reason[:300], took()
            )
        except (OSError, http.client.HTTPException) as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        finally:
            connection.close()
    return Answer(None, error or "no address answered", took())
