"""Socket.IO event handlers: authenticate on connect, then send the current board."""

from __future__ import annotations

import logging
from typing import Any

import socketio
from aiohttp import web

from scoreboard.errors import AuthenticationFailed, StoreUnavailable
from scoreboard.push.broadcast import Broadcaster
from scoreboard.web.keys import FAN_OUT, STORE, VERIFIER

log = logging.getLogger(__name__)


def register_socket_events(sio: socketio.AsyncServer, app: web.Application) -> None:
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        verifier = app[VERIFIER]
        try:
            if isinstance(auth, dict) and "token" in auth:
                token = auth["token"]
                await verifier.authenticate(token if isinstance(token, str) else None)
            else:
                await verifier.authenticate_header(environ.get("HTTP_AUTHORIZATION"))
        except AuthenticationFailed as exc:
            raise socketio.exceptions.ConnectionRefusedError(exc.message) from None
        # After the handler returns the client is connected; the snapshot follows it.
        sio.start_background_task(send_snapshot, sid)

    async def send_snapshot(sid: str) -> None:
        try:
            board = await app[STORE].leaderboard()
        except StoreUnavailable:
            log.warning("no snapshot for %s: store unavailable", sid)
            return
        if not app[FAN_OUT].claim(sid, board.version):
            return  # a broadcast as new or newer has reached it meanwhile
        await Broadcaster(sio).send_snapshot(board, sid)

    sio.on("connect", connect)
