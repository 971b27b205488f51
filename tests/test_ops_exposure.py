"""What the web node exposes where: HOST, OPS_PORT, and /readyz details behind the token."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from scoreboard.config import Settings
from scoreboard.errors import ConfigError
from scoreboard.web.app import create_app
from tests.conftest import bearer
from tests.processes import Processes, free_port
from tests.raw_http import exchange, get
from tests.scrape import Scrape

TOKEN = "ops-token-" + "o" * 22
NOT_FOUND = {"status": "error", "message": "Not found"}
DETAILS = {"mode", "services", "queues", "workers"}


async def fetch(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """Status and body: JSON when the answer is JSON, else text."""
    async with session.get(url, headers=headers, allow_redirects=False) as response:
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, await response.text()


def test_host_and_ops_port_are_unset_by_default_and_read_when_set():
    default = Settings.from_env({})
    assert (default.host, default.ops_port) == (None, None)
    for host in ("127.0.0.1", "0.0.0.0", "::", "::1", "localhost", "web-1.internal"):
        assert Settings.from_env({"HOST": host}).host == host
    assert Settings.from_env({"OPS_PORT": "9090"}).ops_port == 9090


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"HOST": "two words"}, "HOST"),
        ({"HOST": "[::1]"}, "HOST"),
        ({"HOST": "http://example.com"}, "HOST"),
        ({"OPS_PORT": "ops"}, "OPS_PORT"),
        ({"OPS_PORT": "0"}, "OPS_PORT"),
        ({"OPS_PORT": "70000"}, "OPS_PORT"),
        ({"OPS_PORT": "3000"}, "OPS_PORT"),
        ({"PORT": "8080", "OPS_PORT": "8080"}, "OPS_PORT"),
    ],
)
def test_bad_host_and_ops_port_stop_start_up_naming_the_variable(env: dict[str, str], named: str):
    with pytest.raises(ConfigError, match=named):
        Settings.from_env(env)


async def test_the_web_node_listens_on_every_interface_by_default(
    processes: Processes, env: dict[str, str]
):
    node = processes.start_web(env)
    # 127.0.0.2 is loopback too on Linux, but only a socket bound to every interface takes it.
    answer = await exchange(node.port, get("/healthz"), host="127.0.0.2")
    assert answer.status == 200


async def test_host_is_the_one_address_the_web_node_listens_on(
    processes: Processes, env: dict[str, str]
):
    node = processes.start_web({**env, "HOST": "127.0.0.2"})
    answer = await exchange(node.port, get("/healthz"), host="127.0.0.2")
    assert answer.status == 200
    with pytest.raises(ConnectionRefusedError):
        await exchange(node.port, get("/healthz"), host="127.0.0.1")
    assert f"listening on http://127.0.0.2:{node.port}" in node.output


async def test_with_ops_port_the_ops_routes_live_there_alone(
    processes: Processes, env: dict[str, str], http: aiohttp.ClientSession
):
    ops_port = free_port()
    node = processes.start_web({**env, "OPS_PORT": str(ops_port)})
    public, ops = node.url, node.url_at(ops_port)
    assert await fetch(http, f"{public}/metrics") == (404, NOT_FOUND)
    assert await fetch(http, f"{public}/readyz") == (404, NOT_FOUND)
    assert (await fetch(http, f"{public}/healthz"))[0] == 200
    assert (await fetch(http, f"{public}/api/leaderboard"))[0] == 401  # served, wants a token
    status, page = await fetch(http, f"{ops}/metrics")
    assert status == 200
    # The public port's 404s were counted like any other request.
    assert (
        Scrape.parse(page).value("scoreboard_http_requests_total", route="/metrics", status="404")
        == 1
    )
    status, ready = await fetch(http, f"{ops}/readyz")
    assert status == 200 and DETAILS <= ready.keys()
    assert (await fetch(http, f"{ops}/healthz"))[0] == 200
    for path in ("/api/leaderboard", "/", "/static/page.js", "/ws/scoreboard/?EIO=4"):
        assert await fetch(http, f"{ops}{path}") == (404, NOT_FOUND), path


async def test_with_metrics_token_readyz_details_need_the_token(
    processes: Processes, env: dict[str, str], http: aiohttp.ClientSession
):
    node = processes.start_web({**env, "METRICS_TOKEN": TOKEN})
    readyz = f"{node.url}/readyz"
    assert await fetch(http, readyz) == (200, {"status": "success", "message": "Ready"})
    wrong = bearer("x" * len(TOKEN))
    assert await fetch(http, readyz, wrong) == (200, {"status": "success", "message": "Ready"})
    status, body = await fetch(http, readyz, bearer(TOKEN))
    assert status == 200
    assert body["message"] == "Ready" and DETAILS <= body.keys()
    assert body["services"] == {"redis": "up", "rabbitmq": "up"}


async def test_an_unready_node_says_only_not_ready_without_the_token(aiohttp_client, env):
    down = {**env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "METRICS_TOKEN": TOKEN}
    api = await aiohttp_client(create_app(Settings.from_env(down)))
    response = await api.get("/readyz")
    assert response.status == 503
    assert await response.json() == {"status": "error", "message": "Not ready"}
    response = await api.get("/readyz", headers=bearer(TOKEN))
    assert response.status == 503
    body = await response.json()
    assert body["message"] == "Not ready: redis unreachable"
    assert body["services"]["redis"] == "down"
