"""Prometheus metrics: they move as a user of the service would notice, on web and worker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import pytest
import socketio
from aiohttp.test_utils import TestClient

from scoreboard.config import Settings
from scoreboard.ops.metrics import CONTENT_TYPE, Metrics
from scoreboard.ops.readiness import ReadinessProbe
from scoreboard.ops.worker_port import WorkerPort
from scoreboard.ops.worker_readiness import WorkerReadinessProbe
from scoreboard.web.app import SOCKETIO_PATH, create_app
from tests.conftest import RABBITMQ_URL, TokenFactory, bearer
from tests.processes import Processes, WebProcess, free_port, service_processes
from tests.scrape import Scrape, eventually

URL = "/api/score/update"
POSTS = ("scoreboard_http_requests_total", {"route": URL, "status": "200"})


async def scrape(api: TestClient, headers: dict[str, str] | None = None) -> Scrape:
    response = await api.get("/metrics", headers=headers)
    assert response.status == 200, await response.text()
    return Scrape.parse(await response.text())


async def post(api: TestClient, token: str, user: str, increment: int = 1) -> Any:
    return await api.post(
        URL, json={"userId": user, "scoreIncrement": increment}, headers=bearer(token)
    )


async def test_an_accepted_post_counts_once_as_accepted_and_as_a_200(api, make_token: TokenFactory):
    before = await scrape(api)
    response = await post(api, make_token("alice"), "alice")
    assert response.status == 200
    after = await scrape(api)
    accepted = "scoreboard_updates_accepted_total"
    assert after.value(accepted, board="global") == before.value(accepted, board="global") + 1
    assert after.value(POSTS[0], **POSTS[1]) == before.value(POSTS[0], **POSTS[1]) + 1
    duration = "scoreboard_http_request_duration_seconds_count"
    assert after.value(duration, route=URL) == before.value(duration, route=URL) + 1


async def test_an_idempotent_replay_is_not_accepted_twice(api, make_token: TokenFactory):
    headers = {**bearer(make_token("alice")), "Idempotency-Key": "round-1"}
    body = {"userId": "alice", "scoreIncrement": 2}
    for _ in range(2):
        assert (await api.post(URL, json=body, headers=headers)).status == 200
    after = await scrape(api)
    assert after.value("scoreboard_updates_accepted_total", board="global") == 1
    assert after.value(POSTS[0], **POSTS[1]) == 2


async def test_a_429_counts_as_rate_limited_on_its_route(aiohttp_client, env, make_token):
    api = await aiohttp_client(create_app(Settings.from_env({**env, "RATE_LIMIT": "1/minute"})))
    token = make_token("alice")
    assert (await post(api, token, "alice")).status == 200
    assert (await post(api, token, "alice")).status == 429
    after = await scrape(api)
    assert after.value("scoreboard_rate_limited_total", route=URL) == 1
    assert after.value("scoreboard_http_requests_total", route=URL, status="429") == 1
    assert after.value("scoreboard_updates_accepted_total", board="global") == 1


async def test_routes_are_labelled_by_template_and_unknown_paths_share_one_label(
    api, make_token: TokenFactory
):
    token = make_token("reader")
    for user in ("bob", "carol", "dave"):
        await api.get(f"/api/users/{user}/rank", headers=bearer(token))
    for path in ("/nothing/here", "/wp-login.php", "/api/users"):
        assert (await api.get(path)).status in {404, 405}
    after = await scrape(api)
    routes = after.label_values("scoreboard_http_requests_total", "route")
    assert "/api/users/{userId}/rank" in routes
    assert not any(user in route for route in routes for user in ("bob", "carol", "dave"))
    assert after.value("scoreboard_http_requests_total", route="unmatched", status="404") == 3
    assert not {"/nothing/here", "/wp-login.php"} & routes


async def test_queue_depth_shows_updates_waiting_while_no_worker_runs(api, make_token):
    token = make_token("alice")
    for _ in range(3):
        assert (await post(api, token, "alice")).status == 200

    async def three_waiting() -> bool:
        return (await scrape(api)).value("scoreboard_queue_depth", queue="main") == 3

    await eventually(three_waiting, "3 messages in the main queue")
    after = await scrape(api)
    assert after.value("scoreboard_queue_depth", queue="dead_letter") == 0
    assert after.value("scoreboard_dependency_up", dependency="rabbitmq") == 1
    assert after.value("scoreboard_dependency_up", dependency="redis") == 1
    assert after.value("scoreboard_workers_alive") == 0


async def test_socketio_clients_counts_a_real_client_in_and_out(api, make_token: TokenFactory):
    assert (await scrape(api)).value("scoreboard_socketio_clients") == 0
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(
        str(api.make_url("/")),
        auth={"token": make_token("viewer")},
        socketio_path=f"/{SOCKETIO_PATH}",
        transports=["websocket"],
        wait_timeout=5,
    )
    try:
        assert (await scrape(api)).value("scoreboard_socketio_clients") == 1
    finally:
        await client.disconnect()

    async def none_connected() -> bool:
        return (await scrape(api)).value("scoreboard_socketio_clients") == 0

    await eventually(none_connected, "back to 0 Socket.IO clients")


async def test_a_refused_socketio_client_is_not_counted(api):
    client = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(
            str(api.make_url("/")),
            auth={"token": "not-a-token"},
            socketio_path=f"/{SOCKETIO_PATH}",
            transports=["websocket"],
            wait_timeout=5,
        )
    assert (await scrape(api)).value("scoreboard_socketio_clients") == 0


async def test_metrics_are_prometheus_text_and_include_process_metrics(api):
    response = await api.get("/metrics")
    assert response.headers["Content-Type"] == CONTENT_TYPE
    page = Scrape.parse(await response.text())
    assert "process_resident_memory_bytes" in page.names()
    # Each app has a registry of its own: no *_created series, nothing from other test apps.
    assert not any(name.endswith("_created") for name in page.names() if name.startswith("scoreb"))


async def test_metrics_token_guards_metrics_when_set(aiohttp_client, env):
    token = "m" * 32
    api = await aiohttp_client(create_app(Settings.from_env({**env, "METRICS_TOKEN": token})))
    refused = await api.get("/metrics")
    assert refused.status == 401
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    assert (await api.get("/metrics", headers=bearer("m" * 31 + "x"))).status == 401
    assert (await scrape(api, bearer(token))).value(
        "scoreboard_updates_accepted_total", board="global"
    ) == 0


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    with service_processes(tmp_path) as running:
        yield running


async def scrape_http(session: aiohttp.ClientSession, url: str) -> Scrape:
    async with session.get(url) as response:
        assert response.status == 200
        return Scrape.parse(await response.text())


async def test_the_worker_serves_applied_updates_and_their_lag_on_metrics_port(
    processes: Processes, env: dict[str, str], make_token: TokenFactory
):
    port = free_port()
    [web] = processes.start_distributed({**env, "METRICS_PORT": str(port)})
    worker_metrics = f"http://127.0.0.1:{port}/metrics"
    async with aiohttp.ClientSession() as session:
        for user in ("alice", "bob"):
            await _post_to(session, web, make_token(user), user)

        async def both_applied() -> bool:
            page = await scrape_http(session, worker_metrics)
            return page.value("scoreboard_updates_applied_total", board="global") == 2

        await eventually(both_applied, "2 updates applied per the worker's metrics")
        page = await scrape_http(session, worker_metrics)
        assert page.value("scoreboard_update_apply_lag_seconds_count") == 2
        assert page.value("scoreboard_update_apply_lag_seconds_sum") < 10
        assert page.value("scoreboard_updates_dead_lettered_total") == 0

        async def broadcast() -> bool:
            page = await scrape_http(session, worker_metrics)
            return page.value("scoreboard_broadcast_lag_seconds_count") >= 1

        await eventually(broadcast, "a broadcast measured")
        assert (await scrape_http(session, worker_metrics)).value(
            "scoreboard_broadcasts_total"
        ) >= 1
        web_page = await scrape_http(session, f"{web.url}/metrics")
        assert web_page.value("scoreboard_updates_accepted_total", board="global") == 2
        assert web_page.value("scoreboard_workers_alive") == 1


async def test_a_poison_message_counts_as_dead_lettered_and_fills_the_dead_letter_queue(
    processes: Processes, env: dict[str, str], namespace: str
):
    port = free_port()
    [web] = processes.start_distributed({**env, "METRICS_PORT": str(port)})
    connection = await aio_pika.connect(RABBITMQ_URL)
    async with connection:
        channel = await connection.channel()
        await channel.default_exchange.publish(aio_pika.Message(b"not json"), routing_key=namespace)
    async with aiohttp.ClientSession() as session:

        async def dead_lettered() -> bool:
            page = await scrape_http(session, f"http://127.0.0.1:{port}/metrics")
            return page.value("scoreboard_updates_dead_lettered_total") == 1

        await eventually(dead_lettered, "the poison message counted by the worker")

        async def in_dead_letter_queue() -> bool:
            page = await scrape_http(session, f"{web.url}/metrics")
            return page.value("scoreboard_queue_depth", queue="dead_letter") == 1

        await eventually(in_dead_letter_queue, "1 message in the dead-letter queue")


async def test_the_worker_metrics_port_names_no_server_software(http: aiohttp.ClientSession):
    port = free_port()
    readiness = WorkerReadinessProbe(
        ReadinessProbe(None, None, lambda: None, None), lambda: True, lambda: "consuming"
    )
    server = WorkerPort(Metrics(), readiness, port, None)
    await server.start()
    try:
        async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
            assert response.status == 200
            assert "Server" not in response.headers
    finally:
        await server.stop()


async def test_metrics_port_0_serves_no_worker_metrics(processes: Processes, env: dict[str, str]):
    processes.start_worker({**env, "METRICS_PORT": "0"})
    finished = processes.stop_all()
    assert "worker metrics on port" not in finished[0].output


async def _post_to(session: aiohttp.ClientSession, web: WebProcess, token: str, user: str) -> None:
    async with session.post(
        f"{web.url}{URL}", json={"userId": user, "scoreIncrement": 1}, headers=bearer(token)
    ) as response:
        assert response.status == 200, await response.text()


def test_boards_are_labelled_by_id_up_to_a_bound_and_the_rest_as_other():
    from scoreboard.models import ScoreUpdate
    from scoreboard.ops.metrics import BOARD_LABELS_KEPT, OTHER_BOARDS, Metrics

    metrics = Metrics()
    boards = [f"b{n}" for n in range(BOARD_LABELS_KEPT + 5)]
    for board in boards:
        metrics.count_accepted(board)
    metrics.observe_applied(
        [ScoreUpdate("m1", "u", "U", 1, 0.0, board_id="b0"), ScoreUpdate("m2", "u", "U", 1, 0.0)]
    )
    page = metrics.exposition().decode()
    labelled = {
        line.split('board="')[1].split('"')[0]
        for line in page.splitlines()
        if line.startswith("scoreboard_updates_accepted_total{")
    }
    assert len(labelled) == BOARD_LABELS_KEPT and OTHER_BOARDS in labelled, labelled
    assert 'scoreboard_updates_accepted_total{board="other"} 6.0' in page
    assert 'scoreboard_updates_applied_total{board="b0"} 1.0' in page
    assert 'scoreboard_updates_applied_total{board="global"} 1.0' in page
