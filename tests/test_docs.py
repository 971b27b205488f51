"""The docs hold together: every link lands inside the repository, and the metrics table names
exactly the metrics the code registers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scoreboard.ops.metrics import WebMetrics

ROOT = Path(__file__).parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def _slug(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    return {_slug(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_link_lands_on_a_file_and_heading_of_the_repository(page: Path):
    for target in LINK.findall(FENCE.sub("", page.read_text())):
        assert not re.match(r"[a-z]+:", target), f"{page.name}: {target} leaves the repository"
        path, _, anchor = target.partition("#")
        landing = (page.parent / path).resolve() if path else page
        assert landing.is_relative_to(ROOT), f"{page.name}: {target} leaves the repository"
        assert landing.exists(), f"{page.name}: {target} does not exist"
        if anchor and landing.suffix == ".md":
            assert anchor in _anchors(landing), f"{page.name}: no heading for {target}"


def test_the_metrics_table_names_every_metric_and_only_those():
    metrics = WebMetrics(lambda: 0)
    metrics.count_dead_letters(lambda: 0)
    metrics.count_socket_messages(lambda: {})
    metrics.watch_fan_out(lambda: True, lambda: {})
    registered = {
        family.name.removesuffix("_total")
        for family in metrics.registry.collect()
        if family.name.startswith("scoreboard_")
    }
    table = (ROOT / "docs" / "operations.md").read_text()
    documented = {
        name.removesuffix("_total")
        for name in re.findall(r"^\| `(scoreboard_[a-z_]+)[{`]", table, re.M)
    }
    assert documented == registered
