"""GET /api/docs: Swagger UI on the server's own OpenAPI document, every file from this server."""

from __future__ import annotations

from aiohttp import web

from scoreboard.web.static_files import static_bytes

# Swagger UI draws its icons from data: URIs in its style sheet; nothing else is loosened.
API_DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


async def api_docs_page(request: web.Request) -> web.Response:
    """The interactive API reference; "Try it out" sends its requests to this server."""
    return web.Response(
        body=static_bytes("api-docs.html"),
        content_type="text/html",
        charset="utf-8",
        headers={"Content-Security-Policy": API_DOCS_CONTENT_SECURITY_POLICY},
    )
