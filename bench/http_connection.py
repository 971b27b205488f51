"""A lean keep-alive HTTP/1.1 connection that carries one prebuilt request at a time."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from typing import cast

from bench.endpoint import Endpoint

MAX_HEAD_BYTES = 65536


class ConnectionLost(Exception):
    """The connection closed or broke before a whole response arrived."""


@dataclass(frozen=True)
class Response:
    """A response's status and body."""

    status: int
    body: bytes


class HttpConnection(asyncio.Protocol):
    """Sends raw request bytes and parses the response by hand (Content-Length or chunked).

    A general client spends more per request than the service's own hot path; this one keeps
    the load tool's share of the machine small.
    """

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[Response] | None = None
        self._status = 0
        self._body_start = -1
        self._length = -1  # body length; -1 chunked, -2 until the connection closes
        self._keep_alive = True
        self.closed = False

    @classmethod
    async def open(cls, endpoint: Endpoint, timeout: float) -> HttpConnection:
        """Connect to the endpoint (TLS for https); raises OSError or TimeoutError."""
        loop = asyncio.get_running_loop()
        context = ssl.create_default_context() if endpoint.secure else None
        async with asyncio.timeout(timeout):
            _, protocol = await loop.create_connection(
                cls, endpoint.host, endpoint.port, ssl=context
            )
        return protocol

    @property
    def reusable(self) -> bool:
        return not self.closed and self._keep_alive and self._waiter is None

    async def request(self, raw: bytes) -> Response:
        """Send one request and wait for its whole response; ConnectionLost if the link breaks."""
        assert self._transport is not None and self._waiter is None
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(raw)
        try:
            return await self._waiter
        finally:
            self._waiter = None

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._body_start < 0 and not self._read_head():
            return
        body = self._body()
        if body is not None:
            self._finish(Response(self._status, body))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._length == -2 and self._body_start >= 0:
            self._finish(Response(self._status, bytes(self._buffer[self._body_start :])))
        elif self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionLost(str(exc or "closed by the server")))

    def _read_head(self) -> bool:
        buffer = self._buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > MAX_HEAD_BYTES:
                self._fail("oversized response head")
            return False
        lines = bytes(buffer[:end]).split(b"\r\n")
        try:
            self._status = int(lines[0].split(b" ", 2)[1])
        except (IndexError, ValueError):
            self._fail(f"not an HTTP response: {lines[0][:80]!r}")
            return False
        self._length = -2
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                if not value.strip().isdigit():
                    self._fail(f"bad Content-Length: {value[:40]!r}")
                    return False
                self._length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                self._length = -1
            elif name == b"connection" and value.strip().lower() == b"close":
                self._keep_alive = False
        self._body_start = end + 4
        return True

    def _body(self) -> bytes | None:
        start, buffer = self._body_start, self._buffer
        if self._length >= 0:
            if len(buffer) - start < self._length:
                return None
            return bytes(buffer[start : start + self._length])
        if self._length == -1:
            try:
                return _dechunked(buffer, start)
            except ConnectionLost as exc:
                self._fail(str(exc))
        return None

    def _finish(self, response: Response) -> None:
        self._buffer.clear()
        self._body_start = -1
        self._length = -1
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(response)
        if not self._keep_alive:
            self.close()

    def _fail(self, reason: str) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionLost(reason))
        self.close()


def _dechunked(buffer: bytearray, start: int) -> bytes | None:
    """The body if every chunk up to the last (size 0) has arrived, else None."""
    parts: list[bytes] = []
    position = start
    while True:
        line_end = buffer.find(b"\r\n", position)
        if line_end < 0:
            return None
        try:
            size = int(bytes(buffer[position:line_end]).split(b";")[0], 16)
        except ValueError:
            raise ConnectionLost("bad chunk size") from None
        chunk_start = line_end + 2
        if size == 0:
            return b"".join(parts) if buffer.find(b"\r\n", chunk_start) >= 0 else None
        if len(buffer) < chunk_start + size + 2:
            return None
        parts.append(bytes(buffer[chunk_start : chunk_start + size]))
        position = chunk_start + size + 2
