"""The package: the lock satisfies pyproject.toml, and the wheel, installed from the lock into a
fresh virtual environment, runs the whole service away from the checkout."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from scoreboard.intake.auth import TokenVerifier
from tests.conftest import JWT_SECRET
from tests.processes import WebProcess, free_port, process_env
from tests.test_cli import BACKEND, SUBCOMMANDS

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
# Building the wheel, then installing the lock into a new environment, takes a while.
INSTALL_TIMEOUT_SECONDS = 600


def locked(path: Path) -> dict[NormalizedName, tuple[Requirement, list[str]]]:
    """Each requirement of a requirements file, with the hashes given for it."""
    text = re.sub(r"\\\n", " ", path.read_text())  # continuation lines
    found = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        spec, *options = re.split(r"\s+--", line.split(" #")[0].strip())
        requirement = Requirement(spec)
        hashes = [option.removeprefix("hash=") for option in options if option.startswith("hash=")]
        found[canonicalize_name(requirement.name)] = (requirement, hashes)
    return found


def pinned_version(requirement: Requirement) -> Version:
    [specifier] = requirement.specifier
    assert specifier.operator == "==", f"{requirement} is not pinned with =="
    return Version(specifier.version)


def declared_dependencies() -> list[Requirement]:
    return [Requirement(text) for text in PYPROJECT["project"]["dependencies"]]


def test_every_declared_dependency_is_pinned_in_the_lock_within_its_range():
    lock = locked(PROJECT_ROOT / "requirements.txt")
    for dependency in declared_dependencies():
        name = canonicalize_name(dependency.name)
        assert name in lock, f"{dependency.name} is not in requirements.txt"
        version = pinned_version(lock[name][0])
        assert dependency.specifier.contains(version, prereleases=True), (
            f"requirements.txt pins {dependency.name} {version}, outside {dependency.specifier}"
        )


def test_every_locked_package_is_pinned_with_hashes():
    lock = locked(PROJECT_ROOT / "requirements.txt")
    assert len(lock) >= len(declared_dependencies())
    for name, (requirement, hashes) in lock.items():
        pinned_version(requirement)
        assert hashes and all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), name


def test_the_lock_parser_reads_pins_hashes_and_comments(tmp_path: Path):
    lock = tmp_path / "requirements.txt"
    lock.write_text(
        "# header\nfoo-bar==1.2.3 \\\n    --hash=sha256:" + "a" * 64 + "\n    # via x\nBaz>=2\n"
    )
    found = locked(lock)
    assert set(found) == {"foo-bar", "baz"}
    assert pinned_version(found["foo-bar"][0]) == Version("1.2.3")
    assert found["foo-bar"][1] == ["sha256:" + "a" * 64]
    with pytest.raises(AssertionError):
        pinned_version(found["baz"][0])


def test_tools_pin_the_runtime_packages_they_share_with_the_lock_alike():
    runtime = locked(PROJECT_ROOT / "requirements.txt")
    tools = locked(PROJECT_ROOT / "requirements-dev.txt")
    for name in runtime.keys() & tools.keys():
        assert pinned_version(tools[name][0]) == pinned_version(runtime[name][0]), name


def test_the_python_version_deployed_is_one_the_package_accepts():
    deployed = (PROJECT_ROOT / ".python-version").read_text().strip()
    requires = Requirement(f"python{PYPROJECT['project']['requires-python']}").specifier
    assert re.fullmatch(r"3\.\d+", deployed)
    assert requires.contains(Version(deployed))


def project_files() -> list[str]:
    """Files a fresh clone would have (tracked, or new and not ignored), relative to the root."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return sorted(name for name in listed.split("\0") if name and (PROJECT_ROOT / name).is_file())


def run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        argv,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_SECONDS,
        check=False,
    )
    assert result.returncode == 0, f"{argv} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path
    outside: Path  # a directory away from the checkout, to run the commands in

    @property
    def command(self) -> str:
        return str(self.venv / "bin" / "scoreboard")

    def env(self, **extra: str) -> dict[str, str]:
        # Nothing may lead Python back to the checkout.
        return process_env(extra, remove={*BACKEND, "PYTHONPATH", "VIRTUAL_ENV"})


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    root = tmp_path_factory.mktemp("package")
    source = root / "clone"
    for name in project_files():
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT_ROOT / name, target)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    run([*pip, "wheel", ".", "--no-deps", "-w", str(root / "dist")], cwd=source)
    [wheel] = (root / "dist").glob("scoreboard-*.whl")
    venv = root / "venv"
    run([sys.executable, "-m", "venv", str(venv)], cwd=root)
    venv_pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    run([*venv_pip, "install", "-r", str(source / "requirements.txt")], cwd=root)
    run([*venv_pip, "install", "--no-deps", str(wheel)], cwd=root)
    run([*venv_pip, "check"], cwd=root)
    outside = root / "elsewhere"
    outside.mkdir()
    yield Installed(wheel, venv, outside)


@pytest.mark.timeout(INSTALL_TIMEOUT_SECONDS)
def test_the_wheel_holds_the_package_and_every_file_in_it_and_nothing_else(installed: Installed):
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
    packaged = {name for name in names if not name.split("/")[0].endswith(".dist-info")}
    expected = {name for name in project_files() if name.startswith("scoreboard/")}
    assert packaged == expected
    assert any(name.endswith(".lua") for name in packaged)
    assert any(name.endswith(".sql") for name in packaged)


@pytest.mark.timeout(INSTALL_TIMEOUT_SECONDS)
def test_the_installed_command_lists_its_subcommands(installed: Installed):
    shown = run([installed.command, "--help"], cwd=installed.outside, env=installed.env())
    assert shown.startswith("usage: scoreboard ")
    for command in SUBCOMMANDS:
        assert re.search(rf"^\s+{re.escape(command)}\b", shown, re.MULTILINE), command


@pytest.mark.timeout(INSTALL_TIMEOUT_SECONDS)
def test_the_installed_command_prints_a_token_the_service_accepts(installed: Installed):
    token = run(
        [installed.command, "token", "--sub", "alice", "--name", "Alice"],
        cwd=installed.outside,
        env=installed.env(JWT_SECRET=JWT_SECRET),
    ).strip()
    identity = TokenVerifier(JWT_SECRET).verify(token)
    assert (identity.subject, identity.username) == ("alice", "Alice")


RESOURCES_SNIPPET = """
import hashlib, json, scoreboard
from importlib import resources

def walk(folder, prefix):
    for entry in folder.iterdir():
        name = prefix + entry.name
        if entry.is_dir():
            if entry.name != "__pycache__":
                yield from walk(entry, name + "/")
        elif not entry.name.endswith((".py", ".pyc")):
            yield name, hashlib.sha256(entry.read_bytes()).hexdigest()

print(json.dumps({"file": scoreboard.__file__,
                  "resources": dict(walk(resources.files("scoreboard"), "scoreboard/"))}))
"""


@pytest.mark.timeout(INSTALL_TIMEOUT_SECONDS)
def test_the_installed_package_reads_its_lua_sql_and_page_files_from_itself(
    installed: Installed,
):
    python = str(installed.venv / "bin" / "python")
    found = json.loads(
        run([python, "-c", RESOURCES_SNIPPET], cwd=installed.outside, env=installed.env())
    )
    assert Path(found["file"]).is_relative_to(installed.venv)
    expected = {
        name: hashlib.sha256((PROJECT_ROOT / name).read_bytes()).hexdigest()
        for name in project_files()
        if name.startswith("scoreboard/") and not name.endswith(".py")
    }
    assert found["resources"] == expected


@pytest.mark.timeout(INSTALL_TIMEOUT_SECONDS)
def test_the_installed_command_migrates_a_ledger(installed: Installed, database_url: str):
    migrations = sorted((PROJECT_ROOT / "scoreboard").rglob("migrations/*.sql"))
    printed = run(
        [installed.command, "migrate"],
        cwd=installed.outside,
        env=installed.env(DATABASE_URL=database_url),
    )
    assert printed.splitlines()[0] == f"applied {len(migrations)} migration(s)"


@pytest.mark.timeout(INSTALL_TIMEOUT_SECONDS)
def test_the_installed_command_serves_the_live_page(installed: Installed, tmp_path: Path):
    import urllib.request

    env = installed.env(PORT=str(free_port()))
    web = WebProcess(
        "installed", env, tmp_path / "web.log", [installed.command, "serve"], installed.outside
    )
    try:
        web.wait_until_healthy()
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"{web.url}/static/page.js", timeout=5) as response:
            served = response.read()
    finally:
        finished = web.stop()
    assert served == (PROJECT_ROOT / "scoreboard" / "web" / "static" / "page.js").read_bytes()
    assert finished.returncode == 0, finished.output
