"""GET /api/openapi.json and /api/asyncapi.json: the documents of scoreboard/api, built once when
the app is made."""

from __future__ import annotations

from aiohttp import web

from scoreboard.web.keys import ASYNCAPI_DOCUMENT, OPENAPI_DOCUMENT


async def get_openapi(request: web.Request) -> web.Response:
    """No token needed, so integrators can read it first."""
    return web.Response(
        body=request.app[OPENAPI_DOCUMENT], content_type="application/json", charset="utf-8"
    )


async def get_asyncapi(request: web.Request) -> web.Response:
    """The Socket.IO events; no token needed either."""
    return web.Response(
        body=request.app[ASYNCAPI_DOCUMENT], content_type="application/json", charset="utf-8"
    )
