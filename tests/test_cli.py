"""The command line: its subcommands, a token the service accepts, migrate, serve and worker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest

from scoreboard.apply.ledger.migrations import migration_files
from scoreboard.intake.auth import TokenVerifier
from tests.conftest import JWT_SECRET
from tests.processes import (
    WORKER_READY_MARKER,
    Processes,
    ServiceProcess,
    WebProcess,
    free_port,
    process_env,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUBCOMMANDS = (
    "serve",
    "worker",
    "healthcheck",
    "migrate",
    "rebuild",
    "token",
    "config-table",
    "api-reference",
)
BACKEND = {"JWT_SECRET", "REDIS_URL", "RABBITMQ_URL", "CLOUDAMQP_URL", "DATABASE_URL"}


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in BACKEND}
    return subprocess.run(
        [sys.executable, "-m", "scoreboard", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_token_verifies_with_the_configured_secret_and_carries_name_and_ttl():
    result = run_cli(
        "token", "--sub", "alice", "--name", "Alice", "--ttl", "15m", env={"JWT_SECRET": JWT_SECRET}
    )
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    identity = TokenVerifier(JWT_SECRET).verify(token)
    assert (identity.subject, identity.username) == ("alice", "Alice")
    import jwt

    claims = jwt.decode(token, JWT_SECRET, algorithms=["HS256"])
    assert 14 * 60 <= claims["exp"] - time.time() <= 15 * 60


def test_token_without_a_secret_is_refused():
    result = run_cli("token", "--sub", "alice", env={})
    assert result.returncode == 2
    assert "JWT_SECRET" in result.stderr


@pytest.mark.parametrize("ttl", ["0", "soon", "-5m"])
def test_bad_ttl_is_refused(ttl: str):
    result = run_cli("token", "--sub", "alice", f"--ttl={ttl}", env={"JWT_SECRET": JWT_SECRET})
    assert result.returncode == 2
    assert "duration" in result.stderr


def test_help_lists_every_subcommand():
    result = run_cli("--help", env={})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m scoreboard ")
    listed = {line.split()[0] for line in result.stdout.splitlines() if line.startswith("    ")}
    assert set(SUBCOMMANDS) <= listed, result.stdout


def test_migrate_without_a_database_says_so_and_succeeds():
    # The Procfile's release phase runs it on every deployment, with a ledger or without.
    result = run_cli("migrate", env={})
    assert result.returncode == 0, result.stderr
    assert "DATABASE_URL is not set" in result.stdout


async def test_migrate_applies_the_migrations_once(database_url: str):
    first = run_cli("migrate", env={"DATABASE_URL": database_url})
    assert first.returncode == 0, first.stderr
    names = [name for _, name, _ in migration_files()]
    assert first.stdout.split() == ["applied", str(len(names)), "migration(s)", *names]
    again = run_cli("migrate", env={"DATABASE_URL": database_url})
    assert again.stdout.strip() == "applied 0 migration(s)"
    connection = await asyncpg.connect(database_url)
    try:
        versions = await connection.fetchval("SELECT count(*) FROM schema_migrations")
    finally:
        await connection.close()
    assert versions == len(names)


def test_serve_runs_a_web_node_that_stops_cleanly_on_sigterm(tmp_path: Path):
    env = process_env({"PORT": str(free_port())}, remove=BACKEND)
    argv = [sys.executable, "-m", "scoreboard", "serve"]
    web = WebProcess("serve", env, tmp_path / "serve.log", argv)
    try:
        web.wait_until_healthy()
        assert "single-process mode" in web.output
    finally:
        finished = web.stop()
    assert finished.returncode == 0, finished.output


def test_worker_consumes_the_queue_and_stops_cleanly_on_sigterm(env, tmp_path: Path):
    worker = ServiceProcess(
        "worker",
        [sys.executable, "-m", "scoreboard", "worker"],
        process_env({**env, "METRICS_PORT": "0"}),
        tmp_path / "worker.log",
    )
    try:
        worker.wait_for_output(WORKER_READY_MARKER)
    finally:
        finished = worker.stop()
    assert finished.returncode == 0, finished.output
    assert "worker stopped" in finished.output


def test_healthcheck_finds_a_web_node_on_port(processes: Processes, env: dict[str, str]):
    web = processes.start_web(env)
    checked = run_cli(
        "healthcheck", env={**env, "PORT": str(web.port), "METRICS_PORT": str(free_port())}
    )
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == f"healthy: http://127.0.0.1:{web.port}/healthz"


def test_healthcheck_finds_a_worker_on_metrics_port(processes: Processes, env: dict[str, str]):
    port = free_port()
    processes.start_worker({**env, "METRICS_PORT": str(port)})
    checked = run_cli(
        "healthcheck", env={**env, "PORT": str(free_port()), "METRICS_PORT": str(port)}
    )
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == f"healthy: http://127.0.0.1:{port}/healthz"


def test_healthcheck_fails_when_nothing_answers(env: dict[str, str]):
    ports = {"PORT": str(free_port()), "METRICS_PORT": str(free_port())}
    checked = run_cli("healthcheck", env={**env, **ports})
    assert checked.returncode == 1
    assert checked.stderr.startswith("unhealthy: ")
    assert all(f":{port}/healthz" in checked.stderr for port in ports.values())
