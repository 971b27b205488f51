"""Heroku: app.json is valid by Heroku's reference and names real variables, add-ons and
processes; the Procfile's commands exist, and its release phase succeeds without a ledger."""

from __future__ import annotations

import copy
import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from scoreboard.commands.cli import build_parser
from scoreboard.config import VARIABLES, Mode, Settings
from tests.processes import process_env
from tests.test_cli import BACKEND

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((Path(__file__).parent / "schemas" / "app-json.schema.json").read_text())
DECLARED = {variable.name: variable for variable in VARIABLES}
# The variable each add-on sets, as its Heroku documentation says.
ADDON_VARIABLES = {
    "heroku-redis": "REDIS_URL",
    "cloudamqp": "CLOUDAMQP_URL",
    "heroku-postgresql": "DATABASE_URL",
}
# What one could look like, to build the settings a Heroku deployment gets.
ADDON_URLS = {
    "REDIS_URL": "rediss://:password@ec2-1-2-3-4.compute-1.amazonaws.com:6380",
    "CLOUDAMQP_URL": "amqps://user:password@whale.rmq.cloudamqp.com/vhost",
    "DATABASE_URL": "postgres://user:password@ec2-5-6-7-8.compute-1.amazonaws.com:5432/db",
}
GENERATED_SECRET = "0123456789abcdef" * 4  # Heroku's generator: 64 hexadecimal characters


def app_json() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((PROJECT_ROOT / "app.json").read_text())
    return loaded


def procfile() -> dict[str, str]:
    processes = {}
    for line in (PROJECT_ROOT / "Procfile").read_text().splitlines():
        if line.strip():
            name, command = line.split(":", 1)
            processes[name.strip()] = command.strip()
    return processes


def validation_errors(document: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    return [error.message for error in validator.iter_errors(document)]


def test_the_schema_is_a_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_app_json_is_valid():
    assert validation_errors(app_json()) == []


@pytest.mark.parametrize(
    "spoil",
    [
        lambda doc: doc.update(addon=[]),  # a misspelt key
        lambda doc: doc["env"]["JWT_SECRET"].update(generator="random"),
        lambda doc: doc["env"]["JWT_SECRET"].update(value="fixed"),  # a value and a generator
        lambda doc: doc["formation"]["web"].update(quantity="1"),
        lambda doc: doc["formation"]["web"].update(size="huge"),
        lambda doc: doc["addons"].append({"as": "REDIS"}),
    ],
)
def test_the_schema_refuses_what_heroku_would(spoil):
    document = copy.deepcopy(app_json())
    spoil(document)
    assert validation_errors(document)


def test_every_variable_is_declared_and_its_value_is_one_the_service_accepts():
    env = app_json()["env"]
    for name, entry in env.items():
        assert name in DECLARED, f"app.json sets {name}, which scoreboard/config does not read"
        assert entry["description"].strip(), name
        value = GENERATED_SECRET if entry.get("generator") == "secret" else entry["value"]
        DECLARED[name].read({name: value})  # raises ConfigError naming it if malformed
    assert env["JWT_SECRET"]["generator"] == "secret"


def test_the_addons_provide_the_distributed_mode_and_the_ledger():
    services = {addon["plan"].split(":")[0] for addon in app_json()["addons"]}
    assert services == set(ADDON_VARIABLES)
    assert set(ADDON_VARIABLES.values()) <= DECLARED.keys()


def test_the_settings_a_heroku_deployment_gets_are_distributed_with_a_ledger():
    env = {
        name: GENERATED_SECRET if entry.get("generator") == "secret" else entry["value"]
        for name, entry in app_json()["env"].items()
    }
    settings = Settings.from_env({**env, **ADDON_URLS, "DYNO": "web.1", "PORT": "5000"})
    assert settings.mode is Mode.DISTRIBUTED
    assert settings.rabbitmq_urls == (ADDON_URLS["CLOUDAMQP_URL"],)
    assert settings.keeps_ledger
    assert settings.redis_url is not None and "ssl_cert_reqs=none" in settings.redis_url
    assert settings.log_format == "json"


def test_the_formation_runs_the_procfile_processes():
    assert set(app_json()["formation"]) == set(procfile()) - {"release"}
    assert all(entry["quantity"] >= 1 for entry in app_json()["formation"].values())


def test_the_procfile_names_real_commands():
    processes = procfile()
    assert set(processes) == {"release", "web", "worker"}
    for name in ("web", "worker"):
        python, script = shlex.split(processes[name])
        assert python == "python" and (PROJECT_ROOT / script).is_file(), processes[name]
    python, module_flag, module, *command = shlex.split(processes["release"])
    assert (python, module_flag, module) == ("python", "-m", "scoreboard")
    assert build_parser().parse_args(command).command == "migrate"


def test_the_release_phase_succeeds_without_a_ledger():
    argv = [sys.executable, *shlex.split(procfile()["release"])[1:]]
    result = subprocess.run(
        argv,
        cwd=PROJECT_ROOT,
        env=process_env({}, remove=BACKEND),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "DATABASE_URL is not set" in result.stdout
