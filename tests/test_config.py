"""Settings.from_env: defaults, modes, and a clear message for every bad variable."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from scoreboard.config import VARIABLES, Mode, Secret, Settings, variables
from scoreboard.config.variable import VARIABLE
from scoreboard.errors import ConfigError
from scoreboard.queue.queue_layout import dead_letter_queue_name

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


def test_no_secret_or_password_shows_in_the_repr():
    env = {
        **DISTRIBUTED,
        "REDIS_URL": "redis://:hunter2-redis@localhost:6379/0",
        "RABBITMQ_URL": "amqp://guest:hunter2-amqp@localhost:5672/",
        "DATABASE_URL": "postgresql://scoreboard:hunter2-pg@localhost/ledger",
        "QUEUE_SIGNING_KEY": "hunter2-" * 4,
        "METRICS_TOKEN": "hunter2-" * 2,
    }
    assert "hunter2" not in repr(Settings.from_env(env))


def test_the_longest_queue_name_leaves_room_for_its_dead_letter_queue():
    longest = "q" * variables.MAX_QUEUE_NAME_BYTES
    assert Settings.from_env({"QUEUE_NAME": longest}).queue_name == longest
    assert len(dead_letter_queue_name(longest).encode()) == 255  # an AMQP short string's most


def test_cloudamqp_url_stands_in_for_rabbitmq_url():
    env = {**DISTRIBUTED, "CLOUDAMQP_URL": "amqps://u:p@host/vhost"}
    del env["RABBITMQ_URL"]
    assert Settings.from_env(env).rabbitmq_urls == ("amqps://u:p@host/vhost",)


def test_rabbitmq_url_names_every_node_of_a_cluster():
    nodes = "amqp://u:p@node1:5672/, amqp://u:p@node2:5672/,amqps://u:p@node3:5671/"
    settings = Settings.from_env({**DISTRIBUTED, "RABBITMQ_URL": nodes})
    assert settings.rabbitmq_urls == (
        "amqp://u:p@node1:5672/",
        "amqp://u:p@node2:5672/",
        "amqps://u:p@node3:5671/",
    )
    assert Settings.from_env(DISTRIBUTED).rabbitmq_urls == (DISTRIBUTED["RABBITMQ_URL"],)


@pytest.mark.parametrize(
    ("nodes", "why"),
    [
        ("amqp://node1/,", "an empty URL between commas"),
        ("amqp://node1/,,amqp://node2/", "an empty URL between commas"),
        ("amqp://node1/,http://node2/", ""),
        ("amqp://node1/,amqp://node1/", "a URL appears twice"),
    ],
)
def test_a_bad_node_in_the_list_stops_start_up(nodes: str, why: str):
    with pytest.raises(ConfigError, match="RABBITMQ_URL") as refused:
        Settings.from_env({**DISTRIBUTED, "RABBITMQ_URL": nodes})
    assert why in str(refused.value)
    assert "node1" not in str(refused.value)  # the URLs hold passwords: never shown


def test_tls_redis_urls_are_accepted():
    env = {**DISTRIBUTED, "REDIS_URL": "rediss://:pw@host:6380?ssl_cert_reqs=none"}
    assert Settings.from_env(env).redis_url.startswith("rediss://")


@pytest.mark.parametrize(
    ("url", "verify", "used"),
    [
        ("rediss://:pw@host:6380", "0", "rediss://:pw@host:6380?ssl_cert_reqs=none"),
        ("rediss://h:6380/0?db=1", "0", "rediss://h:6380/0?db=1&ssl_cert_reqs=none"),
        ("rediss://h?ssl_cert_reqs=required", "0", "rediss://h?ssl_cert_reqs=required"),
        ("rediss://:pw@host:6380", "", "rediss://:pw@host:6380"),
        ("rediss://:pw@host:6380", "1", "rediss://:pw@host:6380"),
        ("redis://host:6379", "0", "redis://host:6379"),
    ],
)
def test_redis_tls_verify_0_stops_checking_a_rediss_certificate(url: str, verify: str, used: str):
    env = {**DISTRIBUTED, "REDIS_URL": url, "REDIS_TLS_VERIFY": verify}
    assert Settings.from_env(env).redis_url == used


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


def test_tier_maps_are_read_in_order():
    settings = Settings.from_env(
        {
            "RATE_LIMITS": "free:100/minute, premium : 5/second",
            "TIER_PRIORITIES": "premium=5,free=0",
        }
    )
    assert settings.tier_rate_limits == (("free", "100/minute"), ("premium", "5/second"))
    assert settings.tier_priorities == (("premium", 5), ("free", 0))
    assert (settings.priority_of("premium"), settings.priority_of("gold")) == (5, 0)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("RATE_LIMITS", "free:1/minute,free:2/minute"),
        ("RATE_LIMITS", "fr\u200bee:1/minute"),
        ("TIER_PRIORITIES", "free=1,free=2"),
        ("TIER_PRIORITIES", "free=10"),
        ("QUEUE_NAME", "amq.updates"),
        ("QUEUE_NAME", "q" * (variables.MAX_QUEUE_NAME_BYTES + 1)),
        ("REDIS_KEY_PREFIX", "blue: "),
        ("JWT_ISSUER", "https://auth.example/\n"),
        ("REDIS_URL", "redis:localhost"),
        ("REDIS_URL", "redis://localhost:99999/0"),
        ("CORS_ALLOWED_ORIGINS", "https://game.example:0"),
    ],
)
def test_values_that_could_never_work_stop_start_up(variable: str, value: str):
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env({**DISTRIBUTED, variable: value})


# --- Declarations -----------------------------------------------------------------------------

DERIVED_FIELDS = {"jwt_secret", "jwt_secret_generated"}  # set by from_env's rules, not one variable


def test_every_settings_field_but_the_derived_ones_holds_one_declared_variable():
    held = {field.name: field.metadata.get(VARIABLE) for field in dataclasses.fields(Settings)}
    assert {name for name, variable in held.items() if variable is None} == DERIVED_FIELDS
    assert {variable for variable in held.values() if variable is not None} <= set(VARIABLES)


def test_each_declaration_is_named_after_its_variable_and_only_once():
    assert all(getattr(variables, variable.name) is variable for variable in VARIABLES)
    assert len({variable.name for variable in VARIABLES}) == len(VARIABLES)


class Recording(dict[str, str]):
    """An environment that notes every name looked up in it."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.asked: set[str] = set()

    def get(self, name: str, default: Any = None) -> Any:
        self.asked.add(name)
        return super().get(name, default)

    def __getitem__(self, name: str) -> str:
        self.asked.add(name)
        return super().__getitem__(name)

    def __contains__(self, name: object) -> bool:
        self.asked.add(str(name))
        return super().__contains__(name)


@pytest.mark.parametrize("env", [{}, DISTRIBUTED], ids=["single-process", "distributed"])
def test_from_env_reads_every_declared_variable_and_nothing_else(env: dict[str, str]):
    recording = Recording(env)
    Settings.from_env(recording)
    assert recording.asked == {variable.name for variable in VARIABLES}


def comparable(settings: Settings) -> Settings:
    """`settings` with the one random part, a generated secret, made fixed."""
    return dataclasses.replace(settings, jwt_secret=Secret("generated"))


@pytest.mark.parametrize("variable", VARIABLES, ids=lambda variable: variable.name)
def test_a_default_written_out_reads_back_as_itself(variable: Any):
    written = variable.written_default
    if written is None:
        assert variable.default in (None, ())
        return
    assert variable.kind.parse(written) == variable.default
    assert comparable(Settings.from_env({variable.name: written})) == comparable(
        Settings.from_env({})
    )


def test_settings_built_directly_have_the_declared_defaults():
    assert comparable(Settings()) == comparable(
        dataclasses.replace(Settings.from_env({}), jwt_secret_generated=False)
    )


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


def importing_back(module: str) -> set[str]:
    """Modules outside `module` (a module or package) it reaches that import it back."""

    def inside(name: str) -> bool:
        return name == module or name.startswith(f"{module}.")

    return {
        name
        for name in reachable_from(module)
        if not inside(name) and any(inside(found) for found in imported_modules(name))
    }


@pytest.mark.parametrize("module", ["scoreboard.config", "scoreboard.intake.auth"])
def test_config_and_auth_import_nothing_that_imports_them_back(module: str):
    assert importing_back(module) == set()


def test_auth_does_not_import_config_at_all():
    reached = reachable_from("scoreboard.intake.auth")
    assert not any(name.startswith("scoreboard.config") for name in reached)


def test_a_broker_url_from_cloudamqp_alone_is_named_when_redis_is_missing():
    from scoreboard.errors import ConfigError

    with pytest.raises(ConfigError, match="CLOUDAMQP_URL is set but REDIS_URL is not"):
        Settings.from_env({"CLOUDAMQP_URL": "amqp://guest:guest@localhost:5672/"})
