"""clients/js, the typed JavaScript client: its node tests, against a running service for the live
ones, and its type declarations checked by tsc."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import msgspec
import pytest

from scoreboard.api import models
from scoreboard.push.broadcast import LEADERBOARD_EVENT
from tests.conftest import JWT_SECRET
from tests.processes import PROJECT_ROOT, Processes, process_env

CLIENT_DIR = PROJECT_ROOT / "clients" / "js"
RATE_LIMIT = "3/second"  # low enough for the live tests to meet it within a second
NODE_TIMEOUT_SECONDS = 120


@pytest.fixture(autouse=True)
def installed() -> None:
    """Fail at once, saying what to do, when Node or the client's packages are missing."""
    if shutil.which("node") is None:
        pytest.fail("node is not on PATH; these tests run the JavaScript client", pytrace=False)
    if not (CLIENT_DIR / "node_modules" / "socket.io-client").is_dir():
        pytest.fail("run `npm ci --prefix clients/js`", pytrace=False)


def run_in_client(argv: list[str], env: dict[str, str] | None = None) -> str:
    """Run a command in clients/js; fail with its output unless it exits 0."""
    finished = subprocess.run(
        argv,
        cwd=CLIENT_DIR,
        env=process_env(env or {}),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT_SECONDS,
        check=False,
    )
    output = finished.stdout + finished.stderr
    assert finished.returncode == 0, output
    return output


def node_tests(*files: str, env: dict[str, str] | None = None) -> str:
    output = run_in_client(["node", "--test", "--test-reporter=spec", *files], env)
    assert "\u2139 fail 0" in output and "\u2139 pass 0" not in output, output
    return output


def test_stale_versions_are_dropped_and_posting_retries_by_the_rules() -> None:
    node_tests("test/versions.test.js", "test/post-score.test.js")


def test_the_client_against_a_running_web_node_and_worker(
    processes: Processes, env: dict[str, str]
) -> None:
    [web] = processes.start_distributed({**env, "RATE_LIMIT": RATE_LIMIT})
    node_tests(
        "test/live.test.js",
        env={
            "SCOREBOARD_URL": web.url,
            "SCOREBOARD_JWT_SECRET": JWT_SECRET,
            "SCOREBOARD_RATE_LIMIT": RATE_LIMIT,
        },
    )


TSC = str(Path("node_modules", ".bin", "tsc"))


def test_the_type_declarations_accept_right_usage_and_refuse_wrong() -> None:
    run_in_client([TSC, "--noEmit", "-p", "test"])


def test_the_declared_payload_types_take_what_the_server_declares(tmp_path: Path) -> None:
    """Each payload the Python declarations allow, every field filled in, is a value of its
    TypeScript type, with no field the type lacks (TypeScript refuses unknown fields here)."""
    top = [models.TopEntry(user_id="alice", username="Alice", score=5)]
    samples = {
        "LeaderboardUpdate[]": [
            models.LeaderboardUpdate(event=LEADERBOARD_EVENT, version=3, top10=top),
            models.LeaderboardUpdate(
                event=LEADERBOARD_EVENT, version=0, top10=[], board_id="weekly", season=2
            ),
        ],
        "BoardsAck[]": [
            models.BoardsHeld(status="success", boards=["global", "weekly"]),
            models.Error(status="error", message="Unknown board: nope"),
        ],
        "ScoreAccepted": {
            "status": "success",
            **msgspec.to_builtins(
                models.BoardScoreAccepted(message="Score update queued", new_score=5)
            ),
        },
    }
    types = "{ BoardsAck, LeaderboardUpdate, ScoreAccepted }"
    lines = [f'import type {types} from "{CLIENT_DIR}/index.js";']
    for index, (kind, value) in enumerate(samples.items()):
        payload = json.dumps(msgspec.to_builtins(value))
        lines.append(f"export const sample{index}: {kind} = {payload};")
    (tmp_path / "payloads.ts").write_text("\n".join(lines) + "\n")
    options = ["--strict", "--exactOptionalPropertyTypes", "--target", "es2022"]
    options += ["--module", "nodenext", "--lib", "es2022,dom"]
    run_in_client([TSC, "--noEmit", *options, str(tmp_path / "payloads.ts")])
