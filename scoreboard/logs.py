"""Logging to stdout, one line per event."""

from __future__ import annotations

import logging
import sys


def configure_logging(level: str) -> None:
    logging.basicConfig(
        stream=sys.stdout,
        level=level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        force=True,
    )
    # aio-pika and engineio are chatty at INFO; their warnings still show.
    for name in ("aio_pika", "aiormq", "engineio.server", "socketio.server"):
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))
