"""The files under /static the two pages load, all from this package's static/ folder."""

from __future__ import annotations

from functools import cache
from importlib import resources

from aiohttp import web

from scoreboard.errors import NotFound

# Only these are served: the folder also holds the pages themselves, notes and licences.
STATIC_FILES = {
    # the live page (GET /)
    "page.js": "text/javascript",
    "page.css": "text/css",
    "scoreboard-client.js": "text/javascript",  # clients/js/index.js
    "socket.io.esm.min.js": "text/javascript",
    "favicon.svg": "image/svg+xml",
    # the API reference (GET /api/docs)
    "api-docs.js": "text/javascript",
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
}


@cache
def static_bytes(name: str) -> bytes:
    """A file of scoreboard/web/static, read once."""
    return resources.files("scoreboard.web").joinpath("static", name).read_bytes()


async def static_file(request: web.Request) -> web.Response:
    """GET /static/{name}: a page's script, style sheet, icon or a vendored library."""
    name = request.match_info["name"]
    content_type = STATIC_FILES.get(name)
    if content_type is None:
        raise NotFound()
    return web.Response(
        body=static_bytes(name),
        content_type=content_type,
        charset=None if content_type.startswith("image/") else "utf-8",
        headers={"Cache-Control": "no-cache"},
    )
