"""python -m scoreboard token: prints a token the service accepts."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from scoreboard.intake.auth import TokenVerifier
from tests.conftest import JWT_SECRET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v for k, v in os.environ.items() if k not in {"JWT_SECRET", "REDIS_URL", "RABBITMQ_URL"}
    }
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
