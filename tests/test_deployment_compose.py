"""compose.yaml: valid by the Compose specification (the schema check-jsonschema ships), and
every variable, URL, port, command and monitoring file it names is one the project has."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from scoreboard.commands.cli import CONSOLE_COMMAND, build_parser
from scoreboard.config import VARIABLES, Mode, Settings
from scoreboard.config.variables import METRICS_PORT, PORT
from scoreboard.web.serving import SHUTDOWN_TIMEOUT_SECONDS
from scoreboard.worker.process import DRAIN_TIMEOUT_SECONDS

PROJECT_ROOT = Path(__file__).resolve().parent.parent
COMPOSE = PROJECT_ROOT / "compose.yaml"
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
DECLARED = {variable.name: variable for variable in VARIABLES}
PROCESSES = {"migrate": "migrate", "web": "serve", "worker": "worker"}
JWT_SECRET = "j" * 48
# ${NAME:?message}, ${NAME:-default}, ${NAME}
INTERPOLATION = re.compile(r"\$\{([A-Z_]+)(?::([?-])([^}]*))?\}")


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def services() -> dict[str, Any]:
    found: dict[str, Any] = compose()["services"]
    return found


def interpolated(value: str, given: dict[str, str]) -> str:
    """What Compose makes of a value with `given` in the shell's environment."""

    def one(match: re.Match[str]) -> str:
        name, kind, rest = match.groups()
        if name in given:
            return given[name]
        assert kind == "-", f"{name} must be given ({rest})"
        return rest

    return INTERPOLATION.sub(one, value)


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def service_env(name: str) -> dict[str, str]:
    environment = services()[name]["environment"]
    return {
        key: interpolated(str(value), {"JWT_SECRET": JWT_SECRET})
        for key, value in environment.items()
    }


def test_compose_yaml_follows_the_compose_specification():
    result = validate(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "spoil",
    [
        lambda doc: doc["services"]["web"].update(ports="3000:3000"),  # a list is required
        lambda doc: doc["services"]["worker"].update(stop_grace="30s"),  # no such key
        lambda doc: doc["services"]["migrate"]["depends_on"]["redis"].update(condition="up"),
    ],
)
def test_the_specification_refuses_a_spoilt_copy(tmp_path: Path, spoil):
    copy = tmp_path / "compose.yaml"
    document = compose()
    copy.write_text(yaml.safe_dump(document))
    assert validate(copy).returncode == 0  # the copy as such passes
    spoil(document)
    copy.write_text(yaml.safe_dump(document))
    assert validate(copy).returncode != 0


def test_one_image_runs_the_migrations_the_web_node_and_the_worker():
    for name, command in PROCESSES.items():
        service = services()[name]
        assert (service["build"], service["image"]) == (".", "scoreboard:local"), name
        program, *args = service["command"]
        assert program == CONSOLE_COMMAND
        assert build_parser().parse_args(args).command == command


def test_the_processes_start_after_the_migrations_which_wait_for_the_services():
    assert services()["migrate"]["depends_on"] == {
        name: {"condition": "service_healthy"} for name in ("redis", "rabbitmq", "postgres")
    }
    for name in ("web", "worker"):
        condition = {"condition": "service_completed_successfully"}
        assert services()[name]["depends_on"] == {"migrate": condition}
    for name in ("redis", "rabbitmq", "postgres"):
        assert services()[name]["healthcheck"]["test"][0] == "CMD"


def test_every_variable_is_declared_and_read_as_a_distributed_deployment_with_a_ledger():
    for name in PROCESSES:
        env = service_env(name)
        assert set(env) <= DECLARED.keys(), set(env) - DECLARED.keys()
        settings = Settings.from_env(env)
        assert settings.mode is Mode.DISTRIBUTED and settings.keeps_ledger


def test_without_jwt_secret_compose_refuses_to_start():
    value = services()["web"]["environment"]["JWT_SECRET"]
    with pytest.raises(AssertionError, match="JWT_SECRET must be given"):
        interpolated(value, {})


def test_the_urls_name_the_services_and_their_credentials():
    env = service_env("web")
    redis = urlsplit(env["REDIS_URL"])
    assert redis.hostname == "redis" and "redis" in services()
    rabbitmq = urlsplit(env["RABBITMQ_URL"])
    broker = services()["rabbitmq"]["environment"]
    assert (rabbitmq.hostname, rabbitmq.username, rabbitmq.password) == (
        "rabbitmq",
        broker["RABBITMQ_DEFAULT_USER"],
        broker["RABBITMQ_DEFAULT_PASS"],
    )
    database = urlsplit(env["DATABASE_URL"])
    postgres = services()["postgres"]["environment"]
    assert (database.hostname, database.username, database.password, database.path) == (
        "postgres",
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
        "/" + postgres["POSTGRES_DB"],
    )


def test_the_web_node_is_published_on_its_default_port():
    assert services()["web"]["ports"] == [f"{PORT.default}:{PORT.default}"]
    assert "PORT" not in service_env("web")


def test_stopping_leaves_each_process_the_time_its_shutdown_takes():
    grace = {
        name: int(services()[name]["stop_grace_period"].removesuffix("s"))
        for name in ("web", "worker")
    }
    assert grace["web"] > SHUTDOWN_TIMEOUT_SECONDS
    assert grace["worker"] > DRAIN_TIMEOUT_SECONDS


def mounts(service: str) -> dict[str, Path]:
    """Container path -> file or folder of the project, for each bind mount of `service`."""
    found = {}
    for volume in services()[service]["volumes"]:
        source, target, *_mode = volume.split(":")
        if source.startswith("./"):
            found[target] = PROJECT_ROOT / source
    return found


def test_prometheus_loads_the_alert_rules_and_scrapes_web_and_worker_on_their_ports():
    mounted = mounts("prometheus")
    assert all(path.exists() for path in mounted.values())
    config = yaml.safe_load(mounted["/etc/prometheus/prometheus.yml"].read_text())
    [rules] = config["rule_files"]
    assert mounted[rules] == PROJECT_ROOT / "ops" / "prometheus" / "alerts.yml"
    scraped = {
        name: job["dns_sd_configs"][0]["port"]
        for job in config["scrape_configs"]
        for name in job["dns_sd_configs"][0]["names"]
    }
    assert scraped == {"web": PORT.default, "worker": METRICS_PORT.default}
    assert {job["metrics_path"] for job in config["scrape_configs"]} == {"/metrics"}
    assert "METRICS_PORT" not in service_env("worker") and "METRICS_TOKEN" not in service_env("web")


def test_grafana_is_provisioned_with_prometheus_and_the_dashboard():
    mounted = mounts("grafana")
    assert all(path.exists() for path in mounted.values())
    provisioning = mounted["/etc/grafana/provisioning"]
    [source] = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    assert source["type"] == "prometheus" and source["isDefault"]
    url = urlsplit(source["url"])
    assert url.hostname == "prometheus" and "prometheus" in services()
    assert f"{url.port}:{url.port}" in services()["prometheus"]["ports"]
    [provider] = yaml.safe_load((provisioning / "dashboards" / "scoreboard.yml").read_text())[
        "providers"
    ]
    folder = provider["options"]["path"]
    dashboards = {target: path for target, path in mounted.items() if target.startswith(folder)}
    assert list(dashboards.values()) == [PROJECT_ROOT / "ops" / "grafana" / "scoreboard.json"]
    home = services()["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home in dashboards
