"""A three-node RabbitMQ cluster, quorum queues, and the node leading them killed mid-stream."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scoreboard.intake.auth import issue_token
from tests.conftest import JWT_SECRET
from tests.private_services import PrivateRabbitCluster, PrivateRabbitMQ
from tests.processes import Processes
from tests.score_stream import (
    StreamResult,
    exactness,
    record_figures,
    stream_updates,
    wait_for_totals,
)

USERS = [f"player{i:02}" for i in range(12)]
PREMIUM = set(USERS[::2])  # half the users go through the queue of priority level 5
STREAM_SECONDS = 20.0
KILL_AFTER_SECONDS = 4.0
RESUMED_WITHIN_SECONDS = 10.0  # from the kill: election, reconnection, first confirmed publish


def tokens() -> dict[str, str]:
    claims = {user: {"tier": "premium"} if user in PREMIUM else {} for user in USERS}
    return {user: issue_token(JWT_SECRET, user, user, extra_claims=claims[user]) for user in USERS}


@pytest.fixture
def rabbit_cluster() -> Iterator[PrivateRabbitCluster]:
    # Not under tmp_path: the rabbitmq user cannot enter pytest's private temporary folder.
    directory = Path(tempfile.mkdtemp(prefix="sbtest-cluster-"))
    cluster = PrivateRabbitCluster(directory, size=3)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.shutdown()  # kill -9 whatever does not stop
        shutil.rmtree(directory, ignore_errors=True)


def duplicated_or_missing_scores(result: StreamResult) -> int:
    """200s whose newScore repeats another's, or leaves a gap: each +1 must count exactly once."""
    wrong = 0
    for user, scores in result.new_scores.items():
        wrong += len(set(range(1, result.accepted[user] + 1)) ^ set(scores))
        wrong += len(scores) - len(set(scores))
    return wrong


async def test_killing_the_node_that_leads_the_quorum_queue_loses_and_repeats_nothing(
    rabbit_cluster: PrivateRabbitCluster, env: dict[str, str], processes: Processes
):
    env = {
        **env,
        "RABBITMQ_URL": ",".join(rabbit_cluster.urls),
        "QUEUE_TYPE": "quorum",
        "TIER_PRIORITIES": "premium=5",
        "RATE_LIMIT": "1000000/minute",
        "METRICS_PORT": "0",
    }
    [web] = processes.start_distributed(env)
    queue = env["QUEUE_NAME"]
    leader = rabbit_cluster.leader_of(queue)
    premium_leader = rabbit_cluster.leader_of(f"{queue}.p5")
    print(f"queue {queue!r} led by {leader.node}, {queue}.p5 by {premium_leader.node}")

    began = time.monotonic()
    stream = asyncio.create_task(stream_updates(web.url, tokens(), duration=STREAM_SECONDS))
    await asyncio.sleep(KILL_AFTER_SECONDS)
    killed_at = time.monotonic() - began
    await asyncio.to_thread(leader.kill)
    result = await stream

    survivor = rabbit_cluster.leader_of(queue)
    assert survivor is not leader and isinstance(survivor, PrivateRabbitMQ)
    totals = await wait_for_totals(
        env["REDIS_URL"], env["REDIS_KEY_PREFIX"], result.accepted, timeout=90
    )
    figures = exactness(result, totals)
    figures["wrong_new_scores"] = duplicated_or_missing_scores(result)
    figures["killed_at_seconds"] = round(killed_at, 1)
    after_kill = result.statuses_between(killed_at, STREAM_SECONDS)
    first_200_after = min(
        (at for at, status in result.timeline if at > killed_at and status == 200), default=None
    )
    figures["first_200_after_kill_seconds"] = (
        None if first_200_after is None else round(first_200_after - killed_at, 2)
    )
    record_figures("fault_quorum_leader_kill9", figures)
    print(f"new leader {survivor.node}; statuses after the kill: {dict(after_kill)}")

    # Refused meanwhile means 503: never a 500, never a dropped connection.
    assert figures["other_status"] == 0 and figures["no_answer"] == 0, figures
    # Every 200 applied exactly once: nothing lost, nothing counted twice, no newScore repeated.
    assert figures["lost"] == 0 and figures["double_counted"] == 0, figures
    assert figures["applied"] == figures["accepted"], figures
    assert figures["wrong_new_scores"] == 0, figures
    # Publishing resumed on the same web process, no restart.
    assert first_200_after is not None, figures
    assert first_200_after - killed_at < RESUMED_WITHIN_SECONDS, figures
    assert result.statuses_between(STREAM_SECONDS - 3, STREAM_SECONDS)[200] > 0, figures
