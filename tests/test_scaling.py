"""Several web nodes and workers: every client, on any node, ends on the true top 10, and a
node hears only the boards its clients hold."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import aiohttp
import redis.asyncio as redis

from scoreboard.config import Settings
from scoreboard.intake.auth import issue_token
from scoreboard.push.channels import PushChannels
from tests.conftest import JWT_SECRET, bearer
from tests.processes import Processes, WebProcess, wait_for_broadcast_listeners
from tests.score_stream import stream_updates, wait_for_totals
from tests.scrape import eventually, scrape_url
from tests.test_end_to_end import BoardWatcher, watching
from tests.test_subscriptions import Chooser

USERS = [f"s{i}" for i in range(8)]


async def settle_on(watcher: BoardWatcher, expected: dict[str, int]) -> dict[str, int]:
    """Read updates until the watcher's board shows `expected`; return the last board seen."""
    seen: dict[str, int] = {}
    while seen != expected:
        update = await watcher.next_update(timeout=5)
        seen = {row["userId"]: row["score"] for row in update["top10"]}
    return seen


async def test_every_client_on_every_node_sees_the_final_board(env, tmp_path: Path):
    env = {**env, "RATE_LIMIT": "1000000/minute"}
    tokens = {user: issue_token(JWT_SECRET, user) for user in USERS}
    with Processes(tmp_path) as processes:
        nodes = [processes.start_web(env), processes.start_web(env)]
        processes.start_worker(env)
        processes.start_worker(env)
        settings = Settings.from_env(env)
        assert settings.redis_url is not None
        wait_for_broadcast_listeners(settings.redis_url, settings.socketio_channel, 2)
        async with (
            watching(nodes[0].url, tokens["s0"]) as first,
            watching(nodes[1].url, tokens["s1"]) as second,
        ):
            result = await stream_updates(nodes[0].url, tokens, duration=1.0, concurrency=4)
            more = await stream_updates(nodes[1].url, tokens, duration=1.0, concurrency=4)
            expected = result.accepted + more.accepted
            totals = await wait_for_totals(env["REDIS_URL"], env["REDIS_KEY_PREFIX"], expected)
            assert totals == dict(expected)
            assert await settle_on(first, totals) == totals
            assert await settle_on(second, totals) == totals


ADMIN_TOKEN = issue_token(JWT_SECRET, "root", "Root", extra_claims={"role": "admin"})
BOARD_OF_USER = {f"{board}{i}": board for board in ("x", "y") for i in range(4)}
RECEIVED = "scoreboard_pushes_received_total"


async def create_boards(node: WebProcess, board_ids: list[str]) -> None:
    async with aiohttp.ClientSession() as session:
        for board_id in board_ids:
            async with session.put(
                f"{node.url}/api/admin/boards/{board_id}",
                json={"name": board_id.upper()},
                headers=bearer(ADMIN_TOKEN),
            ) as response:
                assert response.status == 201, await response.text()


@asynccontextmanager
async def published_pushes(redis_url: str, channels: PushChannels) -> AsyncIterator[Counter[str]]:
    """Counts what is published on every board channel, by board, without subscribing to any
    (a pattern subscription: PUBSUB NUMSUB, which publishers read, leaves it out)."""
    counts: Counter[str] = Counter()
    client = redis.from_url(redis_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    await pubsub.psubscribe(channels.board("*"))

    async def tally() -> None:
        async for message in pubsub.listen():
            board_id = channels.board_of(message["channel"].decode())
            if board_id is not None:
                counts[board_id] += 1

    counting = asyncio.create_task(tally())
    try:
        yield counts
    finally:
        counting.cancel()
        await asyncio.gather(counting, return_exceptions=True)
        await pubsub.aclose()
        await client.aclose()


async def settle_on_board(watcher: BoardWatcher, expected: dict[str, int]) -> set[str]:
    """Read updates until the watcher's board shows `expected` exactly; return the boards of
    the updates read."""
    seen: dict[str, int] = {}
    boards = set()
    while seen != expected:
        update = await watcher.next_update(timeout=30)
        boards.add(update.get("boardId", "global"))
        seen = {row["userId"]: row["score"] for row in update["top10"]}
    return boards


async def test_a_web_node_hears_only_the_boards_its_clients_hold(env, tmp_path: Path):
    env = {**env, "RATE_LIMIT": "1000000/minute"}
    tokens = {user: issue_token(JWT_SECRET, user) for user in BOARD_OF_USER}
    settings = Settings.from_env(env)
    assert settings.redis_url is not None
    channels = PushChannels(settings.socketio_channel)
    with Processes(tmp_path) as processes:
        node_a, node_b = processes.start_web(env), processes.start_web(env)
        processes.start_worker(env)
        wait_for_broadcast_listeners(settings.redis_url, settings.socketio_channel, 2)
        await create_boards(node_a, ["x", "y"])
        async with AsyncExitStack() as stack:
            published = await stack.enter_async_context(
                published_pushes(settings.redis_url, channels)
            )
            watchers: dict[str, list[Chooser]] = {"x": [], "y": []}
            for node, board_id in ((node_a, "x"), (node_b, "y")):
                for index in range(3):
                    watcher = Chooser()
                    token = issue_token(JWT_SECRET, f"viewer-{board_id}{index}")
                    await watcher.connect_choosing(node.url, token, [board_id])
                    stack.push_async_callback(watcher.client.disconnect)
                    watchers[board_id].append(watcher)
            result = await stream_updates(
                [node_a.url, node_b.url], tokens, duration=2.0, concurrency=4, boards=BOARD_OF_USER
            )
            assert set(result.statuses) == {200}, result.statuses
            for board_id, board_watchers in watchers.items():
                expected = {
                    user: count
                    for user, count in result.accepted.items()
                    if BOARD_OF_USER[user] == board_id
                }
                for watcher in board_watchers:
                    assert await settle_on_board(watcher, expected) == {board_id}
                    assert watcher.versions == sorted(watcher.versions)

            async def every_push_reached_its_node() -> bool:
                heard_a, heard_b = (
                    scrape_url(f"{node_a.url}/metrics"),
                    scrape_url(f"{node_b.url}/metrics"),
                )
                return (
                    heard_a.value(RECEIVED, board="x", channel="board") == published["x"]
                    and heard_b.value(RECEIVED, board="y", channel="board") == published["y"]
                )

            await eventually(every_push_reached_its_node, "every push on its node", timeout=30)
            assert published["x"] > 1 and published["y"] > 1
            # Neither node heard the other's board, on any channel.
            assert scrape_url(f"{node_a.url}/metrics").label_values(RECEIVED, "board") == {"x"}
            assert scrape_url(f"{node_b.url}/metrics").label_values(RECEIVED, "board") == {"y"}
