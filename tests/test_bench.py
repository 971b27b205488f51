"""The benchmark tool runs end to end and ends its output with one JSON line."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import DATABASE_URL, REDIS_URL
from tests.processes import PROJECT_ROOT


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
