"""What clients can make libraries log becomes one WARNING line, at most one per interval.

python-engineio and python-socketio log a traceback at ERROR for every malformed packet, and
aiohttp for every body it could not decode: an unauthenticated client could fill the log and
page whoever watches ERROR lines. The line keeps the library's message and the exception's type
and text, with a count of the lines left out since the last one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from scoreboard.ops.log_throttle import LogThrottle

# Loggers whose errors a client can cause at will; aiohttp's only for the exceptions below.
CLIENT_FACING_LOGGERS = ("engineio.server", "socketio.server", "aiohttp.server")
CLIENT_CAUSED = (RequestPayloadError, HttpProcessingError)
INTERVAL_SECONDS = 10.0
MAX_DETAIL_LENGTH = 200


class ClientErrorLines(logging.Filter):
    """Turns client-caused ERROR records into rate-limited one-line WARNINGs."""

    def __init__(
        self,
        interval_seconds: float = INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._interval = interval_seconds
        self._clock = clock
        self._throttles: dict[str, LogThrottle] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR or not self._client_caused(record):
            return True
        # By call site, never by text: a message can hold what the client sent.
        key = f"{record.name}:{record.pathname}:{record.lineno}"
        if (throttle := self._throttles.get(key)) is None:
            throttle = self._throttles[key] = LogThrottle(self._interval, self._clock)
        left_out = throttle.admit()
        if left_out is None:
            return False
        line = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            line = f"{line}: {type(error).__name__}: {str(error).strip()}"
        if left_out:
            line = f"{line} ({left_out} more like it in the last {self._interval:g}s)"
        record.msg, record.args = line[:MAX_DETAIL_LENGTH].replace("\n", " "), None
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True

    @staticmethod
    def _client_caused(record: logging.LogRecord) -> bool:
        if record.name not in CLIENT_FACING_LOGGERS:
            return False
        if record.name != "aiohttp.server":
            return True
        error = record.exc_info[1] if record.exc_info else None
        return isinstance(error, CLIENT_CAUSED)


def install_client_error_lines() -> None:
    """Attach one filter to every client-facing library logger."""
    lines = ClientErrorLines()
    for name in CLIENT_FACING_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, ClientErrorLines) for existing in logger.filters):
            logger.addFilter(lines)
