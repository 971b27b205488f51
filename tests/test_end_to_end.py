"""End to end: real server.py and worker.py processes, driven over HTTP and Socket.IO."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
import socketio

from scoreboard.intake.auth import issue_token
from tests.conftest import JWT_SECRET, TokenFactory, bearer
from tests.processes import (
    BACKEND_VARIABLES,
    Processes,
    WebProcess,
    free_port,
    run_to_exit,
)

SOCKETIO_PATH = "/ws/scoreboard"
EVENT_TIMEOUT_SECONDS = 5.0
EMPTY_SNAPSHOT = {"event": "leaderboardUpdate", "version": 0, "top10": []}
DEMO_TOKEN = re.compile(r"demo token for user 'demo': (\S+)")

Update = dict[str, Any]


class BoardWatcher:
    """A python-socketio client that keeps every leaderboardUpdate it receives, in order."""

    def __init__(self) -> None:
        self.client = socketio.AsyncClient(reconnection=False)
        self.updates: asyncio.Queue[Update] = asyncio.Queue()
        self.versions: list[int] = []
        self.client.on("leaderboardUpdate", self._received)

    async def _received(self, update: Update) -> None:
        self.versions.append(update["version"])
        self.updates.put_nowait(update)

    async def connect(
        self,
        url: str,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
        transports: list[str] | None = None,
    ) -> None:
        """Connect with `auth={"token": token}` when a token is given, else headers only."""
        await self.client.connect(
            url,
            headers=dict(headers or {}),
            auth=None if token is None else {"token": token},
            transports=transports,
            socketio_path=SOCKETIO_PATH,
            wait_timeout=EVENT_TIMEOUT_SECONDS,
        )

    async def next_update(self, timeout: float = EVENT_TIMEOUT_SECONDS) -> Update:
        """The next leaderboardUpdate, waiting at most `timeout` seconds."""
        async with asyncio.timeout(timeout):
            return await self.updates.get()

    async def update_where(
        self, wanted: Callable[[Update], bool], timeout: float = EVENT_TIMEOUT_SECONDS
    ) -> Update:
        """Skip updates until one satisfies `wanted`."""
        async with asyncio.timeout(timeout):
            while not wanted(update := await self.updates.get()):
                pass
            return update


@asynccontextmanager
async def watching(
    url: str,
    token: str | None = None,
    headers: Mapping[str, str] | None = None,
    transports: list[str] | None = None,
) -> AsyncIterator[BoardWatcher]:
    """A connected BoardWatcher, disconnected on the way out."""
    watcher = BoardWatcher()
    await watcher.connect(url, token, headers, transports)
    try:
        yield watcher
    finally:
        await watcher.client.disconnect()


def entry(user_id: str, username: str, score: int) -> dict[str, object]:
    return {"userId": user_id, "username": username, "score": score}


def score_of(user_id: str, update: Update) -> int | None:
    """The user's score in the update's top10, None when they are not in it."""
    return next((row["score"] for row in update["top10"] if row["userId"] == user_id), None)


async def post_score(
    http: aiohttp.ClientSession, web: WebProcess, token: str, user_id: str, increment: int
) -> Update:
    """POST /api/score/update and return the 200 body."""
    async with http.post(
        f"{web.url}/api/score/update",
        json={"userId": user_id, "scoreIncrement": increment},
        headers=bearer(token),
    ) as response:
        assert response.status == 200, await response.text()
        body: Update = await response.json()
        return body


async def test_snapshot_on_connect_then_update_with_exact_score_and_username(
    web: WebProcess, http: aiohttp.ClientSession, make_token: TokenFactory
) -> None:
    async with watching(web.url, make_token("viewer")) as watcher:
        assert await watcher.next_update() == EMPTY_SNAPSHOT
        reply = await post_score(http, web, make_token("alice", "Alice"), "alice", 5)
        assert reply == {"status": "success", "message": "Score update queued", "newScore": 5}
        update = await watcher.next_update()
    assert update == {
        "event": "leaderboardUpdate",
        "version": 1,
        "top10": [entry("alice", "Alice", 5)],
    }


async def test_several_users_are_ranked_highest_first(
    web: WebProcess, http: aiohttp.ClientSession, make_token: TokenFactory
) -> None:
    posts = [
        ("alice", "Alice", 5),
        ("bob", "Bob", 12),
        ("carol", "Carol", 8),
        ("alice", "Alice", 10),
    ]
    async with watching(web.url, make_token("viewer")) as watcher:
        await watcher.next_update()
        for user, name, increment in posts:
            await post_score(http, web, make_token(user, name), user, increment)
        update = await watcher.update_where(lambda u: score_of("alice", u) == 15)
    assert update["top10"] == [
        entry("alice", "Alice", 15),
        entry("bob", "Bob", 12),
        entry("carol", "Carol", 8),
    ]
    assert watcher.versions == sorted(set(watcher.versions)), "versions must strictly increase"


async def test_two_web_nodes_deliver_the_same_update(
    processes: Processes, env: dict[str, str], http: aiohttp.ClientSession, make_token: TokenFactory
) -> None:
    node_a, node_b = processes.start_distributed(env, web_nodes=2)
    viewer = make_token("viewer")
    async with watching(node_a.url, viewer) as on_a, watching(node_b.url, viewer) as on_b:
        assert await on_a.next_update() == EMPTY_SNAPSHOT
        assert await on_b.next_update() == EMPTY_SNAPSHOT
        await post_score(http, node_b, make_token("dave", "Dave"), "dave", 7)
        update_a, update_b = await asyncio.gather(on_a.next_update(), on_b.next_update())
    expected = {"event": "leaderboardUpdate", "version": 1, "top10": [entry("dave", "Dave", 7)]}
    assert update_a == expected
    assert update_b == expected


REFUSED_CONNECTIONS: dict[str, dict[str, Any]] = {
    "no token": {},
    "garbage token": {"token": "not-a-jwt"},
    "wrong secret": {"token": issue_token("another-secret-" + "x" * 40, "alice")},
    "expired token": {"token": issue_token(JWT_SECRET, "alice", ttl_seconds=-60)},
    "garbage header": {"headers": {"Authorization": "Bearer not-a-jwt"}},
    "basic header": {"headers": {"Authorization": "Basic YWxpY2U6c2VjcmV0"}},
}


@pytest.mark.parametrize("credentials", REFUSED_CONNECTIONS.values(), ids=list(REFUSED_CONNECTIONS))
async def test_socket_without_a_valid_token_is_refused(
    web: WebProcess, credentials: dict[str, Any]
) -> None:
    watcher = BoardWatcher()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await watcher.connect(web.url, **credentials)
    assert not watcher.client.connected
    assert watcher.updates.empty()


@pytest.mark.parametrize("transports", [None, ["websocket"]], ids=["polling-upgrade", "websocket"])
async def test_authorization_header_instead_of_auth_is_accepted(
    web: WebProcess, make_token: TokenFactory, transports: list[str] | None
) -> None:
    headers = bearer(make_token("viewer"))
    async with watching(web.url, headers=headers, transports=transports) as watcher:
        assert await watcher.next_update() == EMPTY_SNAPSHOT


async def test_late_client_gets_the_current_top10_on_connect(
    web: WebProcess, http: aiohttp.ClientSession, make_token: TokenFactory
) -> None:
    players = [(f"player{n:02d}", f"Player {n}", n * 10) for n in range(1, 13)]
    async with watching(web.url, make_token("early")) as early:
        await early.next_update()
        for user, name, score in players:
            await post_score(http, web, make_token(user, name), user, score)
        latest = await early.update_where(lambda u: score_of("player12", u) == 120)
    async with watching(web.url, make_token("late")) as late:
        snapshot = await late.next_update()
    assert snapshot == latest
    assert snapshot["top10"] == [entry(*player) for player in reversed(players)][:10]


async def test_single_process_mode_end_to_end(
    processes: Processes, http: aiohttp.ClientSession
) -> None:
    web = processes.start_web({}, remove=BACKEND_VARIABLES)
    assert "single-process mode" in web.output.splitlines()[0]
    match = DEMO_TOKEN.search(web.output)
    assert match, web.output
    token = match.group(1)
    async with watching(web.url, token) as watcher:
        assert await watcher.next_update() == EMPTY_SNAPSHOT
        first = await post_score(http, web, token, "demo", 3)
        second = await post_score(http, web, token, "demo", 4)
        assert (first["newScore"], second["newScore"]) == (3, 7)
        update = await watcher.update_where(lambda u: score_of("demo", u) == 7)
    assert update["top10"] == [entry("demo", "Demo Player", 7)]


PROMPT_STOP_SECONDS = 20.0


async def test_sigterm_stops_a_web_node_with_a_connected_client_promptly(
    processes: Processes, env: dict[str, str], make_token: TokenFactory
) -> None:
    """A deploy's SIGTERM must not wait for connected clients (Heroku kills after 30 s)."""
    [web] = processes.start_distributed(env)
    async with watching(web.url, make_token("viewer")) as watcher:
        disconnected = asyncio.Event()
        watcher.client.on("disconnect", lambda *_: disconnected.set())
        await watcher.next_update()
        finished = await asyncio.to_thread(web.stop, PROMPT_STOP_SECONDS)
        assert finished.returncode == 0, f"not stopped within {PROMPT_STOP_SECONDS:.0f}s"
        async with asyncio.timeout(1):
            await disconnected.wait()


@pytest.mark.parametrize(
    ("present", "missing"), [("REDIS_URL", "RABBITMQ_URL"), ("RABBITMQ_URL", "REDIS_URL")]
)
def test_server_refuses_only_one_of_redis_and_rabbitmq(
    env: dict[str, str], present: str, missing: str
) -> None:
    config = {present: env[present], "JWT_SECRET": JWT_SECRET, "PORT": str(free_port())}
    finished = run_to_exit("server.py", config, remove=BACKEND_VARIABLES)
    assert finished.returncode != 0
    assert f"{missing} is not" in finished.output, finished.output


@pytest.mark.parametrize("script", ["server.py", "worker.py"])
def test_distributed_mode_requires_jwt_secret(env: dict[str, str], script: str) -> None:
    config = {name: value for name, value in env.items() if name != "JWT_SECRET"}
    finished = run_to_exit(script, {**config, "PORT": str(free_port())}, remove=BACKEND_VARIABLES)
    assert finished.returncode != 0
    assert "JWT_SECRET" in finished.output, finished.output
