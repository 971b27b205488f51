"""The live page: GET /, the top 10 as it changes; its files are served by static_files.py."""

from __future__ import annotations

import base64
import hashlib
import re
from functools import cache

from aiohttp import web

from scoreboard.web.static_files import static_bytes

_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?")
_IMPORT_MAP = re.compile(rb'<script type="importmap">(.*?)</script>', re.DOTALL)


@cache
def import_map_hash() -> str:
    """The page's one inline script, its import map, allowed by its hash: the browser's way to
    let the client's `import "socket.io-client"` find the vendored module."""
    [import_map] = _IMPORT_MAP.findall(static_bytes("index.html"))
    return f"'sha256-{base64.b64encode(hashlib.sha256(import_map).digest()).decode()}'"


def page_content_security_policy(host: str) -> str:
    """Scripts (and the import map), styles and images from this site only; Socket.IO back to
    the same host."""
    connect = "'self'"
    if _HOST.fullmatch(host):
        # 'self' covers ws: and wss: in CSP Level 3; older browsers need them spelled out.
        connect += f" ws://{host} wss://{host}"
    return (
        f"default-src 'none'; script-src 'self' {import_map_hash()}; style-src 'self'; "
        f"img-src 'self'; connect-src {connect}; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
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
