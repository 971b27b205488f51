"""No 503 from a local limit: a small Redis pool is waited on; only a node over
MAX_UPDATES_IN_FLIGHT answers 503 at once, saying it is busy; every 503 is logged with its cause."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from scoreboard.config import Settings
from scoreboard.web.app import create_app
from scoreboard.web.keys import IN_FLIGHT, METRICS
from tests.conftest import bearer
from tests.processes import free_port
from tests.raw_http import read_answer

USERS = [f"u{i}" for i in range(40)]


async def _post_all(client, make_token, users):
    async def post(user: str):
        response = await client.post(
            "/api/score/update",
            json={"userId": user, "scoreIncrement": 1},
            headers=bearer(make_token(user)),
        )
        return response.status, await response.json(), response.headers.get("Retry-After")

    return await asyncio.gather(*(post(user) for user in users))


async def test_more_requests_than_redis_connections_wait_for_one_instead_of_503(
    aiohttp_client, env, make_token
):
    settings = Settings.from_env({**env, "REDIS_MAX_CONNECTIONS": "2"})
    client = await aiohttp_client(create_app(settings))
    answers = await _post_all(client, make_token, USERS)
    assert [status for status, _, _ in answers] == [200] * len(USERS)


async def test_a_node_past_its_limit_sheds_at_once_with_a_busy_503(
    aiohttp_client, env, make_token, caplog
):
    settings = Settings.from_env({**env, "MAX_UPDATES_IN_FLIGHT": "3"})
    app = create_app(settings)
    client = await aiohttp_client(app)
    with caplog.at_level(logging.WARNING, logger="scoreboard.web.middlewares"):
        answers = await _post_all(client, make_token, USERS)
    statuses = [status for status, _, _ in answers]
    shed = [(body, retry) for status, body, retry in answers if status == 503]
    assert set(statuses) == {200, 503} and shed, statuses
    assert all(body["message"] == "Server busy, try again" and retry == "1" for body, retry in shed)
    exposition = app[METRICS].exposition().decode()
    assert f"scoreboard_updates_shed_total {float(len(shed))}" in exposition
    busy_lines = [r for r in caplog.records if "503 Overloaded" in r.getMessage()]
    assert len(busy_lines) == 1, "one line per interval, however many were shed"
    # The accepted ones are exact: each user posted once.
    assert all(body["newScore"] == 1 for status, body, _ in answers if status == 200)


async def test_a_503_from_an_unreachable_redis_is_logged_with_its_cause(
    aiohttp_client, env, make_token, caplog
):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    settings = Settings.from_env({**env, "REDIS_URL": dead, "REDIS_POOL_TIMEOUT_SECONDS": "0.5"})
    client = await aiohttp_client(create_app(settings))
    with caplog.at_level(logging.WARNING, logger="scoreboard.web.middlewares"):
        answers = await _post_all(client, make_token, USERS[:3])
    assert [status for status, _, _ in answers] == [503, 503, 503]
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("503 ")]
    assert "StoreUnavailable on POST /api/score/update: ConnectionError" in line, line


async def test_a_refused_connection_is_not_read_again_until_its_retry_after(
    aiohttp_client, env, make_token
):
    app = create_app(Settings.from_env({**env, "MAX_UPDATES_IN_FLIGHT": "1"}))
    client = await aiohttp_client(app)
    body = json.dumps({"userId": "alice", "scoreIncrement": 1}).encode()
    request = (
        "POST /api/score/update HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {make_token('alice')}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    loop = asyncio.get_running_loop()
    try:
        app[IN_FLIGHT].in_flight = 1  # the node is working on all it takes
        writer.write(request)
        refused = await read_answer(reader)
        assert (refused.status, refused.headers["Retry-After"]) == (503, "1")
        app[IN_FLIGHT].in_flight = 0  # room again at once, but this client was told to wait
        sent_at = loop.time()
        writer.write(request)
        # Meanwhile another connection is served at once.
        other = await client.post(
            "/api/score/update",
            json={"userId": "bob", "scoreIncrement": 1},
            headers=bearer(make_token("bob")),
        )
        assert other.status == 200 and loop.time() - sent_at < 0.5
        retried = await read_answer(reader)
        assert retried.status == 200 and retried.json()["newScore"] == 1
        assert loop.time() - sent_at >= 0.9, "read again only after its Retry-After"
    finally:
        writer.close()
        await writer.wait_closed()


@pytest.mark.parametrize("value", ["0", "-1", "²", "1e3"])
def test_the_in_flight_limit_is_a_positive_integer(env, value):
    from scoreboard.errors import ConfigError

    with pytest.raises(ConfigError, match="MAX_UPDATES_IN_FLIGHT"):
        Settings.from_env({**env, "MAX_UPDATES_IN_FLIGHT": value})
