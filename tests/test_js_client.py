"""The real JavaScript client (socket.io-client 4 on Node) against real server and worker."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as redis
import socketio

from scoreboard.boards.model import Board
from scoreboard.boards.registry import RedisBoardStorage
from scoreboard.config import Settings
from scoreboard.models import Leaderboard, LeaderboardEntry
from scoreboard.push.broadcast import Broadcaster
from scoreboard.push.socketio_internals import close_emitter
from tests.conftest import REDIS_URL, TokenFactory
from tests.processes import (
    PROJECT_ROOT,
    ServiceProcess,
    WebProcess,
    process_env,
)
from tests.test_end_to_end import EMPTY_SNAPSHOT, EVENT_TIMEOUT_SECONDS, entry, post_score

JS_DIR = PROJECT_ROOT / "tests" / "js"
SCRIPT = JS_DIR / "watch_leaderboard.mjs"
SCRIPT_TIMEOUT_MS = 10_000
EXIT_TIMEOUT_SECONDS = SCRIPT_TIMEOUT_MS / 1000 + 5
MISSING_NODE_MODULES = "tests/js/node_modules is missing: run `npm ci --prefix tests/js`"
TRANSPORTS = pytest.mark.parametrize(
    "transports", [None, ["websocket"]], ids=["polling-upgrade", "websocket-only"]
)


@pytest.fixture(autouse=True)
def node_client() -> None:
    """Fail at once, saying what to do, when Node or the installed client is missing."""
    if shutil.which("node") is None:
        pytest.fail("node is not on PATH; these tests run the JavaScript client", pytrace=False)
    if not (JS_DIR / "node_modules" / "socket.io-client").is_dir():
        pytest.fail(MISSING_NODE_MODULES, pytrace=False)


@contextmanager
def watch_script(
    log_dir: Path,
    url: str,
    token: str,
    user_id: str,
    transports: Sequence[str] | None,
    options: Sequence[str] = (),
) -> Iterator[ServiceProcess]:
    """watch_leaderboard.mjs running; stopped on the way out if it has not exited."""
    argv = ["node", str(SCRIPT), url, token, user_id, "--timeout-ms", str(SCRIPT_TIMEOUT_MS)]
    if transports is not None:
        argv += ["--transports", ",".join(transports)]
    argv += options
    script = ServiceProcess(
        "watch_leaderboard", argv, process_env({}), log_dir / "node.out", log_dir / "node.err"
    )
    try:
        yield script
    finally:
        script.stop()


def printed_updates(stdout: str) -> list[dict[str, Any]]:
    """The JSON lines the script completed so far."""
    complete, _, _ = stdout.rpartition("\n")
    return [json.loads(line) for line in complete.splitlines()]


@TRANSPORTS
async def test_js_client_gets_snapshot_then_the_update_and_exits_0(
    web: WebProcess,
    http: aiohttp.ClientSession,
    make_token: TokenFactory,
    tmp_path: Path,
    transports: list[str] | None,
) -> None:
    with watch_script(tmp_path, web.url, make_token("viewer"), "alice", transports) as script:
        script.wait_for_output("\n", EVENT_TIMEOUT_SECONDS)
        if transports is None:
            upgraded = "upgraded transport=websocket"
            script.wait_until(lambda: upgraded in script.errors, upgraded, EVENT_TIMEOUT_SECONDS)
        await post_score(http, web, make_token("alice", "Alice"), "alice", 5)
        finished = script.wait(EXIT_TIMEOUT_SECONDS)
    assert finished.returncode == 0, finished.errors
    assert printed_updates(finished.output) == [
        EMPTY_SNAPSHOT,
        {"event": "leaderboardUpdate", "version": 1, "top10": [entry("alice", "Alice", 5)]},
    ]
    first_transport = "polling" if transports is None else "websocket"
    assert finished.errors.startswith(f"open transport={first_transport}\n"), finished.errors
    assert "found alice transport=websocket" in finished.errors


@TRANSPORTS
def test_js_client_with_a_bad_token_gets_connect_error(
    web: WebProcess, tmp_path: Path, transports: list[str] | None
) -> None:
    with watch_script(tmp_path, web.url, "not-a-jwt", "alice", transports) as script:
        finished = script.wait(EXIT_TIMEOUT_SECONDS)
    assert finished.returncode == 1, finished.errors
    assert "connect_error: Authentication failed" in finished.errors
    assert finished.output == ""


@pytest.fixture
async def worker_emitter(env: dict[str, str]) -> AsyncIterator[Broadcaster]:
    """Pushes the way a worker sends them, and weekly, daily and monthly made in the registry."""
    settings = Settings.from_env(env)
    client = redis.from_url(REDIS_URL)
    storage = RedisBoardStorage(client, settings.redis_key_prefix)
    for board_id in ("weekly", "daily", "monthly"):
        await storage.save(Board(board_id, board_id.title()))
    emitter = socketio.AsyncRedisManager(
        REDIS_URL, channel=settings.socketio_channel, write_only=True
    )
    yield Broadcaster(emitter)
    await close_emitter(emitter)
    await client.aclose()


def js_payload(board_id: str, version: int, *rows: dict[str, object]) -> dict[str, Any]:
    return {
        "event": "leaderboardUpdate",
        "boardId": board_id,
        "season": 1,
        "version": version,
        "top10": list(rows),
    }


async def test_js_client_choosing_boards_gets_those_boards_only(
    web: WebProcess,
    worker_emitter: Broadcaster,
    make_token: TokenFactory,
    tmp_path: Path,
) -> None:
    alice, bob = LeaderboardEntry("alice", "Alice", 5), LeaderboardEntry("bob", "Bob", 3)
    with watch_script(
        tmp_path,
        web.url,
        make_token("viewer"),
        "alice",
        ["websocket"],
        ["--boards", "weekly", "--subscribe", "daily"],
    ) as script:
        acked = "ack subscribe "
        script.wait_until(lambda: acked in script.errors, "acknowledged", EVENT_TIMEOUT_SECONDS)
        script.wait_until(lambda: script.output.count("\n") == 2, "2 snapshots", 5)
        for board_id in ("global", "monthly"):  # alice is on both, and neither is held
            await worker_emitter.broadcast_top10(Leaderboard(1, (alice,), board_id))
        await worker_emitter.broadcast_top10(Leaderboard(1, (bob,), "daily"))
        script.wait_until(lambda: script.output.count("\n") == 3, "daily's push", 5)
        await worker_emitter.broadcast_top10(Leaderboard(1, (alice,), "weekly"))
        finished = script.wait(EXIT_TIMEOUT_SECONDS)
    assert finished.returncode == 0, finished.errors
    ack = finished.errors.split(acked, 1)[1].splitlines()[0]
    assert json.loads(ack) == {"status": "success", "boards": ["daily", "weekly"]}
    assert printed_updates(finished.output) == [
        js_payload("weekly", 0),
        js_payload("daily", 0),
        js_payload("daily", 1, entry("bob", "Bob", 3)),
        js_payload("weekly", 1, entry("alice", "Alice", 5)),
    ]


def test_js_client_choosing_an_unknown_board_gets_connect_error_saying_so(
    web: WebProcess, make_token: TokenFactory, tmp_path: Path
) -> None:
    with watch_script(
        tmp_path, web.url, make_token("viewer"), "alice", None, ["--boards", "global,nope"]
    ) as script:
        finished = script.wait(EXIT_TIMEOUT_SECONDS)
    assert finished.returncode == 1, finished.errors
    assert "connect_error: Unknown board: nope" in finished.errors
    assert finished.output == ""
