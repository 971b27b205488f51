"""The libraries the pages load are the pinned npm packages' own files (see static/VENDORED.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scoreboard.web.static_files import STATIC_FILES
from tests.processes import PROJECT_ROOT

STATIC_DIR = PROJECT_ROOT / "scoreboard" / "web" / "static"
MANIFEST: dict[str, dict[str, Any]] = json.loads((STATIC_DIR / "VENDORED.json").read_text())
# Written for this project; everything else served is vendored.
OWN_FILES = {"page.js", "page.css", "favicon.svg", "api-docs.js", "scoreboard-client.js"}


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_each_vendored_package_is_the_version_its_lock_pins_and_installed(name: str) -> None:
    entry = MANIFEST[name]
    folder = PROJECT_ROOT / entry["installedIn"]
    locked = read_json(folder / "package-lock.json")["packages"][f"node_modules/{name}"]
    assert locked["version"] == entry["version"], f"run ./scripts/vendor-static ({name})"
    installed = folder / "node_modules" / name / "package.json"
    assert installed.is_file(), f"run `npm ci --prefix {entry['installedIn']}`"
    assert read_json(installed)["version"] == entry["version"], f"run `npm ci` in {folder}"
    assert read_json(installed)["license"] == entry["license"]


@pytest.mark.parametrize(
    ("name", "copy", "source"),
    [
        (name, copy, source)
        for name, entry in MANIFEST.items()
        for copy, source in entry["files"].items()
    ],
)
def test_each_vendored_file_is_the_packages_file_unchanged(
    name: str, copy: str, source: str
) -> None:
    package = PROJECT_ROOT / MANIFEST[name]["installedIn"] / "node_modules" / name
    assert (STATIC_DIR / copy).read_bytes() == (package / source).read_bytes(), (
        f"{copy} differs from {name}/{source}: run ./scripts/vendor-static"
    )


def test_every_served_file_is_ours_or_vendored_with_its_licence() -> None:
    vendored = {copy for entry in MANIFEST.values() for copy in entry["files"]}
    assert set(STATIC_FILES) - OWN_FILES <= vendored
    for name, entry in MANIFEST.items():
        assert f"licenses/{name}/LICENSE" in entry["files"], name
    note = (STATIC_DIR / "VENDORED.md").read_text()
    for name, entry in MANIFEST.items():
        assert f"{name} ({entry['license']})" in note


def test_the_served_client_is_clients_js_index_js_unchanged() -> None:
    served = (STATIC_DIR / "scoreboard-client.js").read_bytes()
    assert served == (PROJECT_ROOT / "clients" / "js" / "index.js").read_bytes(), (
        "run ./scripts/vendor-static"
    )
