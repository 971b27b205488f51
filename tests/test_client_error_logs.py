"""Errors a client can make libraries log: one WARNING line each, at most one per interval."""

from __future__ import annotations

import json
import logging
import time
import urllib.request

import pytest
from aiohttp.web_protocol import RequestPayloadError

from scoreboard.ops.client_error_logs import ClientErrorLines
from scoreboard.web.app import SOCKETIO_PATH
from tests.processes import WebProcess


def record(
    name: str, error: BaseException | None, message: str = "handler error"
) -> logging.LogRecord:
    exc_info = (type(error), error, error.__traceback__) if error is not None else None
    return logging.LogRecord(name, logging.ERROR, __file__, 1, message, None, exc_info)


def test_a_library_traceback_becomes_one_warning_line_then_a_count():
    now = [0.0]
    lines = ClientErrorLines(interval_seconds=10, clock=lambda: now[0])
    first = record("engineio.server", ValueError("invalid literal\nfor int()"))
    assert lines.filter(first)
    assert first.levelname == "WARNING" and first.exc_info is None
    assert first.getMessage() == "handler error: ValueError: invalid literal for int()"
    assert not any(lines.filter(record("engineio.server", ValueError("x"))) for _ in range(5))
    now[0] = 10.0
    later = record("engineio.server", ValueError("y"))
    assert lines.filter(later)
    assert later.getMessage().endswith("(5 more like it in the last 10s)")


def test_aiohttp_errors_are_shortened_only_when_the_client_caused_them():
    lines = ClientErrorLines()
    payload = record("aiohttp.server", RequestPayloadError("bad gzip"), "Unhandled exception")
    assert lines.filter(payload) and payload.levelname == "WARNING"
    ours = record("aiohttp.server", RuntimeError("a bug of ours"), "Unhandled exception")
    assert lines.filter(ours) and ours.levelname == "ERROR" and ours.exc_info is not None


def test_other_loggers_and_lower_levels_pass_untouched():
    lines = ClientErrorLines()
    mine = record("scoreboard.worker", ValueError("x"))
    assert lines.filter(mine) and mine.levelname == "ERROR"
    info = logging.LogRecord("engineio.server", logging.INFO, __file__, 1, "hello", None, None)
    assert lines.filter(info) and info.levelname == "INFO"


def _poll(web: WebProcess, method: str, query: str, body: bytes | None = None):
    request = urllib.request.Request(
        f"{web.url}/{SOCKETIO_PATH}/?{query}", data=body, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.mark.parametrize("packet", [b"0", b"2", b"6"])
def test_a_packet_no_client_sends_gets_a_400_not_a_held_request(web: WebProcess, packet: bytes):
    status, opened = _poll(web, "GET", "EIO=4&transport=polling")
    sid = json.loads(opened[1:])["sid"]
    query = f"EIO=4&transport=polling&sid={sid}"
    started = time.monotonic()
    status, body = _poll(web, "POST", query, packet)
    assert time.monotonic() - started < 5, "answered, not held until the client polls"
    assert status == 400 and json.loads(body)["status"] == "error"
    status, body = _poll(web, "POST", query, b"1")
    assert status == 400, "the session is closed: a clear 400, not a 500"
    assert "Traceback" not in web.output
