"""The library internals the fan-out relies on: checked at start-up, with a public fallback."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
import redis.asyncio as redis
import socketio
from aiohttp.test_utils import TestClient
from engineio.async_drivers import aiohttp as engineio_aiohttp
from socketio.async_pubsub_manager import AsyncPubSubManager

from scoreboard.config import Settings
from scoreboard.intake.auth import issue_token
from scoreboard.push.socketio_internals import DirectWebSocket, FanOutManager
from scoreboard.web.app import create_app
from tests.conftest import JWT_SECRET, REDIS_URL, bearer
from tests.processes import Processes
from tests.scrape import Scrape
from tests.test_end_to_end import BoardWatcher
from tests.test_fan_out import leave
from tests.test_js_client import SCRIPT

INTERNALS_LOG = "scoreboard.push.socketio_internals"
FAN_OUT_LOG = "scoreboard.push.fan_out"
CHANGED_INTERNAL = "engineio.async_drivers.aiohttp.WebSocket.__call__(environ)"
TRANSPORTS: list[list[str] | None] = [None, ["websocket"], ["polling"]]
BACKENDS = ("REDIS_URL", "RABBITMQ_URL", "DATABASE_URL")
UPDATES = 6
WAIT_SECONDS = 10.0
URL = "/api/score/update"


@pytest.fixture
def changed_engineio(monkeypatch: pytest.MonkeyPatch) -> None:
    """engineio's aiohttp WebSocket as a newer release might have it: `__call__` grew a parameter.

    It still works for python-engineio itself; the direct fan-out must no longer rely on it.
    """
    original = engineio_aiohttp.WebSocket.__call__

    async def call(self: Any, environ: dict[str, Any], *options: Any) -> Any:
        return await original(self, environ)

    monkeypatch.setattr(engineio_aiohttp.WebSocket, "__call__", call)


@pytest.fixture
def single_process_env(env: dict[str, str]) -> dict[str, str]:
    """This test's environment without the backing services: queue, board and worker in-process."""
    return {name: value for name, value in env.items() if name not in BACKENDS}


async def scrape(api: TestClient) -> Scrape:
    return Scrape.parse(await (await api.get("/metrics")).text())


def internals_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == INTERNALS_LOG and record.levelno >= logging.WARNING
    ]


@pytest.mark.parametrize("mode", ["single-process", "distributed"])
async def test_with_the_pinned_libraries_every_internal_checks_out(
    aiohttp_client, env, single_process_env, caplog: pytest.LogCaptureFixture, mode: str
):
    api = await aiohttp_client(
        create_app(Settings.from_env(env if mode == "distributed" else single_process_env))
    )
    assert (await scrape(api)).value("scoreboard_fan_out_direct") == 1
    assert internals_warnings(caplog) == []


@pytest.fixture
def changed_pubsub_delivery(monkeypatch: pytest.MonkeyPatch) -> None:
    """python-socketio's pub/sub handing other nodes' emits straight to AsyncManager.emit."""

    async def handle_emit(self: Any, message: dict[str, Any]) -> None:
        [data] = message["data"]
        await socketio.AsyncManager.emit(self, message["event"], data, message["namespace"])

    monkeypatch.setattr(AsyncPubSubManager, "_handle_emit", handle_emit)


@pytest.mark.parametrize(
    ("mode", "change", "changed_internal"),
    [
        ("single-process", "changed_engineio", CHANGED_INTERNAL),
        (
            "distributed",
            "changed_pubsub_delivery",
            "AsyncPubSubManager handing other nodes' broadcasts to FanOutManager.emit",
        ),
    ],
)
async def test_a_changed_internal_is_named_in_one_warning_and_broadcasts_take_socketio_emit(
    aiohttp_client,
    env,
    single_process_env,
    caplog: pytest.LogCaptureFixture,
    request: pytest.FixtureRequest,
    mode: str,
    change: str,
    changed_internal: str,
):
    request.getfixturevalue(change)
    api = await aiohttp_client(
        create_app(Settings.from_env(env if mode == "distributed" else single_process_env))
    )
    [warning] = internals_warnings(caplog)
    assert changed_internal in warning
    assert "broadcasts go through python-socketio's own emit" in warning
    assert (await scrape(api)).value("scoreboard_fan_out_direct") == 0


async def post_score(api: TestClient, user: str, increment: int = 1) -> None:
    response = await api.post(
        URL,
        json={"userId": user, "scoreIncrement": increment},
        headers=bearer(issue_token(JWT_SECRET, user)),
    )
    assert response.status == 200, await response.text()


async def wait_for_subscribers(channel: str, count: int) -> None:
    """Wait, without blocking the loop the app runs on, until `count` nodes hear broadcasts."""
    client = redis.from_url(REDIS_URL)
    try:
        async with asyncio.timeout(WAIT_SECONDS):
            while (await client.pubsub_numsub(channel))[0][1] < count:
                await asyncio.sleep(0.05)
    finally:
        await client.aclose()


@pytest.mark.parametrize("mode", ["single-process", "distributed"])
async def test_on_the_fallback_python_and_js_clients_get_every_board_in_version_order(
    aiohttp_client,
    env,
    single_process_env,
    changed_engineio,
    processes: Processes,
    caplog: pytest.LogCaptureFixture,
    mode: str,
):
    chosen = {**(env if mode == "distributed" else single_process_env), "BROADCAST_HZ": "0"}
    settings = Settings.from_env(chosen)
    api = await aiohttp_client(create_app(settings))
    assert internals_warnings(caplog), "the fallback was not taken"
    if mode == "distributed":
        processes.start_worker(chosen)
        await wait_for_subscribers(settings.socketio_channel, 1)
    url = str(api.make_url(""))
    watchers = [BoardWatcher() for _ in TRANSPORTS]
    for watcher, transports in zip(watchers, TRANSPORTS, strict=True):
        await watcher.connect(url, issue_token(JWT_SECRET, "viewer"), transports=transports)
        assert (await watcher.next_update())["version"] == 0
    js_client = await asyncio.create_subprocess_exec(
        "node",
        str(SCRIPT),
        url,
        issue_token(JWT_SECRET, "viewer"),
        "last",  # the script exits once user "last" is on the board
        "--timeout-ms",
        str(int(WAIT_SECONDS * 1000)),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert js_client.stdout is not None
        async with asyncio.timeout(WAIT_SECONDS):
            snapshot = await js_client.stdout.readline()  # connected: it sees every board
        for version, user in enumerate([f"u{n}" for n in range(UPDATES - 1)] + ["last"], start=1):
            await post_score(api, user, increment=version)
            for watcher in watchers:
                assert (await watcher.next_update())["version"] == version
        async with asyncio.timeout(WAIT_SECONDS):
            output, errors = await js_client.communicate()
        assert js_client.returncode == 0, errors.decode()
    finally:
        if js_client.returncode is None:
            js_client.kill()
            await js_client.wait()
        await asyncio.gather(*(leave(watcher) for watcher in watchers))
    every_board = list(range(UPDATES + 1))
    assert [watcher.versions for watcher in watchers] == [every_board] * len(watchers)
    js_boards = [json.loads(line) for line in (snapshot + output).decode().splitlines()]
    assert [board["version"] for board in js_boards] == every_board
    assert js_boards[-1]["top10"][0] == {"userId": "last", "username": "last", "score": UPDATES}
    messages = await scrape(api)
    assert messages.value("scoreboard_socketio_messages_total", path="socketio") > 0
    assert messages.value("scoreboard_socketio_messages_total", path="direct") == 0


async def test_a_fan_out_that_raises_is_logged_counted_and_later_boards_still_arrive(
    aiohttp_client, single_process_env, monkeypatch, caplog: pytest.LogCaptureFixture
):
    calls = 0
    write_if_idle = DirectWebSocket.write_if_idle

    def fails_once_midway(self: DirectWebSocket, frame: bytes) -> bool:
        nonlocal calls
        calls += 1
        if calls == 2:  # the second client of the first broadcast
            raise RuntimeError("the transport went away mid-write")
        return write_if_idle(self, frame)

    monkeypatch.setattr(DirectWebSocket, "write_if_idle", fails_once_midway)
    settings = Settings.from_env({**single_process_env, "BROADCAST_HZ": "0"})
    api = await aiohttp_client(create_app(settings))
    url = str(api.make_url(""))
    watchers = [BoardWatcher() for _ in range(3)]
    for watcher in watchers:
        await watcher.connect(url, issue_token(JWT_SECRET, "viewer"), transports=["websocket"])
        assert (await watcher.next_update())["version"] == 0
    await asyncio.sleep(0.2)  # every connection idle: the next board is written directly
    try:
        for version in (1, 2, 3):
            await post_score(api, f"u{version}")
            for watcher in watchers:
                assert (await watcher.next_update())["version"] == version
    finally:
        await asyncio.gather(*(leave(watcher) for watcher in watchers))
    assert [watcher.versions for watcher in watchers] == [[0, 1, 2, 3]] * 3, "lost or doubled"
    [failure] = [r for r in caplog.records if r.name == FAN_OUT_LOG and r.exc_info is not None]
    assert "direct fan-out of leaderboardUpdate failed" in failure.getMessage()
    assert "the transport went away mid-write" in caplog.text  # with its traceback
    metrics = await scrape(api)
    assert metrics.value("scoreboard_fan_out_errors_total", path="direct") == 1
    assert metrics.value("scoreboard_socketio_messages_total", path="socketio") == 2
    assert metrics.value("scoreboard_fan_out_direct") == 1, "later boards are written directly"


async def test_a_failing_socketio_emit_is_logged_counted_and_the_next_board_goes_out(
    aiohttp_client, single_process_env, changed_engineio, monkeypatch, caplog
):
    emit_to_client = FanOutManager.emit_to_client
    failed = False

    async def fails_once(self: FanOutManager, sid: str, *arguments: Any) -> None:
        nonlocal failed
        if not failed and arguments[1][0]["version"] == 1:
            failed = True
            raise RuntimeError("python-socketio could not queue the packet")
        await emit_to_client(self, sid, *arguments)

    monkeypatch.setattr(FanOutManager, "emit_to_client", fails_once)
    settings = Settings.from_env({**single_process_env, "BROADCAST_HZ": "0"})
    api = await aiohttp_client(create_app(settings))
    watcher = BoardWatcher()
    await watcher.connect(str(api.make_url("")), issue_token(JWT_SECRET, "viewer"))
    try:
        assert (await watcher.next_update())["version"] == 0
        await post_score(api, "u1")
        async with asyncio.timeout(WAIT_SECONDS):
            while not failed:  # board 1 tried and failed before board 2 could replace it
                await asyncio.sleep(0.01)
        await post_score(api, "u2")
        assert (await watcher.next_update())["version"] == 2  # the whole board, u1 included
    finally:
        await leave(watcher)
    [failure] = [r for r in caplog.records if r.name == FAN_OUT_LOG and r.exc_info is not None]
    assert "through python-socketio's emit failed" in failure.getMessage()
    assert "python-socketio could not queue the packet" in caplog.text
    assert (await scrape(api)).value("scoreboard_fan_out_errors_total", path="socketio") == 1
