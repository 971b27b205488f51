"""Every use of python-socketio, python-engineio and aiohttp beyond their public API; checked.

What this module relies on, and why
-----------------------------------
Speed (the direct fan-out, `DirectWrites`): a broadcast becomes one websocket frame, built once,
written to each idle websocket's transport in one loop over the clients. That needs

- engineio's aiohttp `WebSocket` (its constructor, `__call__(environ)` and `_sock`), subclassed as
  `DirectWebSocket` to open websockets without compression and register each open one; the
  server's driver table `engineio.AsyncServer._async["websocket"]`, replaced per server; and
  `AsyncSocket._upgrade_websocket` handing the websocket its bound `_websocket_handler`, whose
  `__self__` is the Engine.IO socket;
- the Engine.IO socket's `upgraded`, `closing`, `closed` and `queue` (an asyncio.Queue whose
  `_unfinished_tasks` tells whether its writer task is still busy with a packet);
- aiohttp's `WebSocketResponse._writer`, its `transport`, and its protocol's `writing_paused`;
- `socketio.AsyncServer.eio`, `.manager`, `.packet_class`; `engineio.AsyncServer.sockets`;
  `AsyncManager.is_pre_connected`; and, with Redis, `AsyncPubSubManager` delivering other nodes'
  broadcasts through the next `emit` in the method resolution order (`FanOutRedisManager`).

Lifecycle: closing every Engine.IO socket on SIGTERM without waiting for long-polls
(`engineio.AsyncServer.sockets`, `AsyncSocket.close(wait, reason)`, `.reason`); closing the Redis
connections of the pub/sub listener and of a write-only emitter (`.redis`, `.pubsub`); counting
clients past authentication (`AsyncManager.is_connected`); counting the pushes heard on the shared
channel (`AsyncPubSubManager._handle_emit` and `.host_id`).

Check and fallback
------------------
`start` checks each of these (attributes, signatures, classes, and how a probe packet encodes).
If any differs it logs one warning naming every difference and what this node does instead:
broadcasts go through python-socketio's own emit, one client at a time (slower, same order);
websockets are still closed on shutdown by `open_websockets`, long-polls end on their own; the
client count includes clients still authenticating; pushes heard on the shared channel may go
uncounted. The gauge `scoreboard_fan_out_direct` says which path is in use. requirements.txt
pins all three libraries; tests run both paths.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import engineio
import socketio
from aiohttp import web
from aiohttp.base_protocol import BaseProtocol
from aiohttp.http import WebSocketWriter
from engineio import packet as engineio_packet
from engineio.async_drivers import aiohttp as engineio_aiohttp
from engineio.async_socket import AsyncSocket
from socketio import packet as socketio_packet

from scoreboard.push.broadcast import NAMESPACE, board_room, room_board
from scoreboard.push.fan_out import DIRECT, QUEUED, FanOut, Participant, board_stamp

log = logging.getLogger(__name__)

# Clients written to between two turns of the event loop: about 2 ms of writes at a time.
CLIENTS_PER_SLICE = 250
# The start-up probe of python-socketio's pub/sub delivery touches no network: it is instant.
PROBE_TIMEOUT_SECONDS = 1.0
LISTENER_STOP_ATTEMPTS = 10
LISTENER_STOP_WAIT_SECONDS = 0.2

# Websocket frames whose first byte says: final fragment, text (RFC 6455 section 5.2).
_FINAL_TEXT = 0x81

# What a node does instead when an internal a feature needs differs.
FAN_OUT = "broadcasts go through python-socketio's own emit, one client at a time"
SHUTDOWN = "on shutdown long-polling clients are left to time out"
LISTENER = "the pub/sub listener's Redis connections stay open until the process exits"
COUNT = "scoreboard_socketio_clients counts clients still authenticating too"
HEARD = "scoreboard_pushes_received_total may not count the shared channel's pushes"
FEATURES = (FAN_OUT, SHUTDOWN, LISTENER, COUNT, HEARD)


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
        if writer is None or sock.closed or writer.protocol.writing_paused:
            return False
        transport = writer.transport
        if transport.is_closing():
            return False
        transport.write(frame)
        return True


class DirectWrites:
    """Each broadcast encoded once and written straight to every idle websocket of this node.

    A connection whose writer still has packets of its own in flight (the CONNECT answer, a
    snapshot, a pong), or that long-polls, gets the broadcast through its Engine.IO queue, so no
    client sees packets out of order.
    """

    def __init__(self, sio: socketio.AsyncServer) -> None:
        self._sio = sio
        self._engine = sio.eio
        self._manager = sio.manager
        self._open_sockets: dict[str, DirectWebSocket] = {}

    def install(self) -> None:
        """Make the server open its websockets through DirectWebSocket, registered here."""
        sockets = self._open_sockets

        class RegisteredWebSocket(DirectWebSocket):
            open_sockets = sockets

        # The driver table is shared by every server of the process: give this one its own copy.
        self._engine._async = {**self._engine._async, "websocket": RegisteredWebSocket}

    async def send(
        self, fan_out: FanOut, namespace: str, event: str, data: list[Any], to: list[Participant]
    ) -> bool:
        encoded = self._sio.packet_class(
            socketio_packet.EVENT, namespace=namespace, data=[event, *data]
        ).encode()
        if isinstance(encoded, list):  # binary attachments: more than one frame per client
            return False
        message = engineio_packet.Packet(engineio_packet.MESSAGE, encoded)
        frame = text_frame(message.encode().encode())
        stamp = board_stamp(data)
        engine, manager = self._engine, self._manager
        waiting, waiting_sids = [], []
        try:
            for count, (sid, eio_sid) in enumerate(to, start=1):
                if count % CLIENTS_PER_SLICE == 0:
                    await asyncio.sleep(0)  # let requests and other connections in between
                if manager.is_pre_connected(sid, namespace):
                    continue  # not answered CONNECT yet: it gets a snapshot once connected
                if eio_sid not in engine.sockets or fan_out.has_had(sid, stamp):
                    continue  # gone while this loop gave way, or has a newer board already
                socket = self._open_sockets.get(eio_sid)
                if socket is not None and socket.write_if_idle(frame):
                    fan_out.delivered(sid, stamp, DIRECT)
                else:
                    waiting.append(engine.send_packet(eio_sid, message))
                    waiting_sids.append(sid)
        except BaseException:
            for send in waiting:
                send.close()  # never started: those clients get the broadcast from the fallback
            raise
        await fan_out.await_sends(waiting, waiting_sids, stamp, QUEUED)
        return True


class FanOutManager(socketio.AsyncManager):
    """The client manager of the single-process mode: a broadcast to all or to a board's room
    goes through a FanOut.

    One to another room (a client's own: a snapshot), with a skipped client or with a callback
    takes python-socketio's own path.
    """

    fan_out: FanOut
    # The features (FAN_OUT, …) whose internals differ: all of them until `start` checks.
    unavailable: frozenset[str] = frozenset(FEATURES)

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str | None = None,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        room = to or room
        to_a_board = room is None or room_board(room) is not None
        if not to_a_board or skip_sid is not None or callback is not None:
            await super().emit(
                event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, **kwargs
            )
            return
        if isinstance(data, tuple):
            arguments = list(data)
        else:
            arguments = [] if data is None else [data]
        self.fan_out.broadcast(self, namespace or NAMESPACE, event, arguments, room=room)

    async def emit_to_client(self, sid: str, event: str, data: list[Any], namespace: str) -> None:
        await super().emit(event, tuple(data), namespace, to=sid)


class FanOutRedisManager(socketio.AsyncRedisManager, FanOutManager):  # type: ignore[misc]
    """AsyncRedisManager whose local delivery, of this node's emits and other nodes', is a FanOut.

    AsyncPubSubManager delivers locally through the next emit after itself in the method
    resolution order, which this base order makes FanOutManager.emit. The shared channel it
    listens to carries pushes of workers of an older version (push/channels.py); `heard` counts
    them by board.
    """

    listeners: set[asyncio.Task[Any]] | None = None
    heard: Callable[[str], None] | None = None

    async def _handle_emit(self, message: dict[str, Any]) -> None:
        board_id = room_board(message.get("room"))
        if board_id is not None and message.get("host_id") != self.host_id and self.heard:
            self.heard(board_id)
        await super()._handle_emit(message)

    def initialize(self) -> None:
        """Start listening to the other nodes, once, however often python-socketio asks."""
        if self.listeners is not None:
            return
        # python-socketio keeps no public handle on the listener it starts: the tasks that
        # appear while it starts are it.
        before = asyncio.all_tasks()
        super().initialize()
        self.listeners = asyncio.all_tasks() - before


def client_manager(
    fan_out: FanOut,
    redis_url: str | None,
    channel: str,
    heard: Callable[[str], None] | None = None,
) -> FanOutManager:
    """This node's Socket.IO client manager: in memory, or also hearing the shared channel
    (`heard` is told the board of each push from there)."""
    if redis_url is None:
        manager = FanOutManager()
    else:
        manager = FanOutRedisManager(redis_url, channel)
        manager.heard = heard
    manager.fan_out = fan_out
    return manager


@dataclass(frozen=True)
class Requirement:
    """One internal this node relies on, what for, and how to tell it is as expected."""

    internal: str
    needed_for: tuple[str, ...]
    holds: Callable[[], bool | Awaitable[bool]]

    async def differs(self) -> bool:
        try:
            held = self.holds()
            return not (await held if inspect.isawaitable(held) else held)
        except Exception:  # an internal gone or changed shape is a difference, not a crash
            return True


def _parameters(function: Any) -> list[str]:
    return list(inspect.signature(function).parameters)


def _has_queue_with_unfinished_tasks(engine: Any) -> bool:
    probe = AsyncSocket(engine, "probe")
    flags = (probe.upgraded, probe.closing, probe.closed)
    return (
        probe.sid == "probe"
        and all(isinstance(flag, bool) for flag in flags)
        and isinstance(probe.queue, asyncio.Queue)
        and isinstance(probe.queue._unfinished_tasks, int)  # type: ignore[attr-defined]
    )


def _websocket_writer_keeps_its_transport() -> bool:
    protocol, transport = object(), object()
    writer = WebSocketWriter(protocol, transport)  # type: ignore[arg-type]
    return writer.protocol is protocol and writer.transport is transport


def _websocket_holds(engine: Any) -> bool:
    handler = object()
    websocket = engineio_aiohttp.WebSocket(handler=handler, server=engine)
    return websocket._sock is None and websocket.handler is handler and websocket.server is engine


def requirements(sio: socketio.AsyncServer) -> list[Requirement]:
    """Every internal this node relies on, each with a check that it is as expected."""
    engine: Any = getattr(sio, "eio", None)
    manager: Any = getattr(sio, "manager", None)
    found = [
        Requirement(
            "socketio.AsyncServer.eio (an engineio.AsyncServer)",
            (FAN_OUT, SHUTDOWN),
            lambda: isinstance(engine, engineio.AsyncServer),
        ),
        Requirement(
            "socketio.AsyncServer.manager (the client manager it was given)",
            (FAN_OUT, LISTENER, COUNT),
            lambda: isinstance(manager, FanOutManager),
        ),
        Requirement(
            "socketio.AsyncServer.packet_class encoding an EVENT as one text packet",
            (FAN_OUT,),
            lambda: (
                sio.packet_class(
                    socketio_packet.EVENT, namespace="/", data=["e", {"v": 1}]
                ).encode()
                == '2["e",{"v":1}]'
            ),
        ),
        Requirement(
            "engineio.packet.Packet encoding a MESSAGE as '4' and its text",
            (FAN_OUT,),
            lambda: engineio_packet.Packet(engineio_packet.MESSAGE, "x").encode() == "4x",
        ),
        Requirement(
            "socketio.AsyncManager.is_pre_connected(sid, namespace)",
            (FAN_OUT,),
            lambda: _parameters(manager.is_pre_connected) == ["sid", "namespace"],
        ),
        Requirement(
            "socketio.AsyncManager.is_connected(sid, namespace)",
            (COUNT,),
            lambda: _parameters(manager.is_connected) == ["sid", "namespace"],
        ),
        Requirement(
            "engineio.AsyncServer.sockets (a dict by Engine.IO sid)",
            (FAN_OUT, SHUTDOWN),
            lambda: isinstance(engine.sockets, dict),
        ),
        Requirement(
            "engineio.AsyncServer.max_http_buffer_size",
            (FAN_OUT,),
            lambda: isinstance(engine.max_http_buffer_size, int),
        ),
        Requirement(
            "engineio.AsyncServer._async['websocket'] (engineio's aiohttp WebSocket)",
            (FAN_OUT,),
            lambda: engine._async["websocket"] is engineio_aiohttp.WebSocket,
        ),
        Requirement(
            "engineio.async_drivers.aiohttp.WebSocket(handler, server) keeping _sock",
            (FAN_OUT,),
            lambda: (
                _parameters(engineio_aiohttp.WebSocket) == ["handler", "server"]
                and _websocket_holds(engine)
            ),
        ),
        Requirement(
            "engineio.async_drivers.aiohttp.WebSocket.__call__(environ)",
            (FAN_OUT,),
            lambda: _parameters(engineio_aiohttp.WebSocket.__call__) == ["self", "environ"],
        ),
        Requirement(
            "engineio.async_socket.AsyncSocket._upgrade_websocket passing _websocket_handler",
            (FAN_OUT,),
            lambda: (
                "_websocket_handler" in AsyncSocket._upgrade_websocket.__code__.co_names
                and inspect.iscoroutinefunction(AsyncSocket._websocket_handler)
            ),
        ),
        Requirement(
            "engineio.async_socket.AsyncSocket upgraded/closing/closed/queue._unfinished_tasks",
            (FAN_OUT,),
            lambda: _has_queue_with_unfinished_tasks(engine),
        ),
        Requirement(
            "aiohttp.web.WebSocketResponse._writer",
            (FAN_OUT,),
            lambda: web.WebSocketResponse()._writer is None,
        ),
        Requirement(
            "aiohttp.http.WebSocketWriter(protocol, transport) keeping both",
            (FAN_OUT,),
            _websocket_writer_keeps_its_transport,
        ),
        Requirement(
            "aiohttp.base_protocol.BaseProtocol.writing_paused",
            (FAN_OUT,),
            lambda: isinstance(inspect.getattr_static(BaseProtocol, "writing_paused"), property),
        ),
        Requirement(
            "engineio.async_socket.AsyncSocket.close(wait, reason)",
            (SHUTDOWN,),
            lambda: {"wait", "reason"} <= set(_parameters(AsyncSocket.close)),
        ),
        Requirement(
            "engineio.AsyncServer.reason.SERVER_DISCONNECT",
            (SHUTDOWN,),
            lambda: isinstance(engine.reason.SERVER_DISCONNECT, str),
        ),
    ]
    if isinstance(manager, FanOutRedisManager):
        found += [
            Requirement(
                "AsyncPubSubManager handing other nodes' broadcasts to FanOutManager.emit",
                (FAN_OUT,),
                _remote_broadcasts_reach_fan_out,
            ),
            Requirement(
                "socketio.AsyncRedisManager starting one listener task in initialize()",
                (SHUTDOWN,),
                lambda: manager.listeners is not None and len(manager.listeners) == 1,
            ),
            Requirement(
                "socketio.AsyncRedisManager.redis and .pubsub",
                (LISTENER,),
                lambda: hasattr(manager, "redis") and hasattr(manager, "pubsub"),
            ),
            Requirement(
                "AsyncPubSubManager._thread handing each emit to _handle_emit, with host_id",
                (HEARD,),
                lambda: (
                    "_handle_emit" in socketio.AsyncRedisManager._thread.__code__.co_names
                    and isinstance(manager.host_id, str)
                ),
            ),
        ]
    return found


class _RecordingFanOut(FanOut):
    def broadcast(
        self, manager: Any, namespace: str, event: str, data: list[Any], room: str | None = None
    ) -> None:
        self.messages[f"{event} to {room}"] += 1


async def _remote_broadcasts_reach_fan_out() -> bool:
    probe = FanOutRedisManager("redis://probe.invalid", channel="probe")
    probe.fan_out = _RecordingFanOut()
    room = board_room("probe")
    message = {
        "method": "emit",
        "event": "probe",
        "data": [{"v": 1}],
        "namespace": NAMESPACE,
        "room": room,
    }
    await asyncio.wait_for(probe._handle_emit(message), PROBE_TIMEOUT_SECONDS)
    return probe.fan_out.messages[f"probe to {room}"] == 1


async def differences(sio: socketio.AsyncServer) -> list[Requirement]:
    """The requirements that do not hold for this server."""
    return [requirement for requirement in requirements(sio) if await requirement.differs()]


def _available(sio: socketio.AsyncServer, feature: str) -> bool:
    manager = getattr(sio, "manager", None)
    return isinstance(manager, FanOutManager) and feature not in manager.unavailable


async def start(sio: socketio.AsyncServer, fan_out: FanOut) -> None:
    """Listen to the other nodes now, check every internal, and write directly if they hold."""
    manager = getattr(sio, "manager", None)
    if isinstance(manager, FanOutManager):
        # python-socketio starts listening at the first request; now means the node hears
        # broadcasts from the moment it serves.
        manager.initialize()
    found = await differences(sio)
    unavailable = frozenset(need for requirement in found for need in requirement.needed_for)
    if found:
        log.warning(
            "python-socketio, python-engineio or aiohttp differ from what this node relies on"
            " (%s), so %s",
            "; ".join(requirement.internal for requirement in found),
            "; ".join(feature for feature in FEATURES if feature in unavailable),
        )
    if isinstance(manager, FanOutManager):
        manager.unavailable = unavailable
    if FAN_OUT not in unavailable:
        direct = DirectWrites(sio)
        direct.install()
        fan_out.direct = direct


async def stop(sio: socketio.AsyncServer) -> None:
    """Stop listening to the other nodes and close the listener's Redis connections."""
    manager = getattr(sio, "manager", None)
    if not isinstance(manager, FanOutRedisManager):
        return
    listeners = set(manager.listeners or ())
    for _ in range(LISTENER_STOP_ATTEMPTS):
        if not listeners:
            break
        # Again until it ends: redis-py can swallow a cancel that lands while it connects.
        for listener in listeners:
            listener.cancel()
        _, listeners = await asyncio.wait(listeners, timeout=LISTENER_STOP_WAIT_SECONDS)
    if listeners:
        log.warning("the Socket.IO pub/sub listener did not stop when cancelled")
    if _available(sio, LISTENER):
        for connection in (manager.pubsub, manager.redis):
            if connection is not None:
                await connection.aclose()


async def close_engine_sockets(sio: socketio.AsyncServer) -> None:
    """Close every Engine.IO connection at once, long-polls included, so clients reconnect."""
    if not _available(sio, SHUTDOWN):
        return
    engine = sio.eio
    for socket in list(engine.sockets.values()):
        # wait=False: a polling client that stopped polling must not hold the shutdown up.
        await socket.close(wait=False, reason=engine.reason.SERVER_DISCONNECT)


def connected_clients(sio: socketio.AsyncServer) -> int:
    """Socket.IO clients connected to this node (past authentication, not yet gone)."""
    manager = sio.manager
    participants = manager.get_participants(NAMESPACE, None)
    if not _available(sio, COUNT):
        return sum(1 for _ in participants)
    return sum(1 for sid, _ in participants if manager.is_connected(sid, NAMESPACE))


async def close_emitter(emitter: socketio.AsyncRedisManager) -> None:
    """Close the Redis connection a write-only emitter opened on its first emit, if it did."""
    connection = getattr(emitter, "redis", None)
    if connection is None:
        if not hasattr(emitter, "redis"):
            log.warning("socketio.AsyncRedisManager.redis is gone: its connection stays open")
        return
    await connection.aclose()
