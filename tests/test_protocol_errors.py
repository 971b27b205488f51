"""Requests aiohttp cannot parse, and errors past every middleware, answered like the app's own."""

from __future__ import annotations

import logging
import re
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from scoreboard.config import Settings
from scoreboard.web.app import create_app
from scoreboard.web.protocol_errors import FALLBACK_WARNING, app_runner
from scoreboard.web.security import BROWSER_HEADERS, HSTS
from tests.certs import self_signed_certificate
from tests.processes import Processes, free_port
from tests.raw_http import RawAnswer, exchange, get
from tests.scrape import scrape_url

UNMATCHED_400 = ("scoreboard_http_requests_total", {"route": "unmatched", "status": "400"})
# Each with the message it gets; aiohttp answers every one 400.
MALFORMED = [
    (get("/api/leaderboard", "X-Padding: " + "a" * 9000), "Request line or header too long"),
    (get("/" + "a" * 9000), "Request line or header too long"),
    (get("/api/leaderboard", "X-Control: a\x01b"), "Bad request"),
    (get("/api/leaderboard", "Bad Name: 1"), "Bad request"),
    (b"GET / FOO\r\nHost: localhost\r\n\r\n", "Invalid request line"),
    (b"G@T / HTTP/1.1\r\nHost: localhost\r\n\r\n", "Invalid request method"),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "Invalid request method"),  # TLS hello
    (b"GET /a\x01b HTTP/1.1\r\nHost: localhost\r\n\r\n", "Invalid request target"),
]
REQUEST_ID = re.compile(r"[0-9a-f]{32}")
LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR) \S+ ")


def assert_answered_like_the_app(answer: RawAnswer, status: int, message: str) -> None:
    assert answer.status == status, answer
    assert answer.json() == {"status": "error", "message": message}
    for name, value in BROWSER_HEADERS.items():
        assert answer.headers.get(name) == value, name
    assert answer.headers["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in answer.headers  # not over plain HTTP
    assert REQUEST_ID.fullmatch(answer.headers["X-Request-Id"])
    assert "Server" not in answer.headers
    assert b"aiohttp" not in answer.body and b"Python" not in answer.body


async def test_malformed_requests_get_json_headers_an_id_a_count_and_one_log_line(
    processes: Processes, env: dict[str, str]
):
    web_node = processes.start_web(env)
    before = scrape_url(f"{web_node.url}/metrics").value(UNMATCHED_400[0], **UNMATCHED_400[1])
    answers = []
    for request, message in MALFORMED:
        answer = await exchange(web_node.port, request)
        assert_answered_like_the_app(answer, 400, message)
        answers.append(answer)
    after = scrape_url(f"{web_node.url}/metrics").value(UNMATCHED_400[0], **UNMATCHED_400[1])
    assert after - before == len(MALFORMED)
    ids = {answer.headers["X-Request-Id"] for answer in answers}
    assert len(ids) == len(MALFORMED)

    finished = processes.stop_all()[0]
    assert finished.returncode == 0
    assert "Traceback" not in finished.output and " ERROR " not in finished.output
    # The first is logged; the rest, within the minute, only counted.
    [line] = [line for line in finished.output.splitlines() if "malformed" in line]
    first_id = answers[0].headers["X-Request-Id"]
    assert line.endswith(
        " WARNING scoreboard.web.protocol_errors refused a malformed request from 127.0.0.1: "
        f"400 Request line or header too long (LineTooLong) request_id={first_id}"
    )


async def test_requests_carrying_control_and_bidi_characters_forge_no_log_line(
    processes: Processes, env: dict[str, str]
):
    web_node = processes.start_web({**env, "LOG_LEVEL": "DEBUG"})
    forged = "%0A2026-01-01%2000:00:00,000%20INFO%20forged%1B[2J%E2%80%AE%C2%85"
    for request in (
        get(f"/api/{forged}"),
        get(f"/{forged}?q={forged}", "User-Agent: \u202eevil\u2066 \x85"),
        get("/api/leaderboard", f"X-Request-Id: {forged}"),
        get("/healthz", "X-Forwarded-For: a\x1bb"),  # refused by the parser
    ):
        await exchange(web_node.port, request)
    finished = processes.stop_all()[0]
    assert finished.returncode == 0
    output = finished.output
    for raw in ("\x1b", "\u202e", "\u2066", "\x85", "\r"):
        assert raw not in output
    for line in output.splitlines():
        assert LOG_LINE.match(line), line
    assert "forged" not in output


# In-process servers run single-process: a distributed app stopped a moment after it started
# can hang in python-socketio's Redis listener, which is not what these tests are about.
SINGLE_PROCESS = Settings.from_env({})


@asynccontextmanager
async def served(app: web.Application, tls: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    """`app` behind app_runner on a free port of 127.0.0.1, in this test's event loop."""
    runner = app_runner(app, access_log=None)
    await runner.setup()
    port = free_port()
    try:
        await web.TCPSite(runner, "127.0.0.1", port, ssl_context=tls).start()
        yield port
    finally:
        await runner.cleanup()


async def test_a_malformed_request_over_tls_gets_hsts_too(tmp_path: Path):
    cert = self_signed_certificate(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert.cert_file, cert.key_file)
    async with served(create_app(SINGLE_PROCESS), server_tls) as port:
        answer = await exchange(port, MALFORMED[0][0], tls=cert.client_context())
    assert answer.status == 400
    assert answer.headers["Strict-Transport-Security"] == HSTS
    assert answer.headers["X-Content-Type-Options"] == "nosniff"


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def failing_outside_the_others(request: web.Request, handler: Handler) -> Any:
    raise RuntimeError("escaped every middleware")


async def test_an_error_past_every_middleware_is_a_json_500(caplog: pytest.LogCaptureFixture):
    app = create_app(SINGLE_PROCESS)
    app.middlewares.insert(0, failing_outside_the_others)
    async with served(app) as port:
        with caplog.at_level(logging.ERROR, logger="scoreboard.web.protocol_errors"):
            answer = await exchange(port, get("/api/leaderboard", "X-Request-Id: trace-500"))
    assert answer.status == 500
    assert answer.json() == {"status": "error", "message": "Internal server error"}
    assert answer.headers["X-Request-Id"] == "trace-500"
    assert "Server" not in answer.headers
    assert answer.headers["X-Frame-Options"] == "DENY"
    [record] = caplog.records
    assert record.getMessage() == "unhandled error past the middlewares on GET /api/leaderboard"
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError


async def test_aiohttp_internals_not_as_expected_keep_its_own_answers_with_a_warning(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
):
    original = web.RequestHandler.handle_error

    # One more parameter than the aiohttp this project was written for.
    def handle_error(
        self: Any, request: Any, status: int = 500, exc: Any = None, message: Any = None, *, x=0
    ) -> Any:
        return original(self, request, status, exc, message)

    monkeypatch.setattr(web.RequestHandler, "handle_error", handle_error)
    with caplog.at_level(logging.WARNING, logger="scoreboard.web.protocol_errors"):
        async with served(create_app(SINGLE_PROCESS)) as port:
            answer = await exchange(port, MALFORMED[0][0])
    [warning] = [r for r in caplog.records if r.name == "scoreboard.web.protocol_errors"]
    assert warning.levelno == logging.WARNING
    assert warning.msg == FALLBACK_WARNING
    assert "handle_error" in warning.getMessage()
    # aiohttp's own answer, and the server still serves.
    assert answer.status == 400
    assert answer.headers["Content-Type"].startswith("text/plain")
