"""The web process: read settings, announce the mode, serve until SIGTERM."""

from __future__ import annotations

import logging
import os
import ssl
import sys

from scoreboard.config import Mode, Settings
from scoreboard.errors import ConfigError, QueueLayoutConflict
from scoreboard.ops.logs import configure_logging
from scoreboard.web.app import create_app
from scoreboard.web.demo import DEMO_USER
from scoreboard.web.keys import DEMO_TOKEN
from scoreboard.web.serving import serve

log = logging.getLogger("scoreboard.web")


def main() -> None:
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        sys.exit(f"configuration error: {exc}")
    configure_logging(settings.log_level, settings.log_format)
    try:
        ssl_context = tls_context(settings)
    except ConfigError as exc:
        sys.exit(f"configuration error: {exc}")
    app = create_app(settings)
    if settings.mode is Mode.SINGLE_PROCESS:
        log.info(
            "single-process mode: no REDIS_URL/RABBITMQ_URL, so the queue, the board and the "
            "worker live in this process and nothing survives a restart"
        )
        # The same token the live page offers (GET /api/demo).
        token = app.get(DEMO_TOKEN)
        if token is not None:
            log.info(
                "JWT_SECRET not set: generated one for this run; demo token for user %r: %s",
                DEMO_USER,
                token,
            )
    else:
        log.info(
            "distributed mode: %s queue %r on RabbitMQ, board under %r on Redis",
            settings.queue_type,
            settings.queue_name,
            settings.redis_key_prefix,
        )
    if ssl_context is not None:
        log.info("serving HTTPS with the certificate in %s", settings.tls_cert_file)
    try:
        serve(app, settings, ssl_context)
    except QueueLayoutConflict as exc:
        log.critical("web node stopping: %s", exc)
        sys.exit(os.EX_CONFIG)


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The context for serving HTTPS from TLS_CERT_FILE and TLS_KEY_FILE; None for plain HTTP."""
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    for name, path in (
        ("TLS_CERT_FILE", settings.tls_cert_file),
        ("TLS_KEY_FILE", settings.tls_key_file),
    ):
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise ConfigError(f"{name} {path!r} cannot be read: {exc.strerror}") from None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        # An empty password makes an encrypted key fail here instead of prompting on a terminal.
        context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file, password="")
    except ssl.SSLError as exc:
        raise ConfigError(
            "TLS_CERT_FILE and TLS_KEY_FILE must hold a PEM certificate and its unencrypted "
            f"private key: {exc.reason or exc}"
        ) from None
    return context
