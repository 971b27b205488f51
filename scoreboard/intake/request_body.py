"""Reading a request body under our own error handling: every bad encoding gets a clear 4xx.

aiohttp's own decompression is switched off (web/app.py): a truncated raw-deflate body made it
wait for data that never comes, holding the request open until the client gave up. Here a body
is decompressed in one call, bounded to MAX_BODY_BYTES, and must end where its coding says.
"""

from __future__ import annotations

import zlib

from aiohttp import web

from scoreboard.api.endpoints import MAX_BODY_BYTES
from scoreboard.errors import InvalidRequest, UnsupportedMediaType

IDENTITY = frozenset({"", "identity"})
# zlib's window bits: 16 + 15 reads a gzip member, 15 a zlib stream, -15 raw deflate (which some
# clients send as "deflate", although HTTP means the zlib format).
WINDOW_BITS = {"gzip": (31,), "x-gzip": (31,), "deflate": (15, -15)}


async def read_body(request: web.Request) -> bytes:
    """The body, decoded per its Content-Encoding; 415 for a coding we do not read, 400 if bad."""
    coding = request.headers.get("Content-Encoding", "").strip().lower()
    if coding not in IDENTITY and coding not in WINDOW_BITS:
        raise UnsupportedMediaType("Content-Encoding must be gzip, deflate or identity")
    raw = await request.read()  # bounded by client_max_size
    return raw if coding in IDENTITY else decoded(raw, coding)


def decoded(raw: bytes, coding: str, limit: int = MAX_BODY_BYTES) -> bytes:
    """`raw` decompressed as `coding`: whole, at most `limit` bytes, nothing after its end."""
    for window_bits in WINDOW_BITS[coding]:
        decompressor = zlib.decompressobj(window_bits)
        try:
            body = decompressor.decompress(raw, limit + 1)
        except zlib.error:
            continue
        if len(body) > limit:
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(body))
        if decompressor.eof and not decompressor.unused_data:
            return body
    raise InvalidRequest(f"Request body could not be decoded as {coding}")
