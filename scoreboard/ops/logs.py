"""Logging to stdout, one line per event: readable text, or JSON for log platforms."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

import aiormq.exceptions

from scoreboard.ops.client_error_logs import install_client_error_lines
from scoreboard.ops.request_ids import current_request_id

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# What every LogRecord has; anything else on a record came from `extra=` and goes into the JSON.
_RECORD_ATTRIBUTES = logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys()
_STANDARD_ATTRIBUTES = {*_RECORD_ATTRIBUTES, "message", "asctime", "taskName", "request_id"}
# C0 and C1 control characters and the Unicode bidi overrides and isolates: a request can put
# them in a logged value to forge a line, drive a terminal or reorder what a reader sees.
_UNSAFE = [*range(0x20), *range(0x7F, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_ESCAPED = {code: chr(code).encode("unicode_escape").decode("ascii") for code in _UNSAFE}
# A traceback keeps its line breaks; whatever else it quotes is escaped like a message.
_ESCAPED_IN_TRACEBACK = {code: text for code, text in _ESCAPED.items() if code != ord("\n")}


def escape_controls(text: str) -> str:
    """`text` with control and bidi characters as Python escapes: `\\n`, `\\x1b`, `\\u202e`."""
    return text.translate(_ESCAPED)


class RequestIdFilter(logging.Filter):
    """Gives every record the current request id, unless the caller passed one in `extra`."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request_id()
        return True


class TextFormatter(logging.Formatter):
    """`time LEVEL logger message`, then ` request_id=…` when the line belongs to a request."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape_controls(super().formatMessage(record))

    def format(self, record: logging.LogRecord) -> str:
        # The message is one line now; whatever follows it is a traceback or a stack.
        first, newline, rest = super().format(record).partition("\n")
        rest = rest.translate(_ESCAPED_IN_TRACEBACK)
        request_id = getattr(record, "request_id", None)
        if request_id is None:
            return f"{first}{newline}{rest}"
        # The id goes on the first line, with the message.
        return f"{first} request_id={request_id}{newline}{rest}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id and any extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            entry["request_id"] = request_id
        for name, value in record.__dict__.items():
            if name not in _STANDARD_ATTRIBUTES and not name.startswith("_"):
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # ASCII only: control and bidi characters from a request come out as \u escapes.
        return json.dumps(entry, default=str, ensure_ascii=True)


class ConnectionLossLines(logging.Filter):
    """aiormq logs a broker connection that drops with a traceback: one line says as much.

    A node that dies resets the connection; queue/broker_link.py then logs the reconnection.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, (ConnectionError, aiormq.exceptions.AMQPConnectionError)):
            record.msg, record.args = f"{record.getMessage()}: {error!r}", None
            record.exc_info = record.exc_text = None
        return True


def configure_logging(level: str, log_format: str = "text") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    logging.basicConfig(level=level, handlers=[handler], force=True)
    install_client_error_lines()
    # aio-pika and engineio are chatty at INFO; their warnings still show.
    for name in ("aio_pika", "aiormq", "engineio.server", "socketio.server"):
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))
    connection_logger = logging.getLogger("aiormq.connection")
    if not any(isinstance(f, ConnectionLossLines) for f in connection_logger.filters):
        connection_logger.addFilter(ConnectionLossLines())
