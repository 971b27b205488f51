"""The web process: read settings, announce the mode, serve until SIGTERM."""

from __future__ import annotations

import logging
import sys

from aiohttp import web

from scoreboard.auth import issue_token
from scoreboard.config import Mode, Settings
from scoreboard.errors import ConfigError
from scoreboard.logs import configure_logging
from scoreboard.web.app import create_app

log = logging.getLogger("scoreboard.web")

DEMO_USER = "demo"
DEMO_TOKEN_TTL_SECONDS = 24 * 60 * 60


def main() -> None:
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        sys.exit(f"configuration error: {exc}")
    configure_logging(settings.log_level)
    if settings.mode is Mode.SINGLE_PROCESS:
        log.info(
            "single-process mode: no REDIS_URL/RABBITMQ_URL, so the queue, the board and the "
            "worker live in this process and nothing survives a restart"
        )
        if settings.jwt_secret_generated:
            token = issue_token(
                settings.jwt_secret.value, DEMO_USER, "Demo Player", DEMO_TOKEN_TTL_SECONDS
            )
            log.info(
                "JWT_SECRET not set: generated one for this run; demo token for user %r: %s",
                DEMO_USER,
                token,
            )
    else:
        log.info(
            "distributed mode: queue %r on RabbitMQ, board under %r on Redis",
            settings.queue_name,
            settings.redis_key_prefix,
        )
    web.run_app(create_app(settings), port=settings.port, print=None, access_log=None)
