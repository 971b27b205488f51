"""Every websocket this node has open, so a SIGTERM closes them at once rather than at a timeout."""

from __future__ import annotations

import asyncio
import contextlib
from weakref import WeakSet

from aiohttp import WSCloseCode, web

from scoreboard.web.keys import OPEN_WEBSOCKETS

CLOSE_TIMEOUT_SECONDS = 5.0


def close_websockets_on_shutdown(app: web.Application) -> None:
    """Track websockets as they open and close them all when the node shuts down.

    Engine.IO's own close sends a CLOSE packet that browsers ignore: without a websocket close
    frame, a browser would hold its connection until aiohttp's shutdown timeout (twice 10 s)
    and only then reconnect to another node.
    """
    app[OPEN_WEBSOCKETS] = WeakSet()
    app.on_response_prepare.append(_remember)
    app.on_shutdown.append(_close_all)


async def _remember(request: web.Request, response: web.StreamResponse) -> None:
    if isinstance(response, web.WebSocketResponse):
        request.app[OPEN_WEBSOCKETS].add(response)


async def _close_all(app: web.Application) -> None:
    websockets = [ws for ws in app[OPEN_WEBSOCKETS] if not ws.closed]
    closing = asyncio.gather(
        *(ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown") for ws in websockets),
        return_exceptions=True,
    )
    # A client that never answers the close frame is left to aiohttp's own shutdown timeout.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(closing, CLOSE_TIMEOUT_SECONDS)
