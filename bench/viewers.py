"""A client process: hold N Socket.IO clients open and record every board they receive."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from multiprocessing.connection import Connection

from bench.board_socket import BoardSocket, SocketRefused, connect_board_socket
from bench.board_spread import board_of_client
from bench.child import cpu_seconds, receive, run_child
from bench.endpoint import Endpoint
from bench.sightings import NOT_A_BOARD, Sightings
from scoreboard.boards.model import GLOBAL_BOARD_ID


@dataclass(frozen=True)
class ViewPlan:
    """What one client process is asked to do.

    With `boards`, client k of the run (`first_client` is this process's first) names board
    boards[k mod len(boards)] on connect; with none, clients name nothing and so hold global.
    With several `endpoints`, the clients of board b connect to endpoints[b mod n] (every
    client of a board on one node, as a load balancer routing by board would place them); on
    global alone, client k connects to endpoints[k mod n].
    """

    endpoints: tuple[Endpoint, ...]
    socket_path: str
    token: str
    clients: int
    user_ids: tuple[str, ...]
    connect_concurrency: int
    connect_timeout: float
    boards: tuple[str, ...] = ()
    first_client: int = 0

    def board_of(self, client: int) -> str:
        if not self.boards:
            return GLOBAL_BOARD_ID
        return self.boards[board_of_client(self.first_client + client, len(self.boards))]

    def endpoint_of(self, client: int) -> Endpoint:
        number = self.first_client + client
        if self.boards:
            number = board_of_client(number, len(self.boards))
        return self.endpoints[number % len(self.endpoints)]


@dataclass(frozen=True)
class Connected:
    """How connecting went: clients up (in all and per board), failures, the first's reason."""

    clients: int
    failures: int
    first_error: str
    clients_by_board: dict[str, int]


@dataclass(frozen=True)
class ViewStatus:
    """Per board, the oldest version any client of it here last received; CPU used so far."""

    oldest_versions: dict[str, int]
    cpu_seconds: float


@dataclass(frozen=True)
class ViewResults:
    """Everything one client process saw."""

    sightings: Sightings
    events: int
    snapshots: int
    regressions: int
    disconnects: int
    last_versions: dict[tuple[str, int], int]  # (board, last version received) -> clients
    foreign_pushes: int  # pushes of a board the client did not hold


class Viewer:
    """One client's own view of its board: the newest version it holds, what arrived out of
    order, and pushes of any other board (which it should never get)."""

    __slots__ = (
        "_sightings",
        "board",
        "last_version",
        "events",
        "regressions",
        "foreign",
        "dropped",
        "socket",
    )

    def __init__(self, sightings: Sightings, board: str) -> None:
        self._sightings = sightings
        self.board = board
        self.last_version = -1
        self.events = 0
        self.regressions = 0
        self.foreign = 0
        self.dropped = False
        self.socket: BoardSocket | None = None

    def on_event(self, payload: bytes, at: float) -> None:
        stamp = self._sightings.record(payload, at)
        self.events += 1
        board, version = stamp
        if board != self.board:
            if stamp != NOT_A_BOARD:
                self.foreign += 1
        elif version < self.last_version:
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
    viewers = [Viewer(sightings, plan.board_of(client)) for client in range(plan.clients)]
    gate = asyncio.Semaphore(plan.connect_concurrency)
    outcomes = await asyncio.gather(
        *(_connect(plan, viewer, plan.endpoint_of(n), gate) for n, viewer in enumerate(viewers))
    )
    failures = [outcome for outcome in outcomes if outcome]
    up = [viewer for viewer in viewers if viewer.socket is not None]
    by_board = Counter(viewer.board for viewer in up)
    first_error = next(iter(failures), "")
    connection.send(("connected", Connected(len(up), len(failures), first_error, dict(by_board))))
    while True:
        kind, _ = await receive(connection)
        if kind == "stop":
            break
        if kind == "status":
            oldest: dict[str, int] = {}
            for viewer in up:
                oldest[viewer.board] = min(viewer.last_version, oldest.get(viewer.board, 1 << 62))
            connection.send(("status", ViewStatus(oldest, cpu_seconds())))
    last_versions = Counter((viewer.board, viewer.last_version) for viewer in up)
    results = ViewResults(
        sightings=sightings,
        events=sum(viewer.events for viewer in up),
        snapshots=sum(1 for viewer in up if viewer.events),
        regressions=sum(viewer.regressions for viewer in up),
        disconnects=sum(1 for viewer in up if viewer.dropped),
        last_versions=dict(last_versions),
        foreign_pushes=sum(viewer.foreign for viewer in up),
    )
    connection.send(("results", results))
    for viewer in up:
        if viewer.socket is not None:
            viewer.socket.close()


async def _connect(
    plan: ViewPlan, viewer: Viewer, endpoint: Endpoint, gate: asyncio.Semaphore
) -> str:
    """Connect one client; return "" or why it failed."""
    async with gate:
        try:
            viewer.socket = await connect_board_socket(
                endpoint,
                plan.socket_path,
                plan.token,
                viewer.on_event,
                viewer.on_close,
                timeout=plan.connect_timeout,
                boards=[viewer.board] if plan.boards else None,
            )
        except SocketRefused as exc:
            return str(exc)
        except TimeoutError:
            return f"no connection within {plan.connect_timeout:g}s"
        except OSError as exc:
            return f"{type(exc).__name__}: {exc}"
    return ""
