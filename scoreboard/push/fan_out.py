"""Broadcasts to this node's clients: the newest of each board only, each board's versions in order.

python-socketio sends a broadcast by starting one task per client, each of which queues the
packet for that connection's Engine.IO writer task. With thousands of clients, and a push several
times a second, that backlog keeps the event loop busy long enough to starve the POSTs. So here:

- A broadcast to a room (a board's) that arrives while an earlier one of the same event to the
  same room still waits replaces it, unless it shows an older version of the board: each carries
  the whole state (the top 10), so a busy node skips to the newest rather than working through a
  backlog.
- Of the rooms waiting, the one pushed least recently goes next: a quiet board goes before a
  busy one, and every board waiting is pushed within one round of the others.
- Every push, whatever its board, is charged to the node's one frame budget: to N clients, N
  frames. A room with no client on this node costs nothing.
- Each client gets each board in (season, version) order whatever the race between the snapshot
  read on subscribing, the broadcasts, and several workers: `claim` notes, per client and board,
  the newest version on its way. A client is followed from connect (`follow`) to disconnect.
- Sending is, when python-socketio's, python-engineio's and aiohttp's internals check out at
  start-up, one frame written straight to every idle websocket (`socketio_internals.DirectWrites`);
  otherwise python-socketio's own emit, one client at a time.
- A fan-out that raises is logged with its traceback and counted, and this broadcast then goes
  through python-socketio's emit to every client that has not had it; the next one is sent as
  usual. The sending task never stops while broadcasts wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any, NamedTuple, Protocol

from scoreboard.boards.model import GLOBAL_BOARD_ID

log = logging.getLogger(__name__)

# How a broadcast reached a client: written straight to its websocket, queued behind the
# connection's own packets, or sent by python-socketio's emit.
DIRECT, QUEUED, SOCKETIO = "direct", "queued", "socketio"
PATHS = (DIRECT, QUEUED, SOCKETIO)

Participant = tuple[str, str]  # (Socket.IO sid, Engine.IO sid)
Order = tuple[int, int]  # (season, version): how a board's payloads follow one another
_NOTHING: Order = (-1, -1)
PendingKey = tuple[str, str | None, str]  # (namespace, room, event)


class ClientManager(Protocol):
    """What a fan-out needs of this node's Socket.IO client manager."""

    def get_participants(self, namespace: str, room: str | None) -> Iterable[Participant]: ...

    async def emit_to_client(self, sid: str, event: str, data: list[Any], namespace: str) -> None:
        """python-socketio's own emit of `event` to the one client `sid` of this node."""


class DirectWrites(Protocol):
    """A faster way to send one broadcast to many clients of this node."""

    async def send(
        self, fan_out: FanOut, namespace: str, event: str, data: list[Any], to: list[Participant]
    ) -> bool:
        """Send to the clients `to`, noting each with `fan_out.delivered`; False if it cannot."""


# How long one pass of pushes may run before the pause that follows it (as long as the pass):
# long enough for many small rooms, far below what a client notices.
PUSH_SLICE_SECONDS = 0.02
PUSH_PAUSE_RATIO = 0.5  # the pause after a pass, as a share of the pass


class BoardStamp(NamedTuple):
    """Which board a payload shows, and how new it is."""

    board_id: str
    order: Order


def board_stamp(arguments: list[Any]) -> BoardStamp | None:
    """The board and (season, version) of a board event's payload; None for any other event.

    A payload without `boardId` is global's: global's payload is SPEC.md's, which has none.
    """
    payload = arguments[0] if len(arguments) == 1 else None
    if not isinstance(payload, dict):
        return None
    version = payload.get("version")
    board_id = payload.get("boardId", GLOBAL_BOARD_ID)
    season = payload.get("season", 1)
    if type(version) is not int or type(season) is not int or not isinstance(board_id, str):
        return None
    return BoardStamp(board_id, (season, version))


def _is_older(data: list[Any], than: list[Any]) -> bool:
    """Whether board payload `data` shows the same board as `than`, at an older (season,
    version)."""
    stamp, other = board_stamp(data), board_stamp(than)
    return (
        stamp is not None
        and other is not None
        and stamp.board_id == other.board_id
        and stamp.order < other.order
    )


class FanOut:
    """This node's broadcasts, sent one after another in a task of their own."""

    def __init__(self, frames_per_second: float = float("inf")) -> None:
        self._frames_per_second = frames_per_second
        self._next_at = 0.0  # loop time before which the next push waits
        self.direct: DirectWrites | None = None  # set at start-up when the internals check out
        self.messages: Counter[str] = Counter()  # messages sent to clients, by path
        self.errors: Counter[str] = Counter()  # fan-outs that raised, by path
        # (namespace, room, event) -> the newest broadcast not sent yet; it replaces an older one.
        self._pending: dict[PendingKey, tuple[ClientManager, list[Any]]] = {}
        self._sender: asyncio.Task[None] | None = None
        # Loop time of each room's last push: one entry per board at most.
        self._pushed_at: dict[PendingKey, float] = {}
        # Socket.IO sid of each followed client -> board id -> the newest on its way to it.
        self._had: dict[str, dict[str, Order]] = {}

    def follow(self, sid: str) -> None:
        """Start noting what client `sid` is sent (once it is connected)."""
        self._had.setdefault(sid, {})

    def forget(self, sid: str, board_id: str | None = None) -> None:
        """Forget client `sid` (gone), or what it had of one board (left, so it starts over)."""
        if board_id is None:
            self._had.pop(sid, None)
        else:
            self._had.get(sid, {}).pop(board_id, None)

    def claim(self, sid: str, stamp: BoardStamp) -> bool:
        """Note that `stamp` goes to client `sid`; False if it has had that or newer, or is gone."""
        had = self._had.get(sid)
        if had is None or had.get(stamp.board_id, _NOTHING) >= stamp.order:
            return False
        had[stamp.board_id] = stamp.order
        return True

    def has_had(self, sid: str, stamp: BoardStamp | None) -> bool:
        if stamp is None:
            return False
        had = self._had.get(sid)
        return had is not None and had.get(stamp.board_id, _NOTHING) >= stamp.order

    def delivered(self, sid: str, stamp: BoardStamp | None, path: str) -> None:
        """Count a message sent to client `sid` by `path`, carrying the board `stamp` if any."""
        self.messages[path] += 1
        had = self._had.get(sid)
        if stamp is not None and had is not None:
            had[stamp.board_id] = max(stamp.order, had.get(stamp.board_id, _NOTHING))

    def counts(self) -> dict[str, int]:
        return {path: self.messages[path] for path in PATHS}

    def error_counts(self) -> dict[str, int]:
        return {path: self.errors[path] for path in (DIRECT, SOCKETIO)}

    def broadcast(
        self,
        manager: ClientManager,
        namespace: str,
        event: str,
        data: list[Any],
        room: str | None = None,
    ) -> None:
        """Send `event` with `data` (its arguments) to this node's clients in `room` (None: all)."""
        key = (namespace, room, event)
        waiting = self._pending.get(key)
        if waiting is not None and _is_older(data, waiting[1]):
            return  # a board re-read after a reconnection must not replace a newer push
        self._pending[key] = (manager, data)
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
            if (wait := self._next_at - loop.time()) > 0:
                await asyncio.sleep(wait)  # a board arriving meanwhile replaces the pending one
                continue
            started = loop.time()
            frames = 0
            # Boards waiting go one after another, the longest unpushed first, for one slice:
            # many small rooms share a pause instead of each pausing as long as it took.
            while self._pending and loop.time() - started < PUSH_SLICE_SECONDS:
                key = min(self._pending, key=lambda k: self._pushed_at.get(k, float("-inf")))
                manager, data = self._pending.pop(key)
                self._pushed_at[key] = loop.time()
                namespace, room, event = key
                try:
                    frames += await self._send(manager, namespace, room, event, data)
                except Exception:  # the next broadcast carries the whole state: keep sending
                    self.errors[SOCKETIO] += 1
                    log.exception("fan-out of %s through python-socketio's emit failed", event)
                if frames >= self._frames_per_second * PUSH_SLICE_SECONDS:
                    break
            # The next pass waits half as long again (at most about two thirds of this node's
            # time goes to pushing, and requests still get in) and until the frame budget allows
            # it: a node with many clients pushes the newest board less often, one with few
            # every change.
            took = loop.time() - started
            pause = max(took * PUSH_PAUSE_RATIO, frames / self._frames_per_second)
            self._next_at = loop.time() + pause

    async def _send(
        self, manager: ClientManager, namespace: str, room: str | None, event: str, data: list[Any]
    ) -> int:
        """Send to every client of `namespace` in `room`; how many there were."""
        participants = list(manager.get_participants(namespace, room))
        if not participants:
            return 0
        if self.direct is not None:
            try:
                if await self.direct.send(self, namespace, event, data, participants):
                    return len(participants)
            except Exception:
                self.errors[DIRECT] += 1
                log.exception(
                    "direct fan-out of %s failed; sending it through python-socketio's emit", event
                )
        await self._emit_one_by_one(manager, namespace, event, data, participants)
        return len(participants)

    async def _emit_one_by_one(
        self,
        manager: ClientManager,
        namespace: str,
        event: str,
        data: list[Any],
        participants: list[Participant],
    ) -> None:
        stamp = board_stamp(data)
        to = [sid for sid, _ in participants if not self.has_had(sid, stamp)]
        sends = [manager.emit_to_client(sid, event, data, namespace) for sid in to]
        await self.await_sends(sends, to, stamp, SOCKETIO)

    async def await_sends(
        self,
        sends: Sequence[Awaitable[Any]],
        sids: Sequence[str],
        stamp: BoardStamp | None,
        path: str,
    ) -> None:
        """Await one send per client; count those that went, raise for those that did not."""
        results = await asyncio.gather(*sends, return_exceptions=True)
        failures = [result for result in results if isinstance(result, Exception)]
        for sid, result in zip(sids, results, strict=True):
            if not isinstance(result, BaseException):
                self.delivered(sid, stamp, path)
        if failures:
            raise ExceptionGroup(f"{len(failures)} of {len(sids)} sends by {path} failed", failures)
