"""Broadcasts to this node's clients: the newest board only, each client's versions in order.

python-socketio sends a broadcast by starting one task per client, each of which queues the
packet for that connection's Engine.IO writer task. With thousands of clients, and a push several
times a second, that backlog keeps the event loop busy long enough to starve the POSTs. So here:

- A broadcast of an event that arrives while an earlier one of the same event still waits
  replaces it: each carries the whole state (the top 10), so a busy node skips to the newest
  rather than working through a backlog.
- Each client's boards go out in version order whatever the race between the snapshot read on
  connect, the broadcasts, and several workers: `claim` notes the newest version each client has.
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
from typing import Any, Protocol

from scoreboard.push.broadcast import NAMESPACE

log = logging.getLogger(__name__)

# How a broadcast reached a client: written straight to its websocket, queued behind the
# connection's own packets, or sent by python-socketio's emit.
DIRECT, QUEUED, SOCKETIO = "direct", "queued", "socketio"
PATHS = (DIRECT, QUEUED, SOCKETIO)

Participant = tuple[str, str]  # (Socket.IO sid, Engine.IO sid)


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


def board_version(arguments: list[Any]) -> int | None:
    """The `version` of a board event's payload; None for an event that carries none."""
    payload = arguments[0] if len(arguments) == 1 else None
    version = payload.get("version") if isinstance(payload, dict) else None
    return version if type(version) is int else None


class FanOut:
    """This node's broadcasts, sent one after another in a task of their own."""

    def __init__(self, frames_per_second: float = float("inf")) -> None:
        self._frames_per_second = frames_per_second
        self._next_at = 0.0  # loop time before which the next push waits
        self.direct: DirectWrites | None = None  # set at start-up when the internals check out
        self.messages: Counter[str] = Counter()  # messages sent to clients, by path
        self.errors: Counter[str] = Counter()  # fan-outs that raised, by path
        # (namespace, event) -> the newest broadcast not sent yet; it replaces an older one.
        self._pending: dict[tuple[str, str], tuple[ClientManager, list[Any]]] = {}
        self._sender: asyncio.Task[None] | None = None
        # Socket.IO sid -> the newest board `version` on its way to that client.
        self._versions: dict[str, int] = {}

    def claim(self, sid: str, version: int) -> bool:
        """Note that board `version` goes to client `sid`; False if it has had it or a newer one."""
        if self.has_had(sid, version):
            return False
        self._versions[sid] = version
        return True

    def has_had(self, sid: str, version: int | None) -> bool:
        return version is not None and self._versions.get(sid, -1) >= version

    def delivered(self, sid: str, version: int | None, path: str) -> None:
        """Count a message sent to client `sid` by `path`, carrying board `version` if any."""
        self.messages[path] += 1
        if version is not None:
            self._versions[sid] = max(version, self._versions.get(sid, -1))

    def counts(self) -> dict[str, int]:
        return {path: self.messages[path] for path in PATHS}

    def error_counts(self) -> dict[str, int]:
        return {path: self.errors[path] for path in (DIRECT, SOCKETIO)}

    def broadcast(
        self, manager: ClientManager, namespace: str, event: str, data: list[Any]
    ) -> None:
        """Send `event` with `data` (its arguments) to every client of `namespace` on this node."""
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
            if (wait := self._next_at - loop.time()) > 0:
                await asyncio.sleep(wait)  # a board arriving meanwhile replaces the pending one
                continue
            (namespace, event), (manager, data) = next(iter(self._pending.items()))
            del self._pending[(namespace, event)]
            started = loop.time()
            clients = 0
            try:
                clients = await self._send(manager, namespace, event, data)
            except Exception:  # the next broadcast carries the whole state: keep sending
                self.errors[SOCKETIO] += 1
                log.exception("fan-out of %s through python-socketio's emit failed", event)
            # The next push waits as long again (at most about half of this node's time goes to
            # pushing, and requests still get in) and until the frame budget allows it: a node
            # with many clients pushes the newest board less often, one with few every change.
            took = loop.time() - started
            self._next_at = loop.time() + max(took, clients / self._frames_per_second)

    async def _send(
        self, manager: ClientManager, namespace: str, event: str, data: list[Any]
    ) -> int:
        """Send to every client of `namespace`; how many there were."""
        participants = list(manager.get_participants(namespace, None))
        if namespace == NAMESPACE:
            # Only clients still here keep a version (no await since the participants were read).
            live = {sid for sid, _ in participants}
            self._versions = {s: v for s, v in self._versions.items() if s in live}
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
        version = board_version(data)
        to = [sid for sid, _ in participants if not self.has_had(sid, version)]
        sends = [manager.emit_to_client(sid, event, data, namespace) for sid in to]
        await self.await_sends(sends, to, version, SOCKETIO)

    async def await_sends(
        self, sends: Sequence[Awaitable[Any]], sids: Sequence[str], version: int | None, path: str
    ) -> None:
        """Await one send per client; count those that went, raise for those that did not."""
        results = await asyncio.gather(*sends, return_exceptions=True)
        failures = [result for result in results if isinstance(result, Exception)]
        for sid, result in zip(sids, results, strict=True):
            if not isinstance(result, BaseException):
                self.delivered(sid, version, path)
        if failures:
            raise ExceptionGroup(f"{len(failures)} of {len(sids)} sends by {path} failed", failures)
