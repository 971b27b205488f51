"""A client process: hold N Socket.IO clients open and record every board they receive."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from multiprocessing.connection import Connection

from bench.board_socket import BoardSocket, SocketRefused, connect_board_socket
from bench.child import cpu_seconds, receive, run_child
from bench.endpoint import Endpoint
from bench.sightings import Sightings


@dataclass(frozen=True)
class ViewPlan:
    """What one client process is asked to do."""

    endpoint: Endpoint
    socket_path: str
    token: str
    clients: int
    user_ids: tuple[str, ...]
    connect_concurrency: int
    connect_timeout: float


@dataclass(frozen=True)
class Connected:
    """How connecting went: clients up, failures and the first failure's reason."""

    clients: int
    failures: int
    first_error: str


@dataclass(frozen=True)
class ViewStatus:
    """The oldest board version any client here last received, and the CPU used so far."""

    oldest_version: int
    cpu_seconds: float


@dataclass(frozen=True)
class ViewResults:
    """Everything one client process saw."""

    sightings: Sightings
    events: int
    snapshots: int
    regressions: int
    disconnects: int
    last_versions: dict[int, int]  # last version received -> clients


class Viewer:
    """One client's own view: the newest version it holds and what arrived out of order."""

    __slots__ = ("_sightings", "last_version", "events", "regressions", "dropped", "socket")

    def __init__(self, sightings: Sightings) -> None:
        self._sightings = sightings
        self.last_version = -1
        self.events = 0
        self.regressions = 0
        self.dropped = False
        self.socket: BoardSocket | None = None

    def on_event(self, payload: bytes, at: float) -> None:
        version = self._sightings.record(payload, at)
        self.events += 1
        if version < self.last_version:
            self.regressions += 1
        else:
            self.last_version = version

    def on_close(self) -> None:
        self.dropped = True


def run_viewers(plan: ViewPlan, connection: Connection) -> None:
    """Process entry point: report "connected", answer "status", and "results" on "stop"."""
    run_child(lambda: _serve(plan, connection), connection)


async def _serve(plan: ViewPlan, connection: Connection) -> None:
    sightings = Sightings(plan.user_ids)
    viewers = [Viewer(sightings) for _ in range(plan.clients)]
    gate = asyncio.Semaphore(plan.connect_concurrency)
    outcomes = await asyncio.gather(*(_connect(plan, viewer, gate) for viewer in viewers))
    failures = [outcome for outcome in outcomes if outcome]
    up = [viewer for viewer in viewers if viewer.socket is not None]
    connection.send(("connected", Connected(len(up), len(failures), next(iter(failures), ""))))
    while True:
        kind, _ = await receive(connection)
        if kind == "stop":
            break
        if kind == "status":
            oldest = min((viewer.last_version for viewer in up), default=-1)
            connection.send(("status", ViewStatus(oldest, cpu_seconds())))
    last_versions: dict[int, int] = {}
    for viewer in up:
        last_versions[viewer.last_version] = last_versions.get(viewer.last_version, 0) + 1
    results = ViewResults(
        sightings=sightings,
        events=sum(viewer.events for viewer in up),
        snapshots=sum(1 for viewer in up if viewer.events),
        regressions=sum(viewer.regressions for viewer in up),
        disconnects=sum(1 for viewer in up if viewer.dropped),
        last_versions=last_versions,
    )
    connection.send(("results", results))
    for viewer in up:
        if viewer.socket is not None:
            viewer.socket.close()


async def _connect(plan: ViewPlan, viewer: Viewer, gate: asyncio.Semaphore) -> str:
    """Connect one client; return "" or why it failed."""
    async with gate:
        try:
            viewer.socket = await connect_board_socket(
                plan.endpoint,
                plan.socket_path,
                plan.token,
                viewer.on_event,
                viewer.on_close,
                timeout=plan.connect_timeout,
            )
        except SocketRefused as exc:
            return str(exc)
        except TimeoutError:
            return f"no connection within {plan.connect_timeout:g}s"
        except OSError as exc:
            return f"{type(exc).__name__}: {exc}"
    return ""
