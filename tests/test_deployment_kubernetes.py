"""deploy/kubernetes: valid by the Kubernetes API schemas (kubernetes-validate, offline), and
naming the real commands, variables, ports, probe paths, user and shutdown times."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import aiohttp
import kubernetes_validate
import pytest
import yaml
from dockerfile_parse import DockerfileParser

from scoreboard.api.endpoints import ENDPOINTS
from scoreboard.commands.cli import CONSOLE_COMMAND, build_parser
from scoreboard.config import VARIABLES, Mode, Settings
from scoreboard.config.variables import METRICS_PORT, PORT
from scoreboard.ops.metrics import Metrics
from scoreboard.ops.readiness import ReadinessProbe
from scoreboard.ops.worker_port import WorkerPort
from scoreboard.ops.worker_readiness import WorkerReadinessProbe
from scoreboard.web.listeners import EVERY_PORT_ROUTES, OPS_ROUTES
from scoreboard.web.serving import SHUTDOWN_TIMEOUT_SECONDS
from scoreboard.worker.process import DRAIN_TIMEOUT_SECONDS
from tests.processes import free_port

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = PROJECT_ROOT / "deploy" / "kubernetes"
PYPROJECT = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
DECLARED = {variable.name: variable for variable in VARIABLES}
# The oldest release with the preStop sleep action on by default, and the newest known.
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
SECRET_VALUES = {
    "REDIS_URL": "redis://redis:6379/0",
    "RABBITMQ_URL": "amqp://user:password@rabbitmq:5672/",
    "DATABASE_URL": "postgresql://user:password@postgres:5432/scoreboard",
    "JWT_SECRET": "k" * 48,
    "QUEUE_SIGNING_KEY": "q" * 48,
}


def resources() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    found = []
    for name in kustomization["resources"]:
        found.extend(doc for doc in yaml.safe_load_all((MANIFESTS / name).read_text()) if doc)
    return found


def resource(kind: str, name: str) -> dict[str, Any]:
    [found] = [r for r in resources() if r["kind"] == kind and r["metadata"]["name"] == name]
    return found


def container(deployment: str) -> dict[str, Any]:
    [only] = resource("Deployment", deployment)["spec"]["template"]["spec"]["containers"]
    return only


def ports(deployment: str) -> dict[str, int]:
    return {port["name"]: port["containerPort"] for port in container(deployment)["ports"]}


def config_map() -> dict[str, str]:
    data: dict[str, str] = resource("ConfigMap", "scoreboard")["data"]
    return data


def test_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    on_disk = {path.name for path in MANIFESTS.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == on_disk


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_resource_is_valid_strictly(version: str):
    kinds = set()
    for each in resources():
        kubernetes_validate.validate(each, version, strict=True)
        kinds.add(each["kind"])
    assert kinds == {"ConfigMap", "Deployment", "Service", "PodDisruptionBudget"}


@pytest.mark.parametrize(
    "spoil",
    [
        lambda spec: spec["containers"][0].update(livenessProbes={}),  # misspelt
        lambda spec: spec["containers"][0]["ports"][0].update(containerPort="3000"),
        lambda spec: spec.update(terminationGracePeriodSeconds="30s"),
    ],
)
def test_the_validator_refuses_a_spoilt_deployment(spoil):
    deployment = copy.deepcopy(resource("Deployment", "scoreboard-web"))
    spoil(deployment["spec"]["template"]["spec"])
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)


@pytest.mark.parametrize(("deployment", "command"), [("web", "serve"), ("worker", "worker")])
def test_both_deployments_run_the_one_image_with_their_command(deployment: str, command: str):
    spec = container(f"scoreboard-{deployment}")
    assert spec["image"] == f"scoreboard:{PYPROJECT['project']['version']}"
    program, *args = spec["command"]
    assert program == CONSOLE_COMMAND
    assert build_parser().parse_args(args).command == command
    assert {"cpu", "memory"} <= spec["resources"]["requests"].keys()


@pytest.mark.parametrize("deployment", ["scoreboard-web", "scoreboard-worker"])
def test_variables_are_declared_secrets_come_from_the_secret_and_the_settings_read(
    deployment: str,
):
    spec = container(deployment)
    assert spec["envFrom"] == [{"configMapRef": {"name": "scoreboard"}}]
    env = dict(config_map())
    for entry in spec["env"]:
        reference = entry["valueFrom"]["secretKeyRef"]
        assert (reference["name"], reference["key"]) == ("scoreboard", entry["name"])
        env[entry["name"]] = SECRET_VALUES[entry["name"]]
    assert env.keys() <= DECLARED.keys(), env.keys() - DECLARED.keys()
    secret = {name for name, variable in DECLARED.items() if variable.secret}
    assert not secret & config_map().keys()  # no secret in a ConfigMap
    settings = Settings.from_env(env)
    assert settings.mode is Mode.DISTRIBUTED and settings.keeps_ledger


def test_web_probes_ask_the_routes_on_the_ports_that_serve_them():
    spec = container("scoreboard-web")
    named = ports("scoreboard-web")
    assert "PORT" not in config_map() and named["http"] == PORT.default
    assert named["ops"] == int(config_map()["OPS_PORT"])
    declared = {endpoint.path for endpoint in ENDPOINTS if endpoint.method == "GET"}
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        path, port = spec[probe]["httpGet"]["path"], spec[probe]["httpGet"]["port"]
        assert path in declared, probe
        # With OPS_PORT set, /readyz answers there alone; /healthz on every port.
        assert path in EVERY_PORT_ROUTES or (path in OPS_ROUTES and port == "ops"), probe
    assert spec["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert spec["readinessProbe"]["httpGet"]["path"] == "/readyz"


async def test_worker_probes_ask_its_port_for_routes_it_serves():
    spec = container("scoreboard-worker")
    assert ports("scoreboard-worker") == {"metrics": METRICS_PORT.default}
    probes = {spec[probe]["httpGet"]["path"] for probe in ("livenessProbe", "readinessProbe")}
    assert probes == {"/healthz", "/readyz"}
    assert {spec[p]["httpGet"]["port"] for p in ("livenessProbe", "readinessProbe")} == {"metrics"}
    port = free_port()
    ready = WorkerReadinessProbe(
        ReadinessProbe(None, None, lambda: None, None), lambda: True, lambda: "consuming"
    )
    server = WorkerPort(Metrics(), ready, port, None)
    await server.start()
    try:
        async with aiohttp.ClientSession(trust_env=False) as session:
            for path in probes:
                async with session.get(f"http://127.0.0.1:{port}{path}") as response:
                    assert response.status == 200, path
    finally:
        await server.stop()


def test_the_grace_period_covers_the_endpoint_removal_and_each_process_shutdown():
    web = resource("Deployment", "scoreboard-web")["spec"]["template"]["spec"]
    pre_stop = container("scoreboard-web")["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pre_stop >= 5  # endpoint removal reaches kube-proxy and the ingress meanwhile
    assert web["terminationGracePeriodSeconds"] >= pre_stop + SHUTDOWN_TIMEOUT_SECONDS + 5
    worker = resource("Deployment", "scoreboard-worker")["spec"]["template"]["spec"]
    assert worker["terminationGracePeriodSeconds"] >= DRAIN_TIMEOUT_SECONDS + 5
    rollout = resource("Deployment", "scoreboard-web")["spec"]["strategy"]["rollingUpdate"]
    assert rollout["maxUnavailable"] == 0


@pytest.mark.parametrize("deployment", ["scoreboard-web", "scoreboard-worker"])
def test_pods_run_as_the_image_user_without_privileges(deployment: str):
    pod = resource("Deployment", deployment)["spec"]["template"]["spec"]
    image_user = DockerfileParser(str(PROJECT_ROOT / "Dockerfile")).structure
    [user] = [each["value"] for each in image_user if each["instruction"] == "USER"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == int(user)
    hardening = container(deployment)["securityContext"]
    assert hardening["allowPrivilegeEscalation"] is False
    assert hardening["capabilities"]["drop"] == ["ALL"]


def test_the_service_exposes_the_web_port_alone_with_sticky_sessions():
    service = resource("Service", "scoreboard-web")["spec"]
    web = resource("Deployment", "scoreboard-web")
    assert service["selector"] == web["spec"]["template"]["metadata"]["labels"]
    assert [port["targetPort"] for port in service["ports"]] == ["http"]
    assert "http" in ports("scoreboard-web")
    assert service["sessionAffinity"] == "ClientIP"


@pytest.mark.parametrize("deployment", ["scoreboard-web", "scoreboard-worker"])
def test_each_deployment_has_a_disruption_budget_that_selects_it(deployment: str):
    budget = resource("PodDisruptionBudget", deployment)["spec"]
    pods = resource("Deployment", deployment)["spec"]
    assert budget["selector"] == pods["selector"]
    assert pods["selector"]["matchLabels"].items() <= pods["template"]["metadata"]["labels"].items()
    if "minAvailable" in budget:
        assert budget["minAvailable"] < pods["replicas"]  # a drain can still proceed
