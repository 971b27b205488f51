"""No `Server` header: aiohttp's names the Python and aiohttp versions to anyone who asks."""

from __future__ import annotations

from aiohttp import hdrs, web


def drop_server_header(response: web.StreamResponse) -> None:
    response.headers.popall(hdrs.SERVER, None)


async def hide_server_software(request: web.Request, response: web.StreamResponse) -> None:
    """An on_response_prepare hook: aiohttp sets `Server` just before such hooks run."""
    drop_server_header(response)
