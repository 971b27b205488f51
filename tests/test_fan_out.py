"""Broadcasts written once per client straight to the websocket: in order, complete, counted."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import pytest

from scoreboard.config import Settings
from scoreboard.intake.auth import issue_token
from scoreboard.push.broadcast import LEADERBOARD_EVENT, board_room
from scoreboard.push.fan_out import FanOut
from scoreboard.push.socketio_internals import text_frame
from scoreboard.web.app import create_app
from scoreboard.web.keys import SOCKETIO
from tests.conftest import JWT_SECRET
from tests.processes import Processes, WebProcess
from tests.score_stream import stream_updates
from tests.scrape import scrape_url
from tests.test_end_to_end import BoardWatcher
from tests.test_scaling import settle_on

USERS = [f"f{i}" for i in range(5)]
WATCHERS = 18
TRANSPORTS: list[list[str] | None] = [None, ["websocket"], ["polling"]]


@pytest.mark.parametrize(
    ("payload_bytes", "header"),
    [
        (5, b"\x81\x05"),
        (125, b"\x81\x7d"),
        (126, b"\x81\x7e\x00\x7e"),
        (70_000, b"\x81\x7f" + (70_000).to_bytes(8, "big")),
    ],
)
def test_a_frame_carries_its_length_in_the_form_rfc_6455_gives_for_that_size(
    payload_bytes: int, header: bytes
):
    payload = b"x" * payload_bytes
    assert text_frame(payload) == header + payload


def start_node(processes: Processes, env: dict[str, str], mode: str) -> WebProcess:
    if mode == "distributed":
        [node] = processes.start_distributed(env)
        return node
    backends = ("REDIS_URL", "RABBITMQ_URL", "DATABASE_URL")
    alone = {name: value for name, value in env.items() if name not in backends}
    node = processes.start_web(alone, remove=backends)
    assert "single-process mode" in node.output.splitlines()[0]
    return node


@pytest.mark.parametrize("mode", ["distributed", "single-process"])
async def test_clients_joining_mid_stream_see_versions_in_order_and_end_on_the_final_board(
    env: dict[str, str], tmp_path: Path, mode: str
):
    env = {**env, "RATE_LIMIT": "1000000/minute", "BROADCAST_HZ": "50"}
    tokens = {user: issue_token(JWT_SECRET, user) for user in USERS}
    watchers = [BoardWatcher() for _ in range(WATCHERS)]
    with Processes(tmp_path) as processes:
        node = start_node(processes, env, mode)
        streaming = asyncio.create_task(
            stream_updates(node.url, tokens, duration=3.0, concurrency=4)
        )
        try:
            # Some upgrade from polling, some open a websocket at once, some stay on long-polling
            # (their boards go through Engine.IO's queue); all join while updates stream in.
            for number, watcher in enumerate(watchers):
                transports = TRANSPORTS[number % len(TRANSPORTS)]
                await watcher.connect(node.url, tokens[USERS[0]], transports=transports)
                await asyncio.sleep(0.1)
            result = await streaming
            expected = dict(Counter(result.accepted))
            assert sum(expected.values()) > 100, result.statuses
            for watcher in watchers:
                assert await settle_on(watcher, expected) == expected
                assert watcher.versions == sorted(watcher.versions), "a board went back"
            messages = scrape_url(f"{node.url}/metrics")
            assert messages.value("scoreboard_socketio_messages_total", path="direct") > 0
            assert messages.value("scoreboard_socketio_messages_total", path="queued") > 0
        finally:
            streaming.cancel()
            await asyncio.gather(*(leave(watcher) for watcher in watchers))


async def leave(watcher: BoardWatcher) -> None:
    """Disconnect; a long-polling client without waiting for its poll to time out.

    python-engineio's server ends a client-closed long-poll only at its ping timeout, and
    python-engineio's client waits for that poll unless told to abort.
    """
    engine = watcher.client.eio
    if engine.current_transport != "polling":
        await watcher.client.disconnect()
        return
    await engine.disconnect(abort=True)  # closes its HTTP session, which ends the poll
    await asyncio.wait_for(engine.read_loop_task, 5)


async def test_a_burst_of_boards_reaches_clients_as_the_newest_board_only(aiohttp_client, env):
    alone = {k: v for k, v in env.items() if k not in ("REDIS_URL", "RABBITMQ_URL", "DATABASE_URL")}
    app = create_app(Settings.from_env(alone))
    api = await aiohttp_client(app)
    watchers = [BoardWatcher() for _ in range(3)]
    for watcher in watchers:
        await watcher.connect(str(api.make_url("")), issue_token(JWT_SECRET, "viewer"))
        assert (await watcher.next_update())["version"] == 0  # the snapshot
    sio = app[SOCKETIO]
    for version in range(1, 201):  # faster than any node could push them one by one
        await sio.emit(
            LEADERBOARD_EVENT, {"event": LEADERBOARD_EVENT, "version": version, "top10": []}
        )
    for watcher in watchers:
        assert (await watcher.next_update())["version"] == 200
    await asyncio.sleep(0.2)
    assert [w.versions for w in watchers] == [[0, 200]] * 3, "no backlog of older boards"
    for watcher in watchers:
        await watcher.client.disconnect()


class RecordingClients:
    """A ClientManager of `count` clients that notes the board versions each one is sent."""

    def __init__(self, count: int) -> None:
        self.sids = [f"sid-{n}" for n in range(count)]
        self.received: dict[str, list[int]] = {sid: [] for sid in self.sids}

    def get_participants(self, namespace: str, room: str | None):
        return [(sid, f"eio-{sid}") for sid in self.sids]

    async def emit_to_client(self, sid: str, event: str, data: list, namespace: str) -> None:
        self.received[sid].append(data[0]["version"])


async def _stream(fan_out: FanOut, clients: RecordingClients, versions: range) -> None:
    for version in versions:
        fan_out.broadcast(clients, "/", "leaderboardUpdate", [{"version": version, "top10": []}])
        await asyncio.sleep(0.01)  # a new board every 10 ms
    await asyncio.sleep(0.05)


async def test_a_node_with_few_clients_pushes_every_board():
    clients = RecordingClients(20)
    fan_out = FanOut(frames_per_second=20_000)  # 20 clients: a push may follow 1 ms after the last
    await _stream(fan_out, clients, range(1, 21))
    await fan_out.close()
    assert all(seen == list(range(1, 21)) for seen in clients.received.values())


async def test_a_node_past_its_frame_budget_pushes_only_the_newest_board():
    clients = RecordingClients(50)
    fan_out = FanOut(frames_per_second=100)  # 50 clients: one push every half second at most
    await _stream(fan_out, clients, range(1, 21))  # 20 boards in 0.2 s
    await asyncio.sleep(0.5)
    await fan_out.close()
    assert all(seen == [1, 20] for seen in clients.received.values()), clients.received["sid-0"]


class RoomClients:
    """A ClientManager whose clients sit in rooms; notes when each client got which board."""

    def __init__(self, rooms: dict[str, int]) -> None:
        self.rooms = {room: [f"{room}-{n}" for n in range(count)] for room, count in rooms.items()}
        self.received: dict[str, list[tuple[float, str, int]]] = {
            sid: [] for sids in self.rooms.values() for sid in sids
        }

    def get_participants(self, namespace: str, room: str | None):
        sids = self.rooms.get(room, []) if room is not None else list(self.received)
        return [(sid, f"eio-{sid}") for sid in sids]

    async def emit_to_client(self, sid: str, event: str, data: list, namespace: str) -> None:
        payload = data[0]
        board = payload.get("boardId", "global")
        self.received[sid].append((time.monotonic(), board, payload["version"]))


def board_payload(board_id: str, version: int, season: int = 1) -> list:
    if board_id == "global":
        return [{"event": "leaderboardUpdate", "version": version, "top10": []}]
    return [
        {
            "event": "leaderboardUpdate",
            "boardId": board_id,
            "season": season,
            "version": version,
            "top10": [],
        }
    ]


def push(fan_out: FanOut, clients: RoomClients, board_id: str, version: int, season: int = 1):
    data = board_payload(board_id, version, season)
    fan_out.broadcast(clients, "/", "leaderboardUpdate", data, room=board_room(board_id))


async def test_a_client_gets_each_of_its_boards_in_order_however_the_boards_interleave():
    clients = RoomClients({"board:global": 1, "board:weekly": 1})
    both = "both"
    clients.rooms["board:global"].append(both)
    clients.rooms["board:weekly"].append(both)
    clients.received[both] = []
    fan_out = FanOut()
    for sid in clients.received:
        fan_out.follow(sid)
    # Weekly far ahead of global: a version of one board never hides a lower one of another.
    for version in range(1, 6):
        push(fan_out, clients, "weekly", 100 + version)
        await asyncio.sleep(0.01)
        push(fan_out, clients, "global", version)
        await asyncio.sleep(0.01)
    push(fan_out, clients, "weekly", 50)  # late, older: dropped for whoever had newer
    push(fan_out, clients, "global", 2)
    await asyncio.sleep(0.05)
    await fan_out.close()
    seen = {
        board: [v for _, b, v in clients.received[both] if b == board]
        for board in ("global", "weekly")
    }
    assert seen == {"global": [1, 2, 3, 4, 5], "weekly": [101, 102, 103, 104, 105]}
    assert [v for _, _, v in clients.received["board:weekly-0"]] == [101, 102, 103, 104, 105]
    assert [v for _, _, v in clients.received["board:global-0"]] == [1, 2, 3, 4, 5]


async def test_an_older_board_arriving_while_a_newer_one_waits_does_not_replace_it():
    clients = RoomClients({"board:weekly": 3})
    fan_out = FanOut(frames_per_second=100)  # 3 clients: the next push waits 30 ms
    for sid in clients.received:
        fan_out.follow(sid)
    push(fan_out, clients, "weekly", 1)
    await asyncio.sleep(0)  # 1 goes out; what follows waits for the budget
    push(fan_out, clients, "weekly", 3)
    push(fan_out, clients, "weekly", 2)  # a board re-read after a reconnection, older
    await asyncio.sleep(0.1)
    await fan_out.close()
    assert all([v for _, _, v in seen] == [1, 3] for seen in clients.received.values())


async def test_a_new_season_of_a_board_follows_the_last_version_of_the_old_one():
    clients = RoomClients({"board:weekly": 2})
    fan_out = FanOut()
    for sid in clients.received:
        fan_out.follow(sid)
    push(fan_out, clients, "weekly", 40, season=1)
    await asyncio.sleep(0.01)
    push(fan_out, clients, "weekly", 0, season=2)
    await asyncio.sleep(0.01)
    push(fan_out, clients, "weekly", 41, season=1)  # a late push of the season that ended
    await asyncio.sleep(0.02)
    await fan_out.close()
    assert all([v for _, _, v in seen] == [40, 0] for seen in clients.received.values())


async def test_a_busy_board_does_not_hold_a_quiet_boards_push_back_and_shares_its_frame_budget():
    # 50 clients of global at 500 frames a second: a global push every 0.1 s at most.
    clients = RoomClients({"board:global": 50, "board:quiet": 1})
    fan_out = FanOut(frames_per_second=500)
    started = time.monotonic()

    async def busy() -> None:
        for version in range(1, 61):  # a new global board every 10 ms for 0.6 s
            push(fan_out, clients, "global", version)
            await asyncio.sleep(0.01)

    async def quiet() -> None:
        for version in (1, 2):
            await asyncio.sleep(0.25)
            push(fan_out, clients, "quiet", version)

    await asyncio.gather(busy(), quiet())
    await asyncio.sleep(0.2)
    await fan_out.close()
    [(first_at, _, first), (second_at, _, second)] = clients.received["board:quiet-0"]
    assert (first, second) == (1, 2)
    # Each waits at most for the global push under way, never behind global's next one.
    assert first_at - started < 0.25 + 0.12 and second_at - started < 0.5 + 0.12
    global_pushes = [at for at, _, _ in clients.received["board:global-0"]]
    assert 4 <= len(global_pushes) <= 8, global_pushes  # about 0.7 s / 0.1 s, newest only
    assert clients.received["board:global-0"][-1][2] == 60


async def test_a_room_without_clients_on_this_node_costs_nothing():
    clients = RoomClients({"board:global": 50})
    fan_out = FanOut(frames_per_second=100)  # 50 clients: a push costs half a second
    for n in range(200):  # boards nobody here watches, as every node hears through Redis
        push(fan_out, clients, f"elsewhere-{n}", 1)
    push(fan_out, clients, "global", 1)
    await asyncio.sleep(0.05)
    await fan_out.close()
    assert [v for _, _, v in clients.received["board:global-0"]] == [1]
