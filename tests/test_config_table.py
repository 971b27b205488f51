"""docs/configuration.md is what `python -m scoreboard config-table` prints, and README links it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from scoreboard.commands.config_table import COMMAND
from scoreboard.config import VARIABLES
from tests.processes import PROJECT_ROOT, process_env

PAGE = PROJECT_ROOT / "docs" / "configuration.md"
README = PROJECT_ROOT / "README.md"
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#([^)\s]+))?\)")


def config_table(env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "scoreboard", "config-table"],
        cwd=PROJECT_ROOT,
        env=process_env(env),
        capture_output=True,
        timeout=30,
        check=False,
    )


def test_the_page_is_what_the_command_prints():
    printed = config_table({})
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.decode() == PAGE.read_text(encoding="utf-8"), (
        f"docs/configuration.md is out of date: run `{COMMAND}`"
    )


def test_the_command_needs_no_valid_configuration():
    printed = config_table({"PORT": "http", "REDIS_URL": "redis://localhost"})
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.decode() == PAGE.read_text(encoding="utf-8")


def test_the_page_has_a_row_for_every_declared_variable_in_order():
    rows = [
        line.split(" | ")[0] for line in PAGE.read_text().splitlines() if line.startswith("| `")
    ]
    assert rows == [f"| `{variable.name}`" for variable in VARIABLES]


def test_the_readme_links_the_page_instead_of_repeating_the_table():
    readme = README.read_text(encoding="utf-8")
    assert "](docs/configuration.md)" in readme
    repeated = [variable.name for variable in VARIABLES if f"| `{variable.name}` |" in readme]
    assert repeated == []


def headings(path: Path) -> set[str]:
    """The anchors GitHub gives the Markdown headings of `path` (outside code blocks)."""
    anchors, fenced = set(), False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (heading := re.match(r"#{1,6} (.+)", line)):
            anchors.add(re.sub(r"[^\w\- ]", "", heading[1].strip().lower()).replace(" ", "-"))
    return anchors


@pytest.mark.parametrize(
    ("target", "anchor"), sorted(set(_LINK.findall(PAGE.read_text(encoding="utf-8"))))
)
def test_every_link_of_the_page_leads_somewhere(target: str, anchor: str):
    linked = (PAGE.parent / target).resolve()
    assert linked.is_file(), target
    assert not anchor or anchor in headings(linked), f"{target}#{anchor}"
