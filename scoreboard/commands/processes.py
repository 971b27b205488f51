"""`serve` and `worker`: the two long-running processes (the Procfile's server.py and worker.py)."""

from __future__ import annotations

import argparse

from scoreboard.web import process as web_process
from scoreboard.worker import process as worker_process


def add_parsers(commands: argparse._SubParsersAction) -> None:
    # Each process reads its settings and sets up its logs itself, as server.py and worker.py do.
    commands.add_parser(
        "serve", help="run a web node: REST API, Socket.IO and the live page on PORT"
    ).set_defaults(run=run_serve, reads_settings=False)
    commands.add_parser(
        "worker", help="run a worker: apply queued updates from RabbitMQ to Redis"
    ).set_defaults(run=run_worker, reads_settings=False)


def run_serve(args: argparse.Namespace) -> int:
    web_process.main()
    return 0


def run_worker(args: argparse.Namespace) -> int:
    worker_process.main()
    return 0
