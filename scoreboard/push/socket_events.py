"""Socket.IO event handlers: authenticate and choose boards on connect, subscribe, unsubscribe."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import msgspec
import socketio
from aiohttp import web

from scoreboard.api.models import BoardsHeld, Error
from scoreboard.boards.model import GLOBAL_BOARD_ID
from scoreboard.errors import ApiError, AuthenticationFailed, ServiceUnavailable
from scoreboard.push.broadcast import Broadcaster
from scoreboard.push.fan_out import board_stamp
from scoreboard.push.subscriptions import Subscriptions, requested_boards
from scoreboard.web.keys import BOARD_CHANNELS, BOARD_TOPS, BOARDS, FAN_OUT, VERIFIER

log = logging.getLogger(__name__)

CONNECT_EVENT = "connect"  # python-socketio's name for the handshake
SUBSCRIBE_EVENT = "subscribe"
UNSUBSCRIBE_EVENT = "unsubscribe"

Ack = dict[str, Any]  # BoardsHeld or Error (scoreboard/api/events.py), as python-socketio sends it


def register_socket_events(sio: socketio.AsyncServer, app: web.Application) -> None:
    subscriptions = Subscriptions(sio, app[BOARDS], app[FAN_OUT], app[BOARD_CHANNELS])

    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        verifier = app[VERIFIER]
        try:
            if isinstance(auth, dict) and "token" in auth:
                token = auth["token"]
                await verifier.authenticate(token if isinstance(token, str) else None)
            else:
                await verifier.authenticate_header(environ.get("HTTP_AUTHORIZATION"))
            chosen = [GLOBAL_BOARD_ID]  # SPEC.md's clients choose nothing: they get global
            if isinstance(auth, dict) and auth.get("boards") is not None:
                chosen = requested_boards(auth["boards"])
            await subscriptions.check_exist(chosen)
        except (AuthenticationFailed, ApiError) as exc:
            raise socketio.exceptions.ConnectionRefusedError(exc.message) from None
        await subscriptions.add(sid, chosen)
        # After the handler returns the client is connected; the snapshots follow it.
        sio.start_background_task(send_snapshots, sid, chosen)

    async def subscribe(sid: str, data: Any = None) -> Ack:
        try:
            boards = requested_boards(data.get("boards") if isinstance(data, dict) else None)
            await subscriptions.check_exist(boards)
            added = await subscriptions.add(sid, boards)
        except ApiError as exc:
            return refused(exc)
        # Sent after the acknowledgement, which python-socketio queues as this handler returns.
        sio.start_background_task(send_snapshots, sid, added)
        return held(sid)

    async def unsubscribe(sid: str, data: Any = None) -> Ack:
        try:
            boards = requested_boards(data.get("boards") if isinstance(data, dict) else None)
        except ApiError as exc:
            return refused(exc)
        # Not looked up: a board deleted meanwhile can still be left.
        await subscriptions.remove(sid, boards)
        return held(sid)

    def held(sid: str) -> Ack:
        ack: Ack = msgspec.to_builtins(BoardsHeld(status="success", boards=subscriptions.held(sid)))
        return ack

    def refused(exc: ApiError) -> Ack:
        ack: Ack = msgspec.to_builtins(Error(status="error", message=exc.message))
        return ack

    async def disconnect(sid: str, *_reason: Any) -> None:
        subscriptions.drop(sid)

    async def send_snapshots(sid: str, board_ids: list[str]) -> None:
        await asyncio.gather(*(send_snapshot(sid, board_id) for board_id in board_ids))

    async def send_snapshot(sid: str, board_id: str) -> None:
        try:
            board = await app[BOARD_TOPS].top(board_id)
        except ServiceUnavailable:
            log.warning("no snapshot of %s for %s: store unavailable", board_id, sid)
            return
        broadcaster = Broadcaster(sio)
        stamp = board_stamp([broadcaster.payload(board)])  # as the fan-out reads a push
        if stamp is None or not subscriptions.holds(sid, board_id):
            return
        if not app[FAN_OUT].claim(sid, stamp):
            return  # a broadcast as new or newer has reached it meanwhile
        await broadcaster.send_snapshot(board, sid)

    sio.on(CONNECT_EVENT, connect)
    sio.on(SUBSCRIBE_EVENT, subscribe)
    sio.on(UNSUBSCRIBE_EVENT, unsubscribe)
    sio.on("disconnect", disconnect)
