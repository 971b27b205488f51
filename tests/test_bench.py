"""The benchmark tool runs end to end and ends its output with one JSON line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from bench.sightings import Sighting, Sightings, first_sighting, last_arrival
from bench.viewers import Viewer
from tests.conftest import DATABASE_URL, JWT_SECRET, REDIS_URL
from tests.processes import PROJECT_ROOT, Processes, free_port
from tests.scrape import scrape_url


def test_rebuild_benchmark_reports_its_figures_and_cleans_up():
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "rebuild",
            "--rows",
            "1500",
            "--users",
            "40",
            "--database-url",
            DATABASE_URL,
            "--redis-url",
            REDIS_URL,
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    figures = json.loads(completed.stdout.strip().splitlines()[-1])
    assert figures["ledger_rows"] == 1500
    assert figures["users"] == 40
    assert figures["rebuild_seconds"] > 0


def run_load(*arguments: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench", "load", *arguments],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_load_tool_reports_exact_scores_latency_and_freshness(tmp_path, env):
    env = {**env, "RATE_LIMIT": "1000000/minute"}
    with Processes(tmp_path) as processes:
        [web] = processes.start_distributed(env)
        completed = run_load(
            *("--url", web.url, "--clients", "20", "--rate", "100", "--duration", "3"),
            *("--users", "5", "--client-processes", "2", "--sender-processes", "1"),
            *("--jwt-secret", JWT_SECRET, "--redis-url", REDIS_URL),
            *("--redis-key-prefix", env["REDIS_KEY_PREFIX"], "--server-pid", str(web.pid)),
        )
        refused = run_load("--url", web.url, "--duration", "1", "--jwt-secret", "x" * 40)
    assert completed.returncode == 0, completed.stderr
    figures = json.loads(completed.stdout.strip().splitlines()[-1])
    assert figures["sent"] == 300
    assert figures["accepted"] == figures["sent"]
    assert figures["statuses"] == {"200": 300}
    assert figures["exact"] is True
    assert figures["score_mismatches"] == 0
    assert figures["exact_checked_users"] == 5
    assert figures["clients_connected"] == 20
    assert figures["freshness_ms"]["samples"] > 0
    everyone = figures["freshness_all_clients_ms"]
    assert everyone["samples"] > 0
    assert 0 <= everyone["p50"] <= everyone["p99"] <= everyone["max"]
    assert figures["messages_per_second"] > 0
    latency = figures["post_latency_ms"]
    assert 0 <= latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]
    assert figures["server_rss_kib"]["after_connect"] > 0
    assert figures["server_cpu_percent"] is not None
    assert refused.returncode != 0
    assert "Authentication failed" in refused.stderr


def test_load_tool_spreads_updates_and_clients_over_boards(tmp_path, env):
    env = {**env, "RATE_LIMIT": "1000000/minute"}
    with Processes(tmp_path) as processes:
        [web] = processes.start_distributed(env)
        completed = run_load(
            *("--url", web.url, "--boards", "3", "--clients", "12", "--rate", "60"),
            *("--duration", "2", "--users", "6", "--client-processes", "2"),
            *("--jwt-secret", JWT_SECRET, "--redis-url", REDIS_URL),
            *("--redis-key-prefix", env["REDIS_KEY_PREFIX"]),
        )
    assert completed.returncode == 0, completed.stderr
    figures = json.loads(completed.stdout.strip().splitlines()[-1])
    assert figures["boards"] == 3
    assert figures["statuses"] == {"200": 120}
    assert figures["exact"] is True
    assert figures["exact_checked_users"] == 6  # each user on its one board
    assert figures["freshness_ms"]["samples"] > 0
    assert figures["freshness_all_clients_ms"]["samples"] > 0
    assert figures["foreign_pushes"] == 0
    assert figures["clients_current"] == 12


def test_load_tool_places_each_boards_clients_on_one_of_several_web_nodes(tmp_path, env):
    env = {**env, "RATE_LIMIT": "1000000/minute"}
    with Processes(tmp_path) as processes:
        nodes = processes.start_distributed(env, web_nodes=2)
        completed = run_load(
            *("--url", nodes[0].url, "--boards", "2", "--clients", "8", "--rate", "40"),
            *("--client-url", nodes[0].url, "--client-url", nodes[1].url),
            *("--duration", "2", "--users", "4", "--client-processes", "2"),
            *("--jwt-secret", JWT_SECRET, "--redis-url", REDIS_URL),
            *("--redis-key-prefix", env["REDIS_KEY_PREFIX"]),
        )
        heard = [scrape_url(f"{node.url}/metrics") for node in nodes]
    assert completed.returncode == 0, completed.stderr
    figures = json.loads(completed.stdout.strip().splitlines()[-1])
    assert figures["exact"] is True
    assert figures["clients_current"] == 8
    # Board b0's clients are all on the first node, b1's on the second: each node hears its own.
    received = "scoreboard_pushes_received_total"
    assert [scrape.label_values(received, "board") for scrape in heard] == [{"b0"}, {"b1"}]


def test_a_client_counts_pushes_of_a_board_it_does_not_hold():
    viewer = Viewer(Sightings(["alice"]), "b1")
    viewer.on_event(leaderboard_packet(1, 5, "b1"), at=1.0)
    viewer.on_event(leaderboard_packet(1, 5, "b2"), at=2.0)
    viewer.on_event(leaderboard_packet(2, 6), at=3.0)  # global's
    assert (viewer.events, viewer.foreign, viewer.last_version) == (3, 2, 1)


def test_load_tool_says_clearly_when_the_service_is_unreachable():
    url = f"http://127.0.0.1:{free_port()}"
    completed = run_load("--url", url, "--duration", "1", "--jwt-secret", JWT_SECRET, timeout=30)
    assert completed.returncode != 0
    assert f"cannot reach {url}" in completed.stderr
    assert "Traceback" not in completed.stderr
    assert completed.stdout == ""


def test_load_tool_stops_cleanly_on_ctrl_c(tmp_path, env):
    env = {**env, "RATE_LIMIT": "1000000/minute"}
    with Processes(tmp_path) as processes:
        [web] = processes.start_distributed(env)
        tool = subprocess.Popen(
            [sys.executable, "-m", "bench", "load", "--url", web.url, "--clients", "10"],
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group, as a terminal would make it
            env={**os.environ, "JWT_SECRET": JWT_SECRET},
        )
        try:
            assert tool.stderr is not None
            for line in tool.stderr:
                if "sending" in line:
                    break
            os.killpg(tool.pid, signal.SIGINT)
            stdout, stderr = tool.communicate(timeout=20)
        finally:
            tool.kill()
    assert tool.returncode == 130
    assert "interrupted" in stderr
    assert "Traceback" not in stderr
    assert stdout == ""
    assert process_group_ends(tool.pid), "a client or sender process was left running"


def process_group_ends(group: int, timeout: float = 10.0) -> bool:
    """True once no process is left in the group (exited children may take a moment to reap)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def leaderboard_packet(version: int, score: int, board_id: str | None = None) -> bytes:
    top = [{"userId": "alice", "username": "A", "score": score}]
    payload: dict[str, object] = {"version": version, "top10": top}
    if board_id is not None:
        payload["boardId"] = board_id
    return b"42" + json.dumps(["leaderboardUpdate", payload]).encode()


def test_freshness_times_a_score_only_when_a_client_saw_exactly_that_score():
    sightings = Sightings(["alice"])
    sightings.record(leaderboard_packet(1, 5), at=10.0)
    sightings.record(leaderboard_packet(2, 9), at=30.0)
    assert first_sighting([sightings], ("global", "alice"), 5) == Sighting(10.0, 1)
    assert first_sighting([sightings], ("global", "alice"), 9) == Sighting(30.0, 2)
    # 7 was superseded before any push (or alice was outside the top 10): not timed at 30.0.
    assert first_sighting([sightings], ("global", "alice"), 7) is None


def test_freshness_keeps_each_board_apart():
    sightings = Sightings(["alice"])
    assert sightings.record(leaderboard_packet(3, 7, "b1"), at=10.0) == ("b1", 3)
    sightings.record(leaderboard_packet(1, 4), at=20.0)
    assert first_sighting([sightings], ("b1", "alice"), 7) == Sighting(10.0, 3)
    assert first_sighting([sightings], ("global", "alice"), 7) is None
    assert first_sighting([sightings], ("b2", "alice"), 4) is None
    assert last_arrival([sightings], ("b1", 3)) == (1, 10.0)
    assert last_arrival([sightings], ("global", 3)) == (0, 0.0)


def test_season_close_benchmark_closes_while_updates_flow_and_counts_each_in_its_season():
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "season-close", "--users", "2000"]
        + ["--redis-url", REDIS_URL, "--database-url", DATABASE_URL],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    figures = json.loads(completed.stdout.strip().splitlines()[-1])
    assert figures["archive"] == "postgresql" and figures["closed_season_entries"] >= 2000
    assert figures["every_update_in_its_season"] is True
