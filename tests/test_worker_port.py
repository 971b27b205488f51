"""The worker's METRICS_PORT: /healthz while its loop runs, /readyz while it consumes and its
services answer, against real worker processes."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.private_services import PrivateRabbitMQ
from tests.processes import Processes, ServiceProcess, free_port, process_env
from tests.scrape import eventually

METRICS_TOKEN = "worker-probe-token-0123456789"


async def get(session: aiohttp.ClientSession, url: str, **headers: str) -> tuple[int, Any]:
    async with session.get(url, headers=headers) as response:
        return response.status, await response.json()


@pytest.fixture
async def session():
    async with aiohttp.ClientSession(trust_env=False) as client:
        yield client


async def test_a_consuming_worker_is_alive_and_ready(
    processes: Processes, env: dict[str, str], session: aiohttp.ClientSession
):
    port = free_port()
    processes.start_worker({**env, "METRICS_PORT": str(port)})
    assert await get(session, f"http://127.0.0.1:{port}/healthz") == (
        200,
        {"status": "success", "message": "ok"},
    )
    assert await get(session, f"http://127.0.0.1:{port}/readyz") == (
        200,
        {
            "status": "success",
            "message": "Ready",
            "state": "consuming",
            "services": {"redis": "up", "rabbitmq": "up"},
        },
    )


async def test_readyz_answers_503_while_the_broker_is_down_and_200_once_it_is_back(
    private_rabbitmq: PrivateRabbitMQ,
    env: dict[str, str],
    tmp_path: Path,
    session: aiohttp.ClientSession,
):
    port = free_port()
    readyz = f"http://127.0.0.1:{port}/readyz"
    # Not the `processes` fixture: aio-pika logs the outage with a traceback, which it refuses.
    with Processes(tmp_path) as processes:
        processes.start_worker(
            {**env, "RABBITMQ_URL": private_rabbitmq.url, "METRICS_PORT": str(port)}
        )
        assert (await get(session, readyz))[0] == 200

        private_rabbitmq.stop_app()
        answers: list[tuple[int, Any]] = []

        async def refused() -> bool:
            answers.append(await get(session, readyz))
            return answers[-1][0] == 503

        await eventually(refused, "/readyz answering 503 with the broker down")
        assert answers[-1][1] == {
            "status": "error",
            "message": "Not ready: rabbitmq unreachable",
            "state": "consuming",
            "services": {"redis": "up", "rabbitmq": "down"},
        }
        assert (await get(session, f"http://127.0.0.1:{port}/healthz"))[0] == 200  # alive

        private_rabbitmq.start_app()

        async def ready() -> bool:
            return (await get(session, readyz))[0] == 200

        await eventually(ready, "/readyz answering 200 with the broker back", timeout=30)
        [finished] = processes.stop_all()
    assert finished.returncode == 0, finished.output


@contextmanager
def worker_without_broker(env: dict[str, str], log_dir: Path, **extra: str) -> Iterator[str]:
    """A worker whose broker does not answer: it waits at start-up. Yields its port's URL."""
    port = free_port()
    nothing_there = f"amqp://guest:guest@127.0.0.1:{free_port()}/"
    worker = ServiceProcess(
        "worker",
        [sys.executable, "worker.py"],
        process_env({**env, "RABBITMQ_URL": nothing_there, "METRICS_PORT": str(port), **extra}),
        log_dir / "worker.log",
    )
    try:
        worker.wait_for_output(f"worker metrics on port {port}")
        yield f"http://127.0.0.1:{port}"
    finally:
        finished = worker.stop()
    assert finished.returncode == 0, finished.output


async def test_a_worker_waiting_for_its_broker_is_alive_but_not_ready(
    env: dict[str, str], tmp_path: Path, session: aiohttp.ClientSession
):
    with worker_without_broker(env, tmp_path) as url:
        assert (await get(session, f"{url}/healthz"))[0] == 200
        assert await get(session, f"{url}/readyz") == (
            503,
            {
                "status": "error",
                "message": "Not ready: starting, rabbitmq unreachable",
                "state": "starting",
                "services": {"redis": "up", "rabbitmq": "down"},
            },
        )


async def test_with_metrics_token_only_its_holder_learns_why_a_worker_is_not_ready(
    env: dict[str, str], tmp_path: Path, session: aiohttp.ClientSession
):
    with worker_without_broker(env, tmp_path, METRICS_TOKEN=METRICS_TOKEN) as url:
        assert await get(session, f"{url}/readyz") == (
            503,
            {"status": "error", "message": "Not ready"},
        )
        status, body = await get(session, f"{url}/readyz", Authorization=f"Bearer {METRICS_TOKEN}")
        assert (status, body["message"]) == (503, "Not ready: starting, rabbitmq unreachable")
        assert (await get(session, f"{url}/healthz"))[0] == 200
