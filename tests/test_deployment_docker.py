"""The Dockerfile, read statically (no container engine runs here): two stages on the Python
deployed elsewhere, a non-root user, the real ports, commands and health check."""

from __future__ import annotations

import fnmatch
import json
import shlex
import tomllib
from pathlib import Path
from typing import Any

from dockerfile_parse import DockerfileParser

from scoreboard.commands.cli import CONSOLE_COMMAND, build_parser
from scoreboard.commands.healthcheck import health_urls
from scoreboard.config import Settings
from scoreboard.config.variables import METRICS_PORT, PORT

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
VENV = "/opt/scoreboard"


def instructions() -> list[dict[str, Any]]:
    parsed = DockerfileParser(str(PROJECT_ROOT / "Dockerfile"))
    return [each for each in parsed.structure if each["instruction"] != "COMMENT"]


def stages() -> list[list[dict[str, Any]]]:
    """The instructions of each stage, its FROM first."""
    found: list[list[dict[str, Any]]] = []
    for instruction in instructions():
        if instruction["instruction"] == "FROM":
            found.append([])
        assert found, "an instruction before the first FROM"
        found[-1].append(instruction)
    return found


def final_stage(kind: str) -> list[str]:
    return [each["value"] for each in stages()[-1] if each["instruction"] == kind]


def exec_form(value: str) -> list[str]:
    """The argv of a CMD or HEALTHCHECK written in exec form (a JSON array)."""
    argv = json.loads(value[value.index("[") :])
    assert isinstance(argv, list) and all(isinstance(word, str) for word in argv)
    return argv


def test_two_stages_on_the_python_version_deployed():
    python = (PROJECT_ROOT / ".python-version").read_text().strip()
    built = stages()
    assert len(built) == 2
    build_from = built[0][0]["value"].split()
    assert build_from == [f"python:{python}-slim", "AS", "build"]
    assert built[1][0]["value"] == f"python:{python}-slim"
    copied = [each["value"] for each in built[1] if each["instruction"] == "COPY"]
    assert copied == [f"--from=build {VENV} {VENV}"]  # only the environment moves on


def test_the_build_installs_the_hashed_lock_then_the_wheel_alone():
    runs = " && ".join(each["value"] for each in stages()[0] if each["instruction"] == "RUN")
    steps = [shlex.split(step) for step in runs.split("&&")]
    assert ["python", "-m", "venv", VENV] in steps
    pip = f"{VENV}/bin/pip"
    assert [pip, "install", "--require-hashes", "-r", "requirements.txt"] in steps
    assert [pip, "wheel", "--no-deps", "--wheel-dir", "/wheels", "."] in steps
    assert [pip, "install", "--no-deps", "/wheels/scoreboard-*.whl"] in steps


def test_the_build_copies_what_the_wheel_needs_and_dockerignore_keeps_it():
    ignored = [
        line.strip()
        for line in (PROJECT_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sources = set()
    for each in stages()[0]:
        if each["instruction"] == "COPY":
            *copied, _destination = each["value"].split()
            sources.update(copied)
    needed = {"requirements.txt", "pyproject.toml", PYPROJECT["project"]["readme"], "scoreboard"}
    assert sources == needed
    for source in sources:
        assert (PROJECT_ROOT / source).exists(), source
        assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), source
    assert {".venv", ".git", "tests"} <= set(ignored)


def test_the_image_runs_as_a_numeric_user_other_than_root():
    [user] = final_stage("USER")
    assert user.isdigit() and int(user) != 0
    [add_user] = [value for value in final_stage("RUN") if "useradd" in value]
    assert f"--uid {user}" in add_user


def test_the_console_command_is_on_the_path():
    [env] = final_stage("ENV")
    path = dict(word.split("=", 1) for word in shlex.split(env))["PATH"]
    assert path.split(":")[0] == f"{VENV}/bin"
    assert CONSOLE_COMMAND in PYPROJECT["project"]["scripts"]


def test_the_default_command_serves_and_the_worker_is_a_subcommand_of_it():
    [cmd] = final_stage("CMD")
    command, *args = exec_form(cmd)
    assert command == CONSOLE_COMMAND
    assert build_parser().parse_args(args).command == "serve"
    assert build_parser().parse_args(["worker"]).command == "worker"


def test_exposed_ports_are_the_default_web_and_worker_ports():
    [exposed] = final_stage("EXPOSE")
    assert {int(port) for port in exposed.split()} == {PORT.default, METRICS_PORT.default}


def test_the_health_check_asks_healthz_on_the_exposed_ports():
    [check] = final_stage("HEALTHCHECK")
    options = check[: check.index("CMD")].split()
    assert {option.split("=")[0] for option in options} >= {"--interval", "--timeout"}
    command, *args = exec_form(check)
    assert command == CONSOLE_COMMAND
    assert build_parser().parse_args(args).command == "healthcheck"
    # tests/test_cli.py runs the command against a real web node and a real worker.
    assert health_urls(Settings()) == [
        f"http://127.0.0.1:{PORT.default}/healthz",
        f"http://127.0.0.1:{METRICS_PORT.default}/healthz",
    ]
