"""Reading a request body under our own error handling: every bad encoding gets a clear 4xx."""

from __future__ import annotations

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from scoreboard.errors import InvalidRequest, UnsupportedMediaType

# What aiohttp decodes itself; a body in any other coding would reach us still encoded.
DECODED_CODINGS = frozenset({"identity", "gzip", "x-gzip", "deflate"})


async def read_body(request: web.Request) -> bytes:
    """The body, decoded per its Content-Encoding; 415 for a coding we do not read, 400 if bad."""
    coding = request.headers.get("Content-Encoding", "identity").strip().lower() or "identity"
    if coding not in DECODED_CODINGS:
        raise UnsupportedMediaType("Content-Encoding must be gzip, deflate or identity")
    try:
        return await request.read()
    except RequestPayloadError:
        raise InvalidRequest(f"Request body could not be decoded as {coding}") from None
