"""The live page: GET / and the files under /static it loads, all from this package."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from aiohttp import web

from scoreboard.errors import NotFound

# Only these are served: the folder also holds notes that are not for the browser.
STATIC_FILES = {
    "page.js": "text/javascript",
    "page.css": "text/css",
    "socket.io.min.js": "text/javascript",
    "favicon.svg": "image/svg+xml",
}
_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?")


@cache
def static_bytes(name: str) -> bytes:
    """A file of scoreboard/web/static, read once."""
    return resources.files("scoreboard.web").joinpath("static", name).read_bytes()


def page_content_security_policy(host: str) -> str:
    """Scripts, styles and images from this site only; Socket.IO back to the same host."""
    connect = "'self'"
    if _HOST.fullmatch(host):
        # 'self' covers ws: and wss: in CSP Level 3; older browsers need them spelled out.
        connect += f" ws://{host} wss://{host}"
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        f"connect-src {connect}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


async def live_page(request: web.Request) -> web.Response:
    """GET /: the page that shows the top 10 as it changes."""
    return web.Response(
        body=static_bytes("index.html"),
        content_type="text/html",
        charset="utf-8",
        headers={
            "Content-Security-Policy": page_content_security_policy(request.host),
            "Cache-Control": "no-cache",
        },
    )


async def static_file(request: web.Request) -> web.Response:
    """GET /static/{name}: the page's script, style sheet, icon and the Socket.IO client."""
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
