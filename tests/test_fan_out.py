"""Broadcasts written once per client straight to the websocket: in order, complete, counted."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from scoreboard.config import Settings
from scoreboard.intake.auth import issue_token
from scoreboard.push.broadcast import LEADERBOARD_EVENT
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
