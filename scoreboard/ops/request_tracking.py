"""Every request gets an id, a line in the access log and its count and duration in the metrics."""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web

from scoreboard.ops.request_ids import REQUEST_ID_HEADER, bound_request_id, request_id_from_header
from scoreboard.web.keys import METRICS
from scoreboard.web.middlewares import Handler
from scoreboard.web.route_names import route_template

access_log = logging.getLogger("scoreboard.access")

# nginx's code for a client that went away before the answer: the request was cancelled.
CLIENT_CLOSED_REQUEST = 499
# Probes every few seconds, and Socket.IO transport requests that stay open for a connection's
# life: counted, but logged only at DEBUG and (the transport) kept out of the latency histogram.
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})
SOCKETIO_ROUTE_PREFIX = "/ws/"


@web.middleware
async def track_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bind the request id for the logs, answer it in X-Request-Id, count and time the request."""
    request_id = request_id_from_header(request.headers.get(REQUEST_ID_HEADER))
    started = time.perf_counter()
    status = 500
    with bound_request_id(request_id):
        try:
            response = await handler(request)
            status = response.status
        except web.HTTPException as exc:  # a redirect or error raised rather than returned
            status = exc.status
            exc.headers[REQUEST_ID_HEADER] = request_id
            raise
        except asyncio.CancelledError:
            status = CLIENT_CLOSED_REQUEST
            raise
        finally:
            _record(request, status, time.perf_counter() - started)
    if not response.prepared:  # a websocket has sent its headers already
        response.headers[REQUEST_ID_HEADER] = request_id
    return response


def _record(request: web.Request, status: int, seconds: float) -> None:
    route = route_template(request)
    metrics = request.app[METRICS]
    metrics.count_request(route, status)
    transport = route.startswith(SOCKETIO_ROUTE_PREFIX)
    if not transport:
        metrics.http_request_duration.labels(route=route).observe(seconds)
    level = logging.DEBUG if transport or route in QUIET_ROUTES else logging.INFO
    duration_ms = round(seconds * 1000, 1)
    access_log.log(
        level,
        "%s %s %d %.1fms",
        request.method,
        route,
        status,
        duration_ms,
        extra={
            "method": request.method,
            "route": route,
            "status": status,
            "duration_ms": duration_ms,
        },
    )
