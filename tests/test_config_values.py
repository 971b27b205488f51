"""Hostile values in every declared variable: a valid Settings or a ConfigError naming it."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoreboard.config import VARIABLES, Settings
from scoreboard.config.kinds import Decimal, Integer, TierMap
from scoreboard.config.variable import Variable
from scoreboard.errors import ConfigError
from tests.processes import BACKEND_VARIABLES, PROJECT_ROOT, process_env

DISTRIBUTED = {
    "REDIS_URL": "redis://localhost:6379/0",
    "RABBITMQ_URL": "amqp://guest:guest@localhost:5672/",
    "JWT_SECRET": "x" * 32,
}
BASES = {"single-process": {}, "distributed": DISTRIBUTED}
HOSTILE = [
    *("²", "٣", "５", "1e3", "-1", "+1", "9" * 5000, "\x00", "\ud800", "x" * 100_000),
    *("=", ":", ",", "\udcff", " 5", "5 ", "1_000", "0x10", "nan", "-inf", "5.", "\n", "\t"),
    *("\u00a0", "\u200b", "\u202e", "ınfo", "ﬁ", "*", "%", "\\n", "a=b=c", "a:b:c", ",,,"),
    *("free:", ":1/minute", "free=", "=5", "free=²", "free:٣/minute", "free=1,free=1"),
    *("redis://[::1", "redis://h:99999", "redis://h:٣", "https://", "http://[", "amqp://h:0/"),
    *("https://ex\u0430mple.com", "https://a.example:0", "*,*", "-----BEGIN PUBLIC KEY-----"),
]
NOT_PLAIN_NUMBERS = ["٣", "５", "²", "+5", "1_000", " 5", "5 ", "1e3", "0x10", "-0", "5.", ".5"]
NUMBER_KINDS = (Integer, Decimal)


def ids(variable: Variable[Any]) -> str:
    return variable.name


def outcome(env: dict[str, str], variable: Variable[Any]) -> str | None:
    """None when `env` reads as Settings, else the ConfigError's message; fails on anything else."""
    try:
        Settings.from_env(env)
    except ConfigError as exc:
        assert variable.name in str(exc), (env[variable.name][:80], str(exc))
        return str(exc)
    except Exception as exc:  # the point of the test: nothing else may escape
        pytest.fail(f"{variable.name}={env[variable.name][:80]!r} raised {exc!r}")
    return None


@pytest.mark.parametrize("base", BASES.values(), ids=BASES.keys())
@pytest.mark.parametrize("variable", VARIABLES, ids=ids)
def test_every_hostile_value_is_read_or_refused_naming_the_variable(
    variable: Variable[Any], base: dict[str, str]
):
    for value in HOSTILE:
        outcome({**base, variable.name: value}, variable)


@settings(max_examples=600, deadline=None)
@given(
    variable=st.sampled_from(VARIABLES),
    value=st.one_of(
        st.text(st.characters(exclude_categories=())),
        st.lists(
            st.sampled_from(
                [*"0159-+.:=,/ *@[]%\x00", "minute", "free", "redis://", "https://", "٣", "²"]
                + ["amqp://", "localhost", "127.0.0.1", "::1", "\\n", "-----BEGIN PUBLIC KEY-----"]
            )
        ).map("".join),
    ),
    distributed=st.booleans(),
)
def test_any_value_is_read_or_refused_naming_the_variable(
    variable: Variable[Any], value: str, distributed: bool
):
    outcome({**(DISTRIBUTED if distributed else {}), variable.name: value}, variable)


@pytest.mark.parametrize(
    "variable",
    [
        variable
        for variable in VARIABLES
        if isinstance(variable.kind, NUMBER_KINDS)
        or (isinstance(variable.kind, TierMap) and isinstance(variable.kind.value, NUMBER_KINDS))
    ],
    ids=ids,
)
def test_numbers_are_plain_ascii_digits(variable: Variable[Any]):
    in_list = isinstance(variable.kind, TierMap)
    for value in NOT_PLAIN_NUMBERS:
        if in_list and value != value.strip():
            continue  # spaces around the items of a list are allowed
        written = f"free={value}" if in_list else value
        assert outcome({variable.name: written}, variable) is not None, written


@pytest.mark.parametrize("variable", [v for v in VARIABLES if v.secret], ids=ids)
def test_a_refused_secret_is_not_repeated_in_the_message(variable: Variable[Any]):
    value = "s3cret-and-malformed\n"
    message = outcome({**DISTRIBUTED, variable.name: value}, variable)
    assert message is not None and "s3cret" not in message


@pytest.mark.parametrize(
    ("argv", "variable", "value"),
    [
        (["server.py"], "PORT", "٣"),
        (["server.py"], "REDIS_KEY_PREFIX", "\udcff"),  # an undecodable byte in the environment
        (["server.py"], "RATE_LIMITS", "free:100/minute,free:5/second"),
        (["worker.py"], "WORKER_PREFETCH", "1e3"),
        (["-m", "scoreboard", "token", "--sub", "alice"], "TIER_PRIORITIES", "free=²"),
    ],
)
def test_a_malformed_variable_stops_the_process_with_a_message_naming_it(
    argv: list[str], variable: str, value: str
):
    finished = subprocess.run(
        [sys.executable, *argv],
        cwd=PROJECT_ROOT,
        env=process_env({variable: value}, remove=BACKEND_VARIABLES),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert finished.returncode != 0
    assert finished.stderr.startswith(f"configuration error: {variable} "), finished.stderr
    assert "Traceback" not in finished.stderr + finished.stdout
