"""The real JavaScript client (socket.io-client 4 on Node) against real server and worker."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import TokenFactory
from tests.processes import (
    PROJECT_ROOT,
    ServiceProcess,
    WebProcess,
    process_env,
)
from tests.test_end_to_end import EMPTY_SNAPSHOT, EVENT_TIMEOUT_SECONDS, entry, post_score

JS_DIR = PROJECT_ROOT / "tests" / "js"
SCRIPT = JS_DIR / "watch_leaderboard.mjs"
SCRIPT_TIMEOUT_MS = 10_000
EXIT_TIMEOUT_SECONDS = SCRIPT_TIMEOUT_MS / 1000 + 5
MISSING_NODE_MODULES = "tests/js/node_modules is missing: run `npm ci --prefix tests/js`"
TRANSPORTS = pytest.mark.parametrize(
    "transports", [None, ["websocket"]], ids=["polling-upgrade", "websocket-only"]
)


@pytest.fixture(autouse=True)
def node_client() -> None:
    """Fail at once, saying what to do, when Node or the installed client is missing."""
    if shutil.which("node") is None:
        pytest.fail("node is not on PATH; these tests run the JavaScript client", pytrace=False)
    if not (JS_DIR / "node_modules" / "socket.io-client").is_dir():
        pytest.fail(MISSING_NODE_MODULES, pytrace=False)


@contextmanager
def watch_script(
    log_dir: Path, url: str, token: str, user_id: str, transports: Sequence[str] | None
) -> Iterator[ServiceProcess]:
    """watch_leaderboard.mjs running; stopped on the way out if it has not exited."""
    argv = ["node", str(SCRIPT), url, token, user_id, "--timeout-ms", str(SCRIPT_TIMEOUT_MS)]
    if transports is not None:
        argv += ["--transports", ",".join(transports)]
    script = ServiceProcess(
        "watch_leaderboard", argv, process_env({}), log_dir / "node.out", log_dir / "node.err"
    )
    try:
        yield script
    finally:
        script.stop()


def printed_updates(stdout: str) -> list[dict[str, Any]]:
    """The JSON lines the script completed so far."""
    complete, _, _ = stdout.rpartition("\n")
    return [json.loads(line) for line in complete.splitlines()]


@TRANSPORTS
async def test_js_client_gets_snapshot_then_the_update_and_exits_0(
    web: WebProcess,
    http: aiohttp.ClientSession,
    make_token: TokenFactory,
    tmp_path: Path,
    transports: list[str] | None,
) -> None:
    with watch_script(tmp_path, web.url, make_token("viewer"), "alice", transports) as script:
        script.wait_for_output("\n", EVENT_TIMEOUT_SECONDS)
        if transports is None:
            upgraded = "upgraded transport=websocket"
            script.wait_until(lambda: upgraded in script.errors, upgraded, EVENT_TIMEOUT_SECONDS)
        await post_score(http, web, make_token("alice", "Alice"), "alice", 5)
        finished = script.wait(EXIT_TIMEOUT_SECONDS)
    assert finished.returncode == 0, finished.errors
    assert printed_updates(finished.output) == [
        EMPTY_SNAPSHOT,
        {"event": "leaderboardUpdate", "version": 1, "top10": [entry("alice", "Alice", 5)]},
    ]
    first_transport = "polling" if transports is None else "websocket"
    assert finished.errors.startswith(f"open transport={first_transport}\n"), finished.errors
    assert "found alice transport=websocket" in finished.errors


@TRANSPORTS
def test_js_client_with_a_bad_token_gets_connect_error(
    web: WebProcess, tmp_path: Path, transports: list[str] | None
) -> None:
    with watch_script(tmp_path, web.url, "not-a-jwt", "alice", transports) as script:
        finished = script.wait(EXIT_TIMEOUT_SECONDS)
    assert finished.returncode == 1, finished.errors
    assert "connect_error: Authentication failed" in finished.errors
    assert finished.output == ""
