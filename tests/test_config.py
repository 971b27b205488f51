"""Settings.from_env: defaults, modes, and a clear message for every bad variable."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from scoreboard.config import Mode, Settings
from scoreboard.errors import ConfigError

SECRET = "x" * 32
DISTRIBUTED = {
    "REDIS_URL": "redis://localhost:6379/0",
    "RABBITMQ_URL": "amqp://guest:guest@localhost:5672/",
    "JWT_SECRET": SECRET,
}


def test_defaults_of_a_distributed_deployment():
    settings = Settings.from_env(DISTRIBUTED)
    assert settings.mode is Mode.DISTRIBUTED
    assert (settings.port, settings.rate_limit, settings.max_score_increment) == (
        3000,
        "100/minute",
        1_000_000,
    )
    assert (settings.redis_key_prefix, settings.queue_name) == ("scoreboard:", "scoreboard.updates")
    assert settings.socketio_channel == "scoreboard:socketio"


def test_nothing_set_is_single_process_with_a_generated_secret():
    settings = Settings.from_env({})
    assert settings.mode is Mode.SINGLE_PROCESS
    assert settings.jwt_secret_generated
    assert len(settings.jwt_secret.value) >= 32


def test_the_secret_never_prints():
    settings = Settings.from_env(DISTRIBUTED)
    assert SECRET not in repr(settings) and SECRET not in str(settings)


def test_cloudamqp_url_stands_in_for_rabbitmq_url():
    env = {**DISTRIBUTED, "CLOUDAMQP_URL": "amqps://u:p@host/vhost"}
    del env["RABBITMQ_URL"]
    assert Settings.from_env(env).rabbitmq_url == "amqps://u:p@host/vhost"


def test_tls_redis_urls_are_accepted():
    env = {**DISTRIBUTED, "REDIS_URL": "rediss://:pw@host:6380?ssl_cert_reqs=none"}
    assert Settings.from_env(env).redis_url.startswith("rediss://")


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"REDIS_URL": "redis://localhost"}, "RABBITMQ_URL"),
        ({"RABBITMQ_URL": "amqp://localhost"}, "REDIS_URL"),
        ({**DISTRIBUTED, "JWT_SECRET": ""}, "JWT_SECRET"),
        ({**DISTRIBUTED, "JWT_SECRET": "short"}, "JWT_SECRET"),
        ({**DISTRIBUTED, "PORT": "http"}, "PORT"),
        ({**DISTRIBUTED, "PORT": "70000"}, "PORT"),
        ({**DISTRIBUTED, "REDIS_URL": "http://localhost"}, "REDIS_URL"),
        ({**DISTRIBUTED, "RABBITMQ_URL": "localhost:5672"}, "RABBITMQ_URL"),
        ({**DISTRIBUTED, "RATE_LIMIT": "lots"}, "RATE_LIMIT"),
        ({**DISTRIBUTED, "MAX_SCORE_INCREMENT": "0"}, "MAX_SCORE_INCREMENT"),
        ({**DISTRIBUTED, "MAX_SCORE_INCREMENT": "1.5"}, "MAX_SCORE_INCREMENT"),
        ({**DISTRIBUTED, "WORKER_PREFETCH": "-1"}, "WORKER_PREFETCH"),
        ({**DISTRIBUTED, "LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
    ],
)
def test_bad_values_stop_start_up_naming_the_variable(env: dict[str, str], named: str):
    with pytest.raises(ConfigError, match=named):
        Settings.from_env(env)


def test_values_are_read_and_typed():
    env = {
        **DISTRIBUTED,
        "PORT": "8080",
        "RATE_LIMIT": "5/second",
        "MAX_SCORE_INCREMENT": "10",
        "REDIS_KEY_PREFIX": "blue:",
        "QUEUE_NAME": "blue.updates",
    }
    settings = Settings.from_env(env)
    assert (settings.port, settings.rate_limit, settings.max_score_increment) == (
        8080,
        "5/second",
        10,
    )
    assert (settings.redis_key_prefix, settings.queue_name) == ("blue:", "blue.updates")


# --- Imports ----------------------------------------------------------------------------------

PACKAGE = Path(__file__).resolve().parent.parent / "scoreboard"


def imported_modules(module: str) -> set[str]:
    """The scoreboard modules `module` imports anywhere in its source, TYPE_CHECKING included."""
    relative = Path(*module.split(".")[1:])
    path = PACKAGE / relative / "__init__.py"
    if not path.exists():
        path = (PACKAGE / relative).with_suffix(".py")
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("scoreboard.") and _is_module(name)}


def _is_module(name: str) -> bool:
    relative = PACKAGE.joinpath(*name.split(".")[1:])
    return relative.with_suffix(".py").exists() or (relative / "__init__.py").exists()


def reachable_from(module: str) -> set[str]:
    seen: set[str] = set()
    waiting = [module]
    while waiting:
        for found in imported_modules(waiting.pop()) - seen:
            seen.add(found)
            waiting.append(found)
    return seen


@pytest.mark.parametrize("module", ["scoreboard.config", "scoreboard.intake.auth"])
def test_config_and_auth_import_nothing_that_imports_them_back(module: str):
    assert module not in reachable_from(module)


def test_auth_does_not_import_config_at_all():
    assert not any(
        name.startswith("scoreboard.config") for name in reachable_from("scoreboard.intake.auth")
    )
