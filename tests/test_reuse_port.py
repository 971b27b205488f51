"""REUSE_PORT: web processes sharing one port, and one of them killed while clients watch."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import socketio

from scoreboard.api.endpoints import SOCKETIO_PATH
from scoreboard.config import Settings
from scoreboard.errors import ConfigError
from scoreboard.intake.auth import issue_token
from tests.conftest import JWT_SECRET
from tests.processes import Processes, WebProcess, free_port, wait_for_broadcast_listeners
from tests.score_stream import stream_updates, wait_for_totals
from tests.scrape import eventually, scrape_url

WEB_NODES = 3
WORKERS = 2
CLIENTS = 36  # over 3 nodes: the kernel leaves one without a client once in about 700,000 runs
USERS = [f"r{i}" for i in range(6)]
SLOW = 90.0  # seconds: generous for a loaded 2-core machine; nothing here times the service


def test_reuse_port_is_off_by_default_and_needs_the_distributed_mode(env: dict[str, str]):
    assert Settings.from_env(env).reuse_port is False
    assert Settings.from_env({**env, "REUSE_PORT": "1"}).reuse_port is True
    with pytest.raises(ConfigError, match="REUSE_PORT needs REDIS_URL and RABBITMQ_URL"):
        Settings.from_env({"REUSE_PORT": "1"})


class Viewer:
    """A python-socketio client on the websocket transport that reconnects by itself (as
    socket.io-client does), keeping each board it is sent and when it (re)connected."""

    def __init__(self) -> None:
        self.client = socketio.AsyncClient(reconnection_delay=0.5, reconnection_delay_max=2)
        self.updates: list[dict[str, Any]] = []
        self.connected_after: list[int] = []  # at each connection: how many updates it had
        self.drops = 0
        self.client.on("connect", self._connected)
        self.client.on("disconnect", self._dropped)
        self.client.on("leaderboardUpdate", self.updates.append)

    async def _connected(self) -> None:
        self.connected_after.append(len(self.updates))

    async def _dropped(self, *reason: Any) -> None:
        self.drops += 1

    async def connect(self, url: str, token: str) -> None:
        await self.client.connect(
            url,
            auth={"token": token},
            transports=["websocket"],
            socketio_path=SOCKETIO_PATH,
            wait_timeout=SLOW,
        )

    def board(self) -> dict[str, int]:
        if not self.updates:
            return {}
        return {row["userId"]: row["score"] for row in self.updates[-1]["top10"]}

    def versions(self) -> list[int]:
        return [update["version"] for update in self.updates]


def clients_on(node: WebProcess) -> int:
    """The node's own count of its Socket.IO clients, read on its OPS_PORT."""
    assert node.ops_port is not None
    scrape = scrape_url(f"{node.url_at(node.ops_port)}/metrics")
    return int(scrape.value("scoreboard_socketio_clients"))


async def test_three_web_nodes_on_one_port_lose_one_and_every_client_ends_on_the_final_board(
    env: dict[str, str], tmp_path: Path
):
    """The nodes share PORT (REUSE_PORT); each answers /metrics on an OPS_PORT of its own.

    POSTs pause for the instant of the kill: a POST the kill cuts has an outcome nobody knows
    (its update may be queued already), and the expected board is computed from the 200s alone.
    The workers are still applying and pushing the first phase when the node dies.
    """
    shared_port = free_port()
    base = {**env, "RATE_LIMIT": "1000000/minute", "REUSE_PORT": "1"}
    settings = Settings.from_env(base)
    assert settings.redis_url is not None
    tokens = {user: issue_token(JWT_SECRET, user) for user in USERS}
    viewers = [Viewer() for _ in range(CLIENTS)]
    with Processes(tmp_path) as processes:
        nodes = [
            processes.start_web({**base, "OPS_PORT": str(free_port())}, port=shared_port)
            for _ in range(WEB_NODES)
        ]
        for _ in range(WORKERS):
            processes.start_worker({**base, "METRICS_PORT": "0"}, timeout=SLOW)
        wait_for_broadcast_listeners(settings.redis_url, settings.socketio_channel, WEB_NODES)
        url = nodes[0].url  # the one port every node listens on
        try:
            gate = asyncio.Semaphore(6)

            async def connect(viewer: Viewer, number: int) -> None:
                async with gate:
                    await viewer.connect(url, issue_token(JWT_SECRET, f"viewer{number}"))

            await asyncio.gather(*(connect(viewer, n) for n, viewer in enumerate(viewers)))
            spread = [clients_on(node) for node in nodes]
            assert sum(spread) == CLIENTS and min(spread) > 0, spread

            first = await stream_updates(url, tokens, duration=2.0, concurrency=4)
            assert set(first.statuses) == {200}, first.statuses
            victim = nodes[spread.index(max(spread))]
            victim.kill()
            survivors = [node for node in nodes if node is not victim]

            async def its_clients_are_back_on_the_others() -> bool:
                dropped = [viewer for viewer in viewers if viewer.drops]
                return (
                    len(dropped) == max(spread)
                    and all(len(viewer.connected_after) == 2 for viewer in dropped)
                    and sum(clients_on(node) for node in survivors) == CLIENTS
                )

            await eventually(its_clients_are_back_on_the_others, "clients reconnected", SLOW)
            # Before any more updates: every client, reconnected or not, has the first phase's
            # board; a reconnected one was sent it on its new node.
            after_first = dict(first.accepted)
            totals = await wait_for_totals(
                settings.redis_url, settings.redis_key_prefix, first.accepted, timeout=SLOW
            )
            assert totals == after_first

            async def every_client_has_the_first_board() -> bool:
                return all(viewer.board() == after_first for viewer in viewers)

            await eventually(every_client_has_the_first_board, "the first phase's board", SLOW)
            for viewer in viewers:
                if viewer.drops:
                    assert len(viewer.updates) > viewer.connected_after[1]

            second = await stream_updates(url, tokens, duration=2.0, concurrency=4)
            assert set(second.statuses) == {200}, second.statuses
            expected = dict(Counter(first.accepted) + Counter(second.accepted))
            totals = await wait_for_totals(
                settings.redis_url, settings.redis_key_prefix, Counter(expected), timeout=SLOW
            )
            assert totals == expected

            async def every_client_has_the_final_board() -> bool:
                return all(viewer.board() == expected for viewer in viewers)

            await eventually(every_client_has_the_final_board, "the final board", SLOW)
            for viewer in viewers:  # never back to an older board, not even across nodes
                assert viewer.versions() == sorted(viewer.versions())
        finally:
            for viewer in viewers:
                await viewer.client.disconnect()
