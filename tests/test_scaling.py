"""Two web nodes and two workers: every client, on either node, ends on the true top 10."""

from __future__ import annotations

from pathlib import Path

from scoreboard.config import Settings
from scoreboard.intake.auth import issue_token
from tests.conftest import JWT_SECRET
from tests.processes import Processes, wait_for_broadcast_listeners
from tests.score_stream import stream_updates, wait_for_totals
from tests.test_end_to_end import BoardWatcher, watching

USERS = [f"s{i}" for i in range(8)]


async def settle_on(watcher: BoardWatcher, expected: dict[str, int]) -> dict[str, int]:
    """Read updates until the watcher's board shows `expected`; return the last board seen."""
    seen: dict[str, int] = {}
    while seen != expected:
        update = await watcher.next_update(timeout=5)
        seen = {row["userId"]: row["score"] for row in update["top10"]}
    return seen


async def test_every_client_on_every_node_sees_the_final_board(env, tmp_path: Path):
    env = {**env, "RATE_LIMIT": "1000000/minute"}
    tokens = {user: issue_token(JWT_SECRET, user) for user in USERS}
    with Processes(tmp_path) as processes:
        nodes = [processes.start_web(env), processes.start_web(env)]
        processes.start_worker(env)
        processes.start_worker(env)
        settings = Settings.from_env(env)
        assert settings.redis_url is not None
        wait_for_broadcast_listeners(settings.redis_url, settings.socketio_channel, 2)
        async with (
            watching(nodes[0].url, tokens["s0"]) as first,
            watching(nodes[1].url, tokens["s1"]) as second,
        ):
            result = await stream_updates(nodes[0].url, tokens, duration=1.0, concurrency=4)
            more = await stream_updates(nodes[1].url, tokens, duration=1.0, concurrency=4)
            expected = result.accepted + more.accepted
            totals = await wait_for_totals(env["REDIS_URL"], env["REDIS_KEY_PREFIX"], expected)
            assert totals == dict(expected)
            assert await settle_on(first, totals) == totals
            assert await settle_on(second, totals) == totals
