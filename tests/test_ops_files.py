"""The Grafana dashboard and the Prometheus alerts: well-formed, and about metrics that exist."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.conftest import TokenFactory, bearer
from tests.processes import Processes, free_port, service_processes
from tests.scrape import Scrape, eventually

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = PROJECT_ROOT / "ops" / "grafana" / "scoreboard.json"
ALERTS = PROJECT_ROOT / "ops" / "prometheus" / "alerts.yml"
REQUIRED_METRICS = {
    "scoreboard_http_requests_total",
    "scoreboard_http_request_duration_seconds_bucket",
    "scoreboard_updates_accepted_total",
    "scoreboard_updates_applied_total",
    "scoreboard_update_apply_lag_seconds_bucket",
    "scoreboard_broadcast_lag_seconds_bucket",
    "scoreboard_queue_depth",
    "scoreboard_socketio_clients",
    "scoreboard_rate_limited_total",
    "scoreboard_updates_dead_lettered_total",
    "scoreboard_workers_alive",
}
EXPECTED_ALERTS = {
    "ScoreboardQueueBackingUp",
    "ScoreboardApplyLagHigh",
    "ScoreboardDeadLettersPresent",
    "ScoreboardDeadLettersGrowing",
    "ScoreboardHighErrorRate",
    "ScoreboardNoWorker",
    "ScoreboardDependencyDown",
}
PROMQL_WORDS = {
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
}
DURATION = re.compile(r"[0-9]+(ms|s|m|h|d|w|y)")


def metric_names(expr: str) -> set[str]:
    """Every metric a PromQL expression selects (functions, keywords and labels left out)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range and subquery durations
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)  # grouping labels
    names = set()
    for match in re.finditer(r"(?<![A-Za-z0-9_:.$])[A-Za-z_:][A-Za-z0-9_:]*", expr):
        word = match.group()
        is_function = expr[match.end() :].lstrip().startswith("(")
        if not is_function and word not in PROMQL_WORDS:
            names.add(word)
    return names


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        target["expr"]
        for panel in dashboard["panels"]
        if panel["type"] != "row"
        for target in panel["targets"]
    ]


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    with service_processes(tmp_path) as running:
        yield running


@pytest.fixture
async def exported(api, processes: Processes, env, make_token: TokenFactory) -> set[str]:
    """Metric names a web node and a worker export after an update went through both."""
    port = free_port()
    processes.start_worker({**env, "METRICS_PORT": str(port)})
    response = await api.post(
        "/api/score/update",
        json={"userId": "alice", "scoreIncrement": 1},
        headers=bearer(make_token("alice")),
    )
    assert response.status == 200
    async with aiohttp.ClientSession() as session:

        async def worker_page() -> Scrape:
            async with session.get(f"http://127.0.0.1:{port}/metrics") as page:
                return Scrape.parse(await page.text())

        async def applied() -> bool:
            return (await worker_page()).value(
                "scoreboard_updates_applied_total", board="global"
            ) == 1

        await eventually(applied, "the update applied")
        worker = await worker_page()
    web = Scrape.parse(await (await api.get("/metrics")).text())
    return web.names() | worker.names()


def test_metric_names_are_found_in_promql():
    expr = (
        "histogram_quantile(0.95, sum by (le, route) "
        '(rate(a_bucket{route="/x"}[$__rate_interval]))) / on (job) group_left max (b) > bool 3'
        " unless c offset 5m and 1e3 < d"
    )
    assert metric_names(expr) == {"a_bucket", "b", "c", "d"}


def test_the_dashboard_is_a_grafana_dashboard_of_timeseries_and_stats():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "scoreboard"
    assert dashboard["templating"]["list"][0]["type"] == "datasource"
    panels = dashboard["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert {"h", "w", "x", "y"} <= panel["gridPos"].keys()
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        if panel["type"] == "row":
            continue
        assert panel["type"] in {"timeseries", "stat"}, panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}"
        assert panel["targets"], panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids))


def test_the_alert_rules_have_the_structure_prometheus_expects():
    document = yaml.safe_load(ALERTS.read_text())
    assert [group["name"] for group in document["groups"]] == ["scoreboard"]
    rules = alert_rules()
    assert EXPECTED_ALERTS <= {rule["alert"] for rule in rules}
    for rule in rules:
        assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert isinstance(rule["expr"], str) and rule["expr"].strip()
        assert DURATION.fullmatch(rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert isinstance(rule["annotations"]["summary"], str)
        assert metric_names(rule["expr"]), rule["alert"]


async def test_dashboard_and_alerts_name_only_metrics_the_service_exports(exported: set[str]):
    assert REQUIRED_METRICS <= exported
    used_by_dashboard = set().union(*(metric_names(expr) for expr in dashboard_exprs()))
    assert used_by_dashboard - exported == set()
    assert REQUIRED_METRICS <= used_by_dashboard
    used_by_alerts = set().union(*(metric_names(rule["expr"]) for rule in alert_rules()))
    assert used_by_alerts - exported == set()
