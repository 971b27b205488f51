"""The live page: GET /, the top 10 as it changes; its files are served by static_files.py."""

from __future__ import annotations

import re

from aiohttp import web

from scoreboard.web.static_files import static_bytes

_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?")


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
