"""A lean Socket.IO v4 client on one websocket: connect with a token, hand on every event."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
import time
from collections.abc import Callable, Sequence
from typing import cast

from bench.endpoint import Endpoint

# Engine.IO 4 packet types (first byte of a text frame), and Socket.IO 5 ones after the "4".
OPEN, CLOSE, PING, PONG = b"0", b"1", b"2", b"3"
SIO_CONNECT, SIO_DISCONNECT, SIO_EVENT, SIO_CONNECT_ERROR = b"40", b"41", b"42", b"44"
TEXT, CONTINUATION, WS_CLOSE, WS_PING, WS_PONG = 0x1, 0x0, 0x8, 0x9, 0xA
MAX_HANDSHAKE_BYTES = 65536

EventHandler = Callable[[bytes, float], None]  # the whole packet: b'42["name", data]'; time


class SocketRefused(Exception):
    """The server refused the upgrade or the Socket.IO connection; the message says why."""


class BoardSocket(asyncio.Protocol):
    """One websocket speaking Engine.IO 4 / Socket.IO 5 to the default namespace, receive-only.

    It holds the boards it names on connect (`auth.boards`), or global when it names none.

    Frames are parsed in `data_received` itself, so an event costs no task switch: a tool that
    holds thousands of these in one process must stay cheaper than the server it measures.
    """

    def __init__(
        self,
        request: bytes,
        token: str,
        boards: Sequence[str] | None,
        on_event: EventHandler,
        on_close: Callable[[], None],
    ) -> None:
        self._request = request
        auth: dict[str, object] = {"token": token}
        if boards is not None:
            auth["boards"] = list(boards)
        self._auth = SIO_CONNECT + json.dumps(auth).encode()
        self._on_event = on_event
        self._on_close = on_close
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._upgraded = False
        self._fragments: list[bytes] = []
        self.connected: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self._transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        received_at = time.time()
        if self._buffer:
            self._buffer += data
            data = bytes(self._buffer)
            self._buffer.clear()
        if not self._upgraded:
            data = self._read_upgrade(data)
        consumed = self._frames(data, received_at)
        if consumed < len(data):
            self._buffer += data[consumed:]

    def _frames(self, data: bytes, received_at: float) -> int:
        """Handle every whole frame in `data`; return how many bytes they took."""
        offset, end = 0, len(data)
        while end - offset >= 2:
            first, second = data[offset], data[offset + 1]
            length = second & 0x7F
            start = offset + 2
            if length == 126:
                if end - start < 2:
                    break
                length = int.from_bytes(data[start : start + 2], "big")
                start += 2
            elif length == 127:
                if end - start < 8:
                    break
                length = int.from_bytes(data[start : start + 8], "big")
                start += 8
            mask = b""
            if second & 0x80:
                if end - start < 4:
                    break
                mask = data[start : start + 4]
                start += 4
            if end - start < length:
                break
            payload = data[start : start + length]
            offset = start + length
            if mask:
                payload = _masked(payload, mask)
            if first == 0x80 | TEXT:
                self._packet(payload, received_at)
            else:
                self._frame(first & 0x0F, bool(first & 0x80), payload, received_at)
        return offset

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.connected.done():
            reason = f"connection closed during the handshake ({exc or 'by the server'})"
            self.connected.set_exception(SocketRefused(reason))
        else:
            self._on_close()

    def close(self) -> None:
        if self._transport is not None and not self.closed:
            self._transport.close()

    def _read_upgrade(self, data: bytes) -> bytes:
        """What follows the 101 response, once it is whole; b"" until then or on refusal."""
        head_end = data.find(b"\r\n\r\n")
        if head_end < 0:
            if len(data) > MAX_HANDSHAKE_BYTES:
                self._refuse("oversized handshake response")
            else:
                self._buffer += data
            return b""
        status_line = data[: data.find(b"\r\n")].decode("latin-1")
        if status_line.split(" ", 2)[1:2] != ["101"]:
            body = data[head_end + 4 :][:200].decode("utf-8", "replace")
            self._refuse(f"websocket upgrade refused: {status_line} {body}".strip())
            return b""
        self._upgraded = True
        return data[head_end + 4 :]

    def _frame(self, opcode: int, final: bool, payload: bytes, received_at: float) -> None:
        if opcode == TEXT or opcode == CONTINUATION:
            self._fragments.append(payload)
            if final:
                message = b"".join(self._fragments)
                self._fragments.clear()
                self._packet(message, received_at)
        elif opcode == WS_PING:
            self._send(WS_PONG, payload)
        elif opcode == WS_CLOSE:
            self._send(WS_CLOSE, payload[:2])
            self._refuse("the server closed the websocket")

    def _packet(self, packet: bytes, received_at: float) -> None:
        kind = packet[:2]
        if kind == SIO_EVENT:
            self._on_event(packet, received_at)
        elif packet == PING:
            self._send(TEXT, PONG)
        elif kind[:1] == OPEN:
            self._send(TEXT, self._auth)
        elif kind == SIO_CONNECT:
            if not self.connected.done():
                self.connected.set_result(None)
        elif kind == SIO_CONNECT_ERROR:
            self._refuse(_error_message(packet[2:]))
        elif kind == SIO_DISCONNECT or packet[:1] == CLOSE:
            self._refuse("the server ended the Socket.IO session")

    def _refuse(self, reason: str) -> None:
        if not self.connected.done():
            self.connected.set_exception(SocketRefused(reason))
        if self._transport is not None:
            self._transport.close()

    def _send(self, opcode: int, payload: bytes) -> None:
        if self._transport is None or self._transport.is_closing():
            return
        mask = os.urandom(4)
        length = len(payload)
        if length < 126:
            header = bytes((0x80 | opcode, 0x80 | length))
        elif length < 65536:
            header = bytes((0x80 | opcode, 0x80 | 126)) + length.to_bytes(2, "big")
        else:
            header = bytes((0x80 | opcode, 0x80 | 127)) + length.to_bytes(8, "big")
        self._transport.write(header + mask + _masked(payload, mask))


def _masked(payload: bytes, mask: bytes) -> bytes:
    length = len(payload)
    key = (mask * (length // 4 + 1))[:length]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(length, "big")


def _error_message(data: bytes) -> str:
    try:
        detail = json.loads(data)
    except ValueError:
        return data.decode("utf-8", "replace")
    if isinstance(detail, dict) and "message" in detail:
        return str(detail["message"])
    return str(detail)


def upgrade_request(endpoint: Endpoint, socket_path: str) -> bytes:
    """The HTTP request that opens an Engine.IO websocket on `socket_path`."""
    key = base64.b64encode(os.urandom(16)).decode()
    path = f"{endpoint.base_path}/{socket_path.strip('/')}/?EIO=4&transport=websocket"
    return (
        f"GET {path} HTTP/1.1\r\nHost: {endpoint.host_header}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


async def connect_board_socket(
    endpoint: Endpoint,
    socket_path: str,
    token: str,
    on_event: EventHandler,
    on_close: Callable[[], None] = lambda: None,
    timeout: float = 10.0,
    boards: Sequence[str] | None = None,
) -> BoardSocket:
    """Open a websocket and connect to Socket.IO holding `boards` (None: none named, so global);
    raise SocketRefused or OSError if that fails."""
    loop = asyncio.get_running_loop()
    request = upgrade_request(endpoint, socket_path)
    context = ssl.create_default_context() if endpoint.secure else None
    async with asyncio.timeout(timeout):
        _, protocol = await loop.create_connection(
            lambda: BoardSocket(request, token, boards, on_event, on_close),
            endpoint.host,
            endpoint.port,
            ssl=context,
        )
        try:
            await protocol.connected
        except BaseException:
            protocol.close()
            raise
    return protocol


async def read_snapshot(
    endpoint: Endpoint, socket_path: str, token: str, timeout: float = 10.0
) -> dict:
    """The board a freshly connected client receives first (its `leaderboardUpdate` payload)."""
    loop = asyncio.get_running_loop()
    first: asyncio.Future[bytes] = loop.create_future()

    def on_event(packet: bytes, _: float) -> None:
        if not first.done():
            first.set_result(packet[2:])

    socket = await connect_board_socket(endpoint, socket_path, token, on_event, timeout=timeout)
    try:
        async with asyncio.timeout(timeout):
            data = await first
    finally:
        socket.close()
    payload = json.loads(data)[1]
    return dict(payload)
