"""clients/js, the typed JavaScript client: its node tests, against a running service for the live
ones, and its type declarations checked by tsc."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

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


def test_the_type_declarations_accept_right_usage_and_refuse_wrong() -> None:
    run_in_client([str(Path("node_modules", ".bin", "tsc")), "--noEmit", "-p", "test"])
