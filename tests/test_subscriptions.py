"""Choosing boards on connect or by subscribe/unsubscribe: a client gets its boards' pushes only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as redis
import socketio
from aiohttp.test_utils import TestClient

from scoreboard.apply.store.redis_store import RedisLeaderboardStore
from scoreboard.boards.model import Board
from scoreboard.config import Settings
from scoreboard.models import Leaderboard, LeaderboardEntry, ScoreUpdate
from scoreboard.push.broadcast import Broadcaster
from scoreboard.push.channel_emitter import channel_emitter
from scoreboard.push.channels import PushChannels
from scoreboard.push.socketio_internals import close_emitter
from scoreboard.push.subscriptions import MAX_BOARDS_PER_CLIENT
from scoreboard.web.keys import BOARDS
from tests.conftest import REDIS_URL, TokenFactory
from tests.test_end_to_end import (
    EMPTY_SNAPSHOT,
    EVENT_TIMEOUT_SECONDS,
    SOCKETIO_PATH,
    BoardWatcher,
    entry,
)

BOARDS_MADE = ("weekly", "daily", "monthly")
QUIET_SECONDS = 0.3  # how long a client is watched for a push it must not get


def empty(board_id: str) -> dict[str, Any]:
    """What a client holding a board other than global is sent first."""
    return {
        "event": "leaderboardUpdate",
        "boardId": board_id,
        "season": 1,
        "version": 0,
        "top10": [],
    }


def board(board_id: str, version: int, *rows: tuple[str, int]) -> Leaderboard:
    top = tuple(LeaderboardEntry(user, user.title(), score) for user, score in rows)
    return Leaderboard(version, top, board_id=board_id)


class Chooser(BoardWatcher):
    """A BoardWatcher that chooses its boards on connect and hears why it was refused."""

    def __init__(self) -> None:
        super().__init__()
        self.refusals: asyncio.Queue[Any] = asyncio.Queue()
        self.client.on("connect_error", self.refusals.put_nowait)

    async def connect_choosing(self, url: str, token: str, boards: Any) -> None:
        await self.client.connect(
            url,
            auth={"token": token, "boards": boards},
            socketio_path=SOCKETIO_PATH,
            wait_timeout=EVENT_TIMEOUT_SECONDS,
        )

    async def ask(self, event: str, data: Any) -> Any:
        return await self.client.call(event, data, timeout=EVENT_TIMEOUT_SECONDS)

    async def nothing_more(self) -> None:
        await asyncio.sleep(QUIET_SECONDS)
        assert self.updates.empty(), self.updates.get_nowait()

    async def updates_until(self, count: int) -> list[dict[str, Any]]:
        return [await self.next_update() for _ in range(count)]


@pytest.fixture
async def url(api: TestClient) -> str:
    for board_id in BOARDS_MADE:
        await api.app[BOARDS].put(Board(board_id, board_id.title()))
    return str(api.make_url(""))


@pytest.fixture
async def worker_emitter(settings: Settings) -> AsyncIterator[Broadcaster]:
    """Pushes the way a worker sends them: through Redis, each board on its channel."""
    client = redis.from_url(REDIS_URL)
    emitter = channel_emitter(client, REDIS_URL, PushChannels(settings.socketio_channel))
    yield Broadcaster(emitter)
    await emitter.close()
    await client.aclose()


@pytest.fixture
async def older_worker_emitter(settings: Settings) -> AsyncIterator[Broadcaster]:
    """Pushes the way a worker of the version before per-board channels sent them: every board
    on python-socketio's shared channel."""
    emitter = socketio.AsyncRedisManager(
        REDIS_URL, channel=settings.socketio_channel, write_only=True
    )
    yield Broadcaster(emitter)
    await close_emitter(emitter)


@pytest.fixture
async def chooser() -> AsyncIterator[Chooser]:
    watcher = Chooser()
    yield watcher
    if watcher.client.connected:
        await watcher.client.disconnect()


async def test_a_client_holding_two_boards_gets_their_pushes_and_no_other(
    url: str, chooser: Chooser, worker_emitter: Broadcaster, make_token: TokenFactory
):
    await chooser.connect_choosing(url, make_token("viewer"), ["weekly", "daily", "weekly"])
    snapshots = await chooser.updates_until(2)
    assert sorted(snapshots, key=lambda u: u["boardId"]) == [empty("daily"), empty("weekly")]
    for pushed in ("global", "monthly", "weekly", "daily"):
        await worker_emitter.broadcast_top10(board(pushed, 1, ("ann", 5)))
    got = await chooser.updates_until(2)
    await chooser.nothing_more()
    assert got == [
        {
            "event": "leaderboardUpdate",
            "boardId": board_id,
            "season": 1,
            "version": 1,
            "top10": [entry("ann", "Ann", 5)],
        }
        for board_id in ("weekly", "daily")
    ]


async def test_pushes_of_an_older_worker_on_the_shared_channel_still_reach_their_clients(
    url: str, chooser: Chooser, older_worker_emitter: Broadcaster, make_token: TokenFactory
):
    await chooser.connect_choosing(url, make_token("viewer"), ["weekly", "global"])
    await chooser.updates_until(2)  # the snapshots
    for pushed in ("global", "monthly", "weekly"):
        await older_worker_emitter.broadcast_top10(board(pushed, 1, ("ann", 5)))
    got = await chooser.updates_until(2)
    await chooser.nothing_more()
    assert sorted((update.get("boardId", "global"), update["version"]) for update in got) == [
        ("global", 1),
        ("weekly", 1),
    ]


async def test_a_client_that_chooses_nothing_gets_global_exactly_as_spec_md_says(
    url: str, chooser: Chooser, worker_emitter: Broadcaster, make_token: TokenFactory
):
    await chooser.connect(url, make_token("viewer"))
    assert await chooser.next_update() == EMPTY_SNAPSHOT
    await worker_emitter.broadcast_top10(board("weekly", 1, ("ann", 5)))
    await worker_emitter.broadcast_top10(board("global", 1, ("bob", 7)))
    assert await chooser.next_update() == {
        "event": "leaderboardUpdate",
        "version": 1,
        "top10": [entry("bob", "Bob", 7)],
    }
    await chooser.nothing_more()
    assert await chooser.ask("subscribe", {"boards": []}) == {
        "status": "success",
        "boards": ["global"],
    }


async def test_subscribe_and_unsubscribe_are_acknowledged_with_the_boards_now_held(
    url: str, chooser: Chooser, worker_emitter: Broadcaster, make_token: TokenFactory
):
    await chooser.connect(url, make_token("viewer"))
    assert await chooser.next_update() == EMPTY_SNAPSHOT
    ack = await chooser.ask("subscribe", {"boards": ["weekly", "daily"]})
    assert ack == {"status": "success", "boards": ["daily", "global", "weekly"]}
    snapshots = await chooser.updates_until(2)
    assert sorted(s["boardId"] for s in snapshots) == ["daily", "weekly"]
    ack = await chooser.ask("unsubscribe", {"boards": ["global", "daily", "monthly"]})
    assert ack == {"status": "success", "boards": ["weekly"]}
    for pushed in ("global", "daily", "weekly"):
        await worker_emitter.broadcast_top10(board(pushed, 1, ("ann", 5)))
    assert (await chooser.next_update())["boardId"] == "weekly"
    await chooser.nothing_more()
    # Held anew, a board starts over with a snapshot; one still held is not sent again.
    ack = await chooser.ask("subscribe", {"boards": ["global", "weekly"]})
    assert ack == {"status": "success", "boards": ["global", "weekly"]}
    assert await chooser.next_update() == EMPTY_SNAPSHOT
    await chooser.nothing_more()


BAD_REQUESTS: dict[str, tuple[Any, str]] = {
    "unknown board": ({"boards": ["weekly", "nope", "gone"]}, "Unknown boards: nope, gone"),
    "malformed id": ({"boards": ["weekly", "Not An Id"]}, "boards[1] is not a board id"),
    "not a string": ({"boards": [7]}, "boards[0] is not a board id"),
    "not a list": ({"boards": "weekly"}, "boards must be a list of board ids"),
    "no boards": ({}, "boards must be a list of board ids"),
    "not an object": (["weekly"], "boards must be a list of board ids"),
    "too long a list": (
        {"boards": [f"b{n}" for n in range(MAX_BOARDS_PER_CLIENT + 1)]},
        f"boards may list at most {MAX_BOARDS_PER_CLIENT} board ids",
    ),
}


@pytest.mark.parametrize("request_data,message", BAD_REQUESTS.values(), ids=list(BAD_REQUESTS))
async def test_a_bad_subscribe_is_answered_with_an_error_and_changes_nothing(
    url: str, chooser: Chooser, make_token: TokenFactory, request_data: Any, message: str
):
    await chooser.connect(url, make_token("viewer"))
    await chooser.next_update()
    assert await chooser.ask("subscribe", request_data) == {"status": "error", "message": message}
    assert await chooser.ask("subscribe", {"boards": []}) == {
        "status": "success",
        "boards": ["global"],
    }
    await chooser.nothing_more()


async def test_unsubscribe_refuses_only_a_malformed_id(
    url: str, chooser: Chooser, make_token: TokenFactory
):
    await chooser.connect_choosing(url, make_token("viewer"), ["weekly"])
    await chooser.next_update()
    assert await chooser.ask("unsubscribe", {"boards": ["Bad!"]}) == {
        "status": "error",
        "message": "boards[0] is not a board id",
    }
    # A board that does not exist (deleted meanwhile, say) is simply not held.
    assert await chooser.ask("unsubscribe", {"boards": ["never-made", "weekly"]}) == {
        "status": "success",
        "boards": [],
    }


async def test_a_connection_holds_at_most_the_limit_of_boards(
    api: TestClient, url: str, chooser: Chooser, make_token: TokenFactory
):
    many = [f"b{n:02d}" for n in range(MAX_BOARDS_PER_CLIENT)]
    for board_id in many:
        await api.app[BOARDS].put(Board(board_id, board_id))
    await chooser.connect_choosing(url, make_token("viewer"), many[:20])
    await chooser.updates_until(20)
    full = await chooser.ask("subscribe", {"boards": many[20:]})
    assert full == {"status": "success", "boards": many}
    await chooser.updates_until(MAX_BOARDS_PER_CLIENT - 20)
    assert await chooser.ask("subscribe", {"boards": ["weekly", "b00"]}) == {
        "status": "error",
        "message": f"A connection holds at most {MAX_BOARDS_PER_CLIENT} boards",
    }
    assert await chooser.ask("unsubscribe", {"boards": ["b00"]}) == {
        "status": "success",
        "boards": many[1:],
    }
    ack = await chooser.ask("subscribe", {"boards": ["weekly"]})
    assert ack["status"] == "success" and len(ack["boards"]) == MAX_BOARDS_PER_CLIENT


REFUSED_CHOICES: dict[str, tuple[Any, str]] = {
    "unknown board": (["weekly", "nope"], "Unknown board: nope"),
    "malformed id": (["../etc"], "boards[0] is not a board id"),
    "not a list": ("weekly", "boards must be a list of board ids"),
    "too long a list": (
        ["weekly"] * (MAX_BOARDS_PER_CLIENT + 1),
        f"boards may list at most {MAX_BOARDS_PER_CLIENT} board ids",
    ),
}


@pytest.mark.parametrize("boards,message", REFUSED_CHOICES.values(), ids=list(REFUSED_CHOICES))
async def test_a_connection_choosing_a_bad_board_is_refused_saying_why(
    url: str, chooser: Chooser, make_token: TokenFactory, boards: Any, message: str
):
    with pytest.raises(socketio.exceptions.ConnectionError):
        await chooser.connect_choosing(url, make_token("viewer"), boards)
    assert await chooser.refusals.get() == {"message": message}
    assert not chooser.client.connected


async def test_a_bad_token_is_refused_before_the_boards_are_looked_at(url: str, chooser: Chooser):
    with pytest.raises(socketio.exceptions.ConnectionError):
        await chooser.connect_choosing(url, "not-a-jwt", ["nope"])
    assert await chooser.refusals.get() == {"message": "Authentication failed"}


async def test_each_boards_versions_arrive_in_order_on_one_connection(
    url: str, chooser: Chooser, worker_emitter: Broadcaster, make_token: TokenFactory
):
    await chooser.connect_choosing(url, make_token("viewer"), ["weekly", "daily"])
    await chooser.updates_until(2)
    for version in range(1, 41):  # faster than a push each: some are skipped, none reordered
        await worker_emitter.broadcast_top10(board("weekly", version + 100, ("ann", version)))
        await worker_emitter.broadcast_top10(board("daily", version, ("bob", version)))
    seen: dict[str, list[int]] = {"weekly": [], "daily": []}
    while seen["weekly"][-1:] != [140] or seen["daily"][-1:] != [40]:
        update = await chooser.next_update()
        seen[update["boardId"]].append(update["version"])
    assert all(versions == sorted(set(versions)) for versions in seen.values()), seen


async def test_the_longest_ids_up_to_the_documented_limit_fit_in_a_connect(
    api: TestClient, url: str, chooser: Chooser, make_token: TokenFactory
):
    events = (Path(__file__).parent.parent / "docs" / "events.md").read_text()
    assert f"at most **{MAX_BOARDS_PER_CLIENT} boards**" in events
    longest = [f"{n:02d}" + "x" * 62 for n in range(MAX_BOARDS_PER_CLIENT)]
    for board_id in longest:
        await api.app[BOARDS].put(Board(board_id, "Long"))
    await chooser.connect_choosing(url, make_token("a-viewer-with-a-long-name" * 4), longest)
    snapshots = await chooser.updates_until(MAX_BOARDS_PER_CLIENT)
    assert sorted(s["boardId"] for s in snapshots) == longest


async def test_an_empty_choice_holds_nothing_until_a_subscribe(
    url: str, chooser: Chooser, worker_emitter: Broadcaster, make_token: TokenFactory
):
    await chooser.connect_choosing(url, make_token("viewer"), [])
    await worker_emitter.broadcast_top10(board("global", 1, ("ann", 5)))
    await chooser.nothing_more()
    ack = await chooser.ask("subscribe", {"boards": ["global"]})
    assert ack == {"status": "success", "boards": ["global"]}
    snapshot = await chooser.next_update()
    assert set(snapshot) == {"event", "version", "top10"}


async def test_a_subscription_snapshot_is_the_boards_live_top_from_its_store(
    url: str, chooser: Chooser, make_token: TokenFactory, namespace: str
):
    client = redis.from_url(REDIS_URL)
    try:
        weekly = RedisLeaderboardStore(client, f"{namespace}:").for_board(Board("weekly", "W"))
        await weekly.apply([ScoreUpdate.new("ann", "Ann", 5, board=Board("weekly", "W"))])
    finally:
        await client.aclose()
    await chooser.connect_choosing(url, make_token("viewer"), ["weekly"])
    assert await chooser.next_update() == {
        "event": "leaderboardUpdate",
        "boardId": "weekly",
        "season": 1,
        "version": 1,
        "top10": [entry("ann", "Ann", 5)],
    }
