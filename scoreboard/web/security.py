"""HTTPS only, and the browser security headers every response carries."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from scoreboard.web import responses
from scoreboard.web.keys import SETTINGS
from scoreboard.web.middlewares import Handler

HSTS = "max-age=31536000; includeSubDomains"
API_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"
# Defaults only: a handler that sets one of these headers itself keeps its own value.
BROWSER_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": API_CONTENT_SECURITY_POLICY,
}
# Platform health checks and Prometheus reach the process over plain HTTP from inside the
# network; none of these answers holds user data (and METRICS_TOKEN can guard /metrics).
PLAIN_HTTP_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?")


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Add the browser security headers, and HSTS over HTTPS, to every response."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # a redirect raised by a handler is a response too
        _add_headers(request, exc)
        raise
    if not response.prepared:  # a websocket has sent its headers already
        _add_headers(request, response)
    return response


def add_security_headers(
    headers: CIMultiDict[str], *, no_store: bool, strict_transport: bool
) -> None:
    """The browser security headers, `Cache-Control: no-store` and HSTS as asked; a header
    already set keeps its value."""
    for name, value in BROWSER_HEADERS.items():
        headers.setdefault(name, value)
    if no_store:
        headers.setdefault("Cache-Control", "no-store")
    if strict_transport:
        headers.setdefault("Strict-Transport-Security", HSTS)


@web.middleware
async def require_https(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Send a plain HTTP request to HTTPS: 308 for GET and HEAD, 403 for anything else."""
    if not request.app[SETTINGS].force_https or _plain_http_allowed(request):
        return await handler(request)
    location = https_url(request) if request.method in {"GET", "HEAD"} else None
    if location is not None:
        return web.Response(status=308, headers={"Location": location})
    return responses.error(403, "HTTPS required")


def arrived_over_https(request: web.Request) -> bool:
    """TLS on this connection, or the proxy in front says the client used HTTPS."""
    return request.secure or forwarded_proto(request) == "https"


def forwarded_proto(request: web.Request) -> str | None:
    """The client's scheme per X-Forwarded-Proto; the first value when proxies chained."""
    header = request.headers.get("X-Forwarded-Proto")
    if header is None:
        return None
    return header.split(",")[0].strip().lower()


def is_loopback(address: str | None) -> bool:
    """127.0.0.0/8 or ::1 (IPv4-mapped too); anything unparseable is not."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def https_url(request: web.Request) -> str | None:
    """The same host, path and query under https://; None if the Host header is no host."""
    if not _HOST.fullmatch(request.host):
        return None
    try:
        return str(request.url.with_scheme("https"))
    except ValueError:  # a port out of range
        return None


def same_origin(origin: str | None, environ: Mapping[str, Any]) -> bool:
    """Socket.IO's origin check when CORS_ALLOWED_ORIGINS is unset: only this very site."""
    request = environ["aiohttp.request"]
    scheme = "https" if arrived_over_https(request) else "http"
    return origin is not None and origin.lower() == f"{scheme}://{request.host}".lower()


def _plain_http_allowed(request: web.Request) -> bool:
    if arrived_over_https(request) or request.path in PLAIN_HTTP_PATHS:
        return True
    # Behind a proxy every peer is the proxy itself, so only the header tells.
    return forwarded_proto(request) is None and is_loopback(request.remote)


def _add_headers(request: web.Request, response: web.StreamResponse) -> None:
    add_security_headers(
        response.headers,
        no_store=request.path == "/api" or request.path.startswith("/api/"),
        strict_transport=request.app[SETTINGS].force_https and arrived_over_https(request),
    )
