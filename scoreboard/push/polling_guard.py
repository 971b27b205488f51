"""Long-polling requests a misbehaving client sends get a clear 4xx, and soon.

python-engineio answers a packet type no client sends (open, ping, noop) by closing the session
and holding the POST until the client polls again, which a misbehaving client never does; the
closed session is swept by engineio's own service task, so only the request needs an end. A
request for a session closed but not yet swept raises KeyError out of engineio: a 400 too.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from scoreboard.web import responses
from scoreboard.web.middlewares import Handler

log = logging.getLogger(__name__)

# A POST only queues the client's packets: milliseconds, even on a busy node.
POLLING_POST_TIMEOUT_SECONDS = 1.0


def polling_guard(socketio_path: str) -> web.middleware:  # type: ignore[valid-type]
    """A middleware for the Socket.IO endpoint at `/{socketio_path}/`."""
    endpoint = f"/{socketio_path}/"

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path != endpoint:
            return await handler(request)
        try:
            if request.method != "POST":
                return await handler(request)
            async with asyncio.timeout(POLLING_POST_TIMEOUT_SECONDS):
                return await handler(request)
        except KeyError:
            return responses.error(400, "Invalid session")
        except TimeoutError:
            log.warning("Engine.IO POST held past %gs: answered 400", POLLING_POST_TIMEOUT_SECONDS)
            return responses.error(400, "Engine.IO payload refused")

    return guard
