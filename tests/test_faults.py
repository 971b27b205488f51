"""Faults during a stream of updates: every 200 is applied exactly once, whatever breaks."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scoreboard.intake.auth import issue_token
from tests.conftest import JWT_SECRET
from tests.private_services import PrivateRabbitMQ, PrivateRedis
from tests.processes import Processes
from tests.score_stream import exactness, record_figures, stream_updates, wait_for_totals

USERS = [f"player{i:02}" for i in range(12)]
UNLIMITED = "1000000/minute"


def tokens() -> dict[str, str]:
    return {user: issue_token(JWT_SECRET, user, user.title()) for user in USERS}


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    with Processes(tmp_path) as running:
        yield running


async def later(delay: float, action) -> None:
    await asyncio.sleep(delay)
    await asyncio.to_thread(action)


def assert_exact(figures: dict[str, float]) -> None:
    assert figures["lost"] == 0, figures
    assert figures["double_counted"] == 0, figures
    assert figures["applied"] == figures["accepted"], figures


async def test_kill_9_of_the_worker_mid_stream_loses_and_repeats_nothing(env, processes):
    env = {**env, "RATE_LIMIT": UNLIMITED, "WORKER_PREFETCH": "50"}
    web = processes.start_web(env)
    worker = processes.start_worker(env)

    def kill_worker() -> None:
        os.kill(worker.pid, signal.SIGKILL)

    def start_successor() -> None:
        processes.start_worker(env)

    stream = asyncio.create_task(stream_updates(web.url, tokens(), duration=5.0))
    await later(1.5, kill_worker)
    await later(1.0, start_successor)
    result = await stream
    totals = await wait_for_totals(env["REDIS_URL"], env["REDIS_KEY_PREFIX"], result.accepted)
    figures = exactness(result, totals)
    record_figures("fault_worker_kill9", figures)
    assert figures["accepted"] == figures["sent"], figures  # the web side never noticed
    assert_exact(figures)


async def test_rabbitmq_restart_mid_stream(env, processes, private_rabbitmq: PrivateRabbitMQ):
    env = {**env, "RABBITMQ_URL": private_rabbitmq.url, "RATE_LIMIT": UNLIMITED}
    [web] = processes.start_distributed(env)
    began = time.monotonic()
    stream = asyncio.create_task(stream_updates(web.url, tokens(), duration=15.0))
    await later(2.0, private_rabbitmq.stop_app)
    broker_down = time.monotonic() - began
    await later(2.0, private_rabbitmq.start_app)
    broker_back = time.monotonic() - began  # rabbitmqctl takes seconds on a busy machine
    result = await stream
    totals = await wait_for_totals(env["REDIS_URL"], env["REDIS_KEY_PREFIX"], result.accepted)
    figures = exactness(result, totals)
    record_figures("fault_rabbitmq_restart", figures)
    assert figures["refused_503"] > 0, figures  # the outage was seen and answered truthfully
    assert figures["slowest_503_seconds"] < 5, figures  # refused promptly, never a hang
    assert figures["no_answer"] == 0 and figures["other_status"] == 0, figures
    during = result.statuses_between(broker_down + 0.2, broker_down + 2.0)
    assert set(during) == {503}, during
    assert result.statuses_between(broker_back, 15.0)[200] > 0  # recovered without a restart
    assert_exact(figures)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    directory = tmp_path / "redis"
    directory.mkdir()
    server = PrivateRedis(directory)
    server.start()
    yield server
    server.stop()


async def test_redis_restart_mid_stream(env, processes, private_redis: PrivateRedis):
    env = {**env, "REDIS_URL": private_redis.url, "RATE_LIMIT": UNLIMITED}
    [web] = processes.start_distributed(env)
    stream = asyncio.create_task(stream_updates(web.url, tokens(), duration=10.0))
    await later(2.0, private_redis.stop)
    await later(2.0, private_redis.start)
    result = await stream
    totals = await wait_for_totals(private_redis.url, env["REDIS_KEY_PREFIX"], result.accepted)
    figures = exactness(result, totals)
    record_figures("fault_redis_restart", figures)
    assert figures["refused_503"] > 0, figures
    assert figures["slowest_503_seconds"] < 5, figures
    assert figures["no_answer"] == 0 and figures["other_status"] == 0, figures
    assert result.statuses_between(8.0, 10.0)[200] > 0
    assert_exact(figures)
