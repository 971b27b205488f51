"""SIGTERM, as a platform sends it on deploys: the worker drains, summarises and exits in time."""

from __future__ import annotations

import asyncio
import re
import sys
import time
from pathlib import Path

from scoreboard.intake.auth import issue_token
from tests.conftest import JWT_SECRET
from tests.processes import Processes, ServiceProcess, free_port, process_env
from tests.score_stream import stream_updates, wait_for_totals

SHUTDOWN_BUDGET_SECONDS = 25  # Heroku kills 30 s after SIGTERM


async def test_worker_stops_mid_stream_with_a_summary_and_loses_nothing(env, tmp_path: Path):
    env = {**env, "RATE_LIMIT": "1000000/minute"}
    tokens = {u: issue_token(JWT_SECRET, u) for u in ("ann", "ben", "cat")}
    with Processes(tmp_path) as processes:
        web = processes.start_web(env)
        worker = processes.start_worker(env)
        stream = asyncio.create_task(stream_updates(web.url, tokens, duration=3.0))
        await asyncio.sleep(1.5)
        began = time.monotonic()
        finished = await asyncio.to_thread(worker.stop, SHUTDOWN_BUDGET_SECONDS)
        took = time.monotonic() - began
        result = await stream
        processes.start_worker(env)  # a successor takes what was left in the queue
        totals = await wait_for_totals(env["REDIS_URL"], env["REDIS_KEY_PREFIX"], result.accepted)

    assert finished.returncode == 0, finished.output
    assert took < SHUTDOWN_BUDGET_SECONDS
    summary = re.search(r"worker stopped: (\d+) updates in \d+ batches", finished.output)
    assert summary is not None, finished.output
    assert int(summary.group(1)) > 0
    assert "Traceback" not in finished.output
    assert totals == dict(result.accepted)


async def test_worker_waiting_for_an_absent_broker_stops_at_once(env, tmp_path: Path):
    env = {**env, "RABBITMQ_URL": f"amqp://guest:guest@127.0.0.1:{free_port()}/"}
    argv = [sys.executable, "worker.py"]
    worker = ServiceProcess("worker", argv, process_env(env), tmp_path / "worker.log")
    try:
        worker.wait_for_output("broker unreachable")
        began = time.monotonic()
        finished = worker.stop(SHUTDOWN_BUDGET_SECONDS)
        took = time.monotonic() - began
    finally:
        worker.stop()
    assert finished.returncode == 0, finished.output
    assert took < 5
    assert "worker stopped: 0 updates" in finished.output
