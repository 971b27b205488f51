"""Turns every failure into the documented {"status":"error","message":…} body, no traceback."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from scoreboard.errors import ApiError, RateLimited, ServiceUnavailable
from scoreboard.ops.log_throttle import LogThrottle
from scoreboard.web import responses
from scoreboard.web.route_names import route_template

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# A 503 says a backing service is down or the node sheds load: the log says which, once in a while.
UNAVAILABLE_LOG_INTERVAL_SECONDS = 10.0
_unavailable_lines: dict[str, LogThrottle] = {}

_HTTP_MESSAGES = {
    404: "Not found",
    405: "Method not allowed",
    413: "Request body too large",
}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except RateLimited as exc:
        return responses.error(exc.status, exc.message, {"Retry-After": str(exc.retry_after)})
    except ServiceUnavailable as exc:
        _log_unavailable(request, exc)
        return responses.error(exc.status, exc.message, {"Retry-After": str(exc.retry_after)})
    except ApiError as exc:
        return responses.error(exc.status, exc.message)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = _HTTP_MESSAGES.get(exc.status, exc.reason)
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return responses.error(exc.status, message, headers)
    except Exception:
        # The template, not the path: a path can carry anything, an encoded line break included.
        log.exception("unhandled error on %s %s", request.method, route_template(request))
        return responses.error(500, "Internal server error")


def _log_unavailable(request: web.Request, exc: ServiceUnavailable) -> None:
    """One WARNING line per kind of 503 and interval: the cause, and how many went unlogged."""
    kind = type(exc).__name__
    throttle = _unavailable_lines.setdefault(kind, LogThrottle(UNAVAILABLE_LOG_INTERVAL_SECONDS))
    left_out = throttle.admit()
    if left_out is None:
        return
    cause = exc.__cause__
    log.warning(
        "503 %s on %s %s: %s%s",
        kind,
        request.method,
        route_template(request),
        f"{type(cause).__name__}: {cause}" if cause is not None else exc.message,
        f" ({left_out} more since the last line)" if left_out else "",
    )
