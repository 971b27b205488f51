"""Broadcasts encoded once and written straight to every websocket, instead of a task per client.

python-socketio sends a broadcast by starting one task per client, each of which queues the
packet for that connection's Engine.IO writer task, which encodes it and writes a websocket frame:
two task switches and an encoding per client per push. With thousands of clients a push of the
top 10 then keeps the event loop busy long enough to starve the POSTs. Here a broadcast becomes
one websocket frame, built once, written to each idle websocket's transport in one loop over the
clients, which gives way to other work every few hundred clients. A connection whose writer
still has packets of its own in flight (the CONNECT answer, a snapshot, a pong) gets the
broadcast through its queue as before, so no client sees packets out of order. A node that
cannot keep up skips to the newest board instead of queueing old ones.

This reaches into python-engineio's socket queue and aiohttp's websocket writer, which are not
public API; requirements.txt pins both, and the Socket.IO tests (the real JavaScript client
included) exercise this path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from typing import Any
from weakref import WeakKeyDictionary

import engineio
import socketio
from aiohttp import web
from engineio import packet as engineio_packet
from engineio.async_drivers import aiohttp as engineio_aiohttp
from socketio import packet as socketio_packet

log = logging.getLogger(__name__)

# Clients written to between two turns of the event loop: about 2 ms of writes at a time.
CLIENTS_PER_SLICE = 250

# Websocket frames whose first byte says: final fragment, text (RFC 6455 section 5.2).
_FINAL_TEXT = 0x81


def text_frame(payload: bytes) -> bytes:
    """An unmasked (server-to-client) websocket text frame carrying `payload`."""
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", _FINAL_TEXT, length)
    elif length < 65536:
        header = struct.pack("!BBH", _FINAL_TEXT, 126, length)
    else:
        header = struct.pack("!BBQ", _FINAL_TEXT, 127, length)
    return header + payload


def board_version(arguments: list[Any]) -> int | None:
    """The `version` of a board event's payload; None for an event that carries none."""
    payload = arguments[0] if len(arguments) == 1 else None
    version = payload.get("version") if isinstance(payload, dict) else None
    return version if type(version) is int else None


class DirectWebSocket(engineio_aiohttp.WebSocket):  # type: ignore[misc]
    """python-engineio's aiohttp websocket, registered while open so a broadcast can write to it.

    Compression is off: a deflate stream is per connection, so a compressed frame cannot be
    built once for everyone. A top-10 push is under 1 KiB.
    """

    open_sockets: dict[str, DirectWebSocket]

    async def __call__(self, environ: dict[str, Any]) -> web.WebSocketResponse:
        request: web.Request = environ["aiohttp.request"]
        self._sock = web.WebSocketResponse(
            max_msg_size=self.server.max_http_buffer_size, compress=False
        )
        await self._sock.prepare(request)
        self.environ = environ
        engine_socket = self.handler.__self__
        self.open_sockets[engine_socket.sid] = self
        try:
            await self.handler(self)
        finally:
            if self.open_sockets.get(engine_socket.sid) is self:
                del self.open_sockets[engine_socket.sid]
        return self._sock

    def write_if_idle(self, frame: bytes) -> bool:
        """Write `frame` now if nothing else is on its way to this client; else return False."""
        engine_socket = self.handler.__self__
        if not engine_socket.upgraded or engine_socket.closing or engine_socket.closed:
            return False
        queue: asyncio.Queue[Any] = engine_socket.queue
        # A packet counts as unfinished from when it is queued until the writer has taken it
        # and is about to write it; a paused transport means the writer is waiting to write more.
        if not queue.empty() or queue._unfinished_tasks:  # type: ignore[attr-defined]
            return False
        sock = self._sock
        writer = sock._writer if sock is not None else None
        if writer is None or sock.closed or writer.protocol._paused:
            return False
        transport = writer.transport
        if transport.is_closing():
            return False
        transport.write(frame)
        return True


class FanOut:
    """The websockets open on this node, and the broadcast that writes to them directly."""

    def __init__(self) -> None:
        self.sockets: dict[str, DirectWebSocket] = {}
        self.written = 0
        self.queued = 0
        # (namespace, event) -> the newest broadcast not sent yet; it replaces an older one.
        self._pending: dict[tuple[str, str], tuple[FanOutManager, list[Any]]] = {}
        self._sender: asyncio.Task[None] | None = None
        # Engine.IO socket -> the newest board `version` on its way to that client.
        self._versions: WeakKeyDictionary[Any, int] = WeakKeyDictionary()

    def claim(self, engine_socket: Any, version: int) -> bool:
        """Note that board `version` goes to this connection; False if it has had it or a newer.

        Boards reach a node by two paths, the snapshot read on connect and the broadcasts, and
        from several workers; this keeps each client's boards in version order whatever the race.
        """
        if self._versions.get(engine_socket, -1) >= version:
            return False
        self._versions[engine_socket] = version
        return True

    def counts(self) -> dict[str, int]:
        return {"direct": self.written, "queued": self.queued}

    def install(self, engine: engineio.AsyncServer) -> None:
        """Make `engine` open its websockets through DirectWebSocket, registered here."""
        sockets = self.sockets

        class RegisteredWebSocket(DirectWebSocket):
            open_sockets = sockets

        # The driver table is shared by every server of the process: give this one its own copy.
        engine._async = {**engine._async, "websocket": RegisteredWebSocket}

    def broadcast(
        self, manager: FanOutManager, namespace: str, event: str, data: list[Any]
    ) -> None:
        """Send `event` with `data` (its arguments) to every client of `namespace` on this node.

        Sending happens in a task of its own. A broadcast of an event that arrives while an
        earlier one of the same event still waits replaces it: each carries the whole state (the
        top 10), so a busy node skips to the newest rather than working through a backlog.
        """
        self._pending.pop((namespace, event), None)  # re-inserted last, behind other events
        self._pending[(namespace, event)] = (manager, data)
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_pending())

    async def close(self) -> None:
        """Drop what is not sent yet and stop sending (on shutdown)."""
        self._pending.clear()
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender

    async def _send_pending(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            (namespace, event), (manager, data) = next(iter(self._pending.items()))
            del self._pending[(namespace, event)]
            started = loop.time()
            try:
                await self._send(manager, namespace, event, data)
            except Exception:  # the next broadcast carries the state anyway; keep sending
                log.exception("broadcast of %s failed", event)
            if self._pending:
                # As long again before the next one: at most about half of this node's time
                # goes to pushing, whatever the clients and the rate, and requests still get in.
                await asyncio.sleep(loop.time() - started)

    async def _send(
        self, manager: FanOutManager, namespace: str, event: str, data: list[Any]
    ) -> None:
        encoded = manager.server.packet_class(
            socketio_packet.EVENT, namespace=namespace, data=[event, *data]
        ).encode()
        if isinstance(encoded, list):  # binary attachments: more than one frame per client
            await manager.emit_one_by_one(event, data, namespace)
            return
        message = engineio_packet.Packet(engineio_packet.MESSAGE, encoded)
        frame = text_frame(message.encode().encode())
        version = board_version(data)
        engine = manager.server.eio
        waiting = []
        participants = list(manager.get_participants(namespace, None))
        for count, (sid, eio_sid) in enumerate(participants, start=1):
            if count % CLIENTS_PER_SLICE == 0:
                await asyncio.sleep(0)  # let requests and other connections in between
            if manager.is_pre_connected(sid, namespace):
                continue  # not answered CONNECT yet: it gets a snapshot once connected
            engine_socket = engine.sockets.get(eio_sid)
            if engine_socket is None:
                continue  # gone while this loop gave way
            if version is not None and not self.claim(engine_socket, version):
                continue
            socket = self.sockets.get(eio_sid)
            if socket is not None and socket.write_if_idle(frame):
                self.written += 1
            else:
                waiting.append(engine.send_packet(eio_sid, message))
        self.queued += len(waiting)
        if waiting:
            await asyncio.gather(*waiting)


class FanOutManager(socketio.AsyncManager):
    """The client manager of the single-process mode: a plain broadcast goes through a FanOut.

    A broadcast with a room, a skipped client or a callback takes python-socketio's own path.
    """

    fan_out: FanOut

    async def emit(  # noqa: PLR0913 - python-socketio's signature
        self,
        event: str,
        data: Any,
        namespace: str,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        room = to or room
        if room is not None or skip_sid is not None or callback is not None:
            await super().emit(
                event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, **kwargs
            )
            return
        if namespace not in self.rooms:
            return
        if isinstance(data, tuple):
            arguments = list(data)
        else:
            arguments = [] if data is None else [data]
        self.fan_out.broadcast(self, namespace, event, arguments)

    async def emit_one_by_one(self, event: str, data: list[Any], namespace: str) -> None:
        await super().emit(event, tuple(data), namespace)


class FanOutRedisManager(socketio.AsyncRedisManager, FanOutManager):  # type: ignore[misc]
    """AsyncRedisManager whose local delivery, of this node's emits and other nodes', is a FanOut.

    AsyncPubSubManager delivers locally through the next emit after itself in the method
    resolution order, which this base order makes FanOutManager.emit.
    """


def local_manager(fan_out: FanOut) -> FanOutManager:
    manager = FanOutManager()
    manager.fan_out = fan_out
    return manager


def redis_manager(fan_out: FanOut, url: str, channel: str) -> FanOutRedisManager:
    manager = FanOutRedisManager(url, channel=channel)
    manager.fan_out = fan_out
    return manager
