"""ASGI middleware: a request id on every request, its access log line and HTTP metrics; the
client's address behind trusted proxies."""

from __future__ import annotations

import ipaddress
import re
import time
import uuid
from collections.abc import Iterable, Sequence

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import metrics

REQUEST_ID_HEADER = "x-request-id"
FORWARDED_FOR_HEADER = b"x-forwarded-for"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
log = structlog.get_logger("engage.http")


class RequestContextMiddleware:
    """Takes a well-formed `X-Request-ID` from the caller or makes one, binds it to the logs,
    returns it in the response, and logs and counts each request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, REQUEST_ID_HEADER.encode())
        request_id = (
            incoming if incoming and _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        )
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (REQUEST_ID_HEADER.encode(), request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            path = scope.get("path", "")
            if scope["type"] == "http":
                metrics.HTTP_REQUESTS.labels(_route_label(path), str(status)).inc()
                log.info(
                    "http.request",
                    method=scope.get("method"),
                    path=path,
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 2),
                )
            structlog.contextvars.unbind_contextvars("request_id")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _route_label(path: str) -> str:
    return path if path in ("/graphql", "/healthz", "/readyz", "/metrics") else "other"


# ---- the client's address --------------------------------------------------------------------

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusted_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """`TRUSTED_PROXIES` entries (IPs or CIDRs) as networks; ValueError for anything else."""
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries)


def forwarded_client(peer: str, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """The client's address: the peer's, unless the peer is a trusted proxy and says who it
    forwards for.

    Each proxy appends the address it was connected from, so `X-Forwarded-For` is read from
    the right: the first entry that is not a trusted proxy is the client. Entries to its left
    were written by the client and prove nothing; an entry that is no address ends the walk
    (the last address proven stays). When every hop is trusted, the left-most is the client.
    """
    client = peer
    if not forwarded_for or not _is_trusted(peer, trusted):
        return client
    for entry in reversed(forwarded_for.split(",")):
        address = _address(entry)
        if address is None:
            break
        client = address
        if not _is_trusted(address, trusted):
            break
    return client


def _is_trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:  # a peer that is no IP (a unix socket, a test client)
        return False
    return any(ip in network for network in trusted)


def _address(entry: str) -> str | None:
    """An X-Forwarded-For entry's IP (`1.2.3.4`, `1.2.3.4:80`, `::1`, `[::1]:80`), normalised;
    None for anything else."""
    text = entry.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


class ForwardedClientMiddleware:
    """Sets the request's client address (`scope["client"]`, what `Request.client` and the
    per-IP limits read) to `forwarded_client`: behind a load balancer every client would
    otherwise share the balancer's address and its limits."""

    def __init__(self, app: ASGIApp, trusted_proxies: Iterable[str] = ("127.0.0.1",)) -> None:
        self.app = app
        self.trusted = trusted_networks(trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        peer = scope.get("client")
        if scope["type"] in ("http", "websocket") and peer and self.trusted:
            address = forwarded_client(peer[0], _forwarded_for(scope), self.trusted)
            if address != peer[0]:
                scope["client"] = (address, 0)
        await self.app(scope, receive, send)


def _forwarded_for(scope: Scope) -> str | None:
    """Every X-Forwarded-For header of the request, joined (a proxy may add its own)."""
    values = [
        value.decode("latin-1")
        for key, value in scope.get("headers", [])
        if key == FORWARDED_FOR_HEADER
    ]
    return ", ".join(values) if values else None
