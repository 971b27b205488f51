"""HTTP over a bare socket: requests no client library would send, and answers as they came."""

from __future__ import annotations

import asyncio
import json
import ssl
from dataclasses import dataclass
from typing import Any

from multidict import CIMultiDict

TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class RawAnswer:
    """The status, headers and body of one response, read byte for byte."""

    status: int
    headers: CIMultiDict[str]
    body: bytes

    def json(self) -> Any:
        assert self.headers.get("Content-Type", "").startswith("application/json"), self
        return json.loads(self.body)


async def exchange(
    port: int, request: bytes, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None
) -> RawAnswer:
    """Send `request` as is and read the response head, then its Content-Length of body."""
    reader, writer = await asyncio.open_connection(host, port, ssl=tls)
    try:
        writer.write(request)
        await writer.drain()
        return await read_answer(reader)
    finally:
        writer.close()
        await writer.wait_closed()


async def read_answer(reader: asyncio.StreamReader) -> RawAnswer:
    """The next response on a connection: its head, then its Content-Length of body."""
    async with asyncio.timeout(TIMEOUT_SECONDS):
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")[:-2]
        headers: CIMultiDict[str] = CIMultiDict()
        for line in lines:
            name, _, value = line.partition(":")
            headers.add(name.strip(), value.strip())
        length = int(headers.get("Content-Length", "0"))
        body = await reader.readexactly(length)
    return RawAnswer(int(status_line.split(" ")[1]), headers, body)


def get(target: str, *headers: str) -> bytes:
    """A well-formed HTTP/1.1 GET of `target` with these header lines."""
    lines = [f"GET {target} HTTP/1.1", "Host: localhost", *headers, "", ""]
    return "\r\n".join(lines).encode()
