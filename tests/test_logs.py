"""Logs: one line per event, JSON or text, and a request id from the web node to the worker."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as redis
from aiohttp import web

from scoreboard.apply.apply_loop import ApplyStats, apply_batches
from scoreboard.apply.store.redis_store import RedisLeaderboardStore
from scoreboard.config import Settings
from scoreboard.errors import ConfigError
from scoreboard.models import ScoreUpdate
from scoreboard.ops.logs import (
    ConnectionLossLines,
    JsonFormatter,
    RequestIdFilter,
    TextFormatter,
)
from scoreboard.ops.metrics import MeasuredEmitter, Metrics
from scoreboard.ops.request_ids import MAX_REQUEST_ID_LENGTH, bound_request_id
from scoreboard.push.broadcast import Broadcaster
from scoreboard.queue.queue_layout import QueueLayout
from scoreboard.queue.rabbitmq import RabbitConsumer, RabbitPublisher
from scoreboard.web.app import create_app
from tests.conftest import JWT_SECRET, RABBITMQ_URLS, REDIS_URL, TokenFactory, bearer
from tests.processes import Processes, service_processes
from tests.scrape import eventually

URL = "/api/score/update"
DISTRIBUTED = {
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "RABBITMQ_URL": "amqp://127.0.0.1/",
    "JWT_SECRET": JWT_SECRET,
}


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO, logging.Handler]]:
    """A logger of this test's own writing to a string, as configure_logging sets up stdout."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger(f"test.{uuid.uuid4().hex}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield logger, stream, handler
    logger.removeHandler(handler)


def test_json_lines_carry_the_request_id_extras_and_a_one_line_traceback(captured):
    logger, stream, handler = captured
    handler.setFormatter(JsonFormatter())
    with bound_request_id("req-1"):
        logger.info("accepted %s", "alice", extra={"route": "/api/score/update", "status": 200})
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed\non two lines")
    logger.warning("outside any request")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    first, second, third = (json.loads(line) for line in lines)
    assert first["message"] == "accepted alice"
    assert first["level"] == "INFO"
    assert first["request_id"] == "req-1"
    assert (first["route"], first["status"]) == ("/api/score/update", 200)
    assert first["time"].endswith("+00:00")
    assert second["request_id"] == "req-1"
    assert "ValueError: boom" in second["exception"]
    assert "request_id" not in third


def test_a_broker_connection_reset_is_one_line_other_tracebacks_stay(captured):
    logger, stream, handler = captured
    handler.setFormatter(TextFormatter())
    logger.addFilter(ConnectionLossLines())
    for error in (ConnectionResetError(104, "Connection reset by peer"), ValueError("boom")):
        try:
            raise error
        except Exception:
            logger.warning("Cancelling cause reader exited abnormally", exc_info=True)
    reset, other = stream.getvalue().split("WARNING")[1:]
    assert "Traceback" not in reset
    assert "reader exited abnormally: ConnectionResetError(104" in reset
    assert "Traceback" in other and "ValueError: boom" in other


def test_text_lines_name_the_request_id_after_the_message(captured):
    logger, stream, handler = captured
    handler.setFormatter(TextFormatter())
    with bound_request_id("req-2"):
        logger.info("hello")
    logger.info("no request")
    with_id, without = stream.getvalue().splitlines()
    assert with_id.endswith(" INFO " + logger.name + " hello request_id=req-2")
    assert without.endswith(" no request")


# A forged second line, a terminal escape, a bidi override and a C1 next-line character.
FORGERY = "x\n2026-01-01 00:00:00,000 INFO fake line\x1b[31m\u202egnp.exe\x85\ttab"
RAW_CONTROLS = ("\x1b", "\u202e", "\x85", "\t", "\r")


def test_text_lines_escape_control_and_bidi_characters_but_keep_tracebacks(captured):
    logger, stream, handler = captured
    handler.setFormatter(TextFormatter())
    with bound_request_id("req-3"):
        logger.warning("got %s", FORGERY)
        try:
            raise ValueError("bad \x1b[2J value")
        except ValueError:
            logger.exception("failed on %s", "\u2066isolated\u2069")
    text = stream.getvalue()
    for raw in RAW_CONTROLS:
        assert raw not in text
    lines = text.splitlines()
    assert lines[0].endswith(
        " WARNING " + logger.name + " got x\\n2026-01-01 00:00:00,000 INFO fake line"
        "\\x1b[31m\\u202egnp.exe\\x85\\ttab request_id=req-3"
    )
    assert lines[1].endswith(" failed on \\u2066isolated\\u2069 request_id=req-3")
    assert lines[2] == "Traceback (most recent call last):"
    assert lines[-1] == "ValueError: bad \\x1b[2J value"


def test_json_lines_are_ascii_and_give_back_the_message_as_it_was(captured):
    logger, stream, handler = captured
    handler.setFormatter(JsonFormatter())
    logger.warning("got %s", FORGERY)
    line = stream.getvalue()
    assert line.isascii()
    assert line.count("\n") == 1  # the one that ends the line
    assert json.loads(line)["message"] == f"got {FORGERY}"


async def test_a_crash_is_logged_by_route_template_not_by_the_path_sent(
    aiohttp_client, settings: Settings, caplog: pytest.LogCaptureFixture
):
    async def crash(request: web.Request) -> web.Response:
        raise RuntimeError("boom")

    app = create_app(settings)
    app.router.add_get("/api/crash/{tail}", crash)
    api = await aiohttp_client(app)
    with caplog.at_level(logging.ERROR, logger="scoreboard.web.middlewares"):
        response = await api.get("/api/crash/x%0A2026-01-01%20INFO%20fake%1B%E2%80%AE")
    assert response.status == 500
    [record] = caplog.records
    assert record.getMessage() == "unhandled error on GET /api/crash/{tail}"


def test_an_explicit_request_id_wins_over_the_current_one(captured):
    logger, stream, handler = captured
    handler.setFormatter(JsonFormatter())
    with bound_request_id("web-request"):
        logger.info("applied", extra={"request_id": "queued-request"})
    assert json.loads(stream.getvalue())["request_id"] == "queued-request"


def test_log_format_is_validated_and_json_by_default_on_heroku():
    assert Settings.from_env(DISTRIBUTED).log_format == "text"
    assert Settings.from_env({**DISTRIBUTED, "DYNO": "web.1"}).log_format == "json"
    assert Settings.from_env({**DISTRIBUTED, "DYNO": "web.1", "LOG_FORMAT": "text"}).log_format == (
        "text"
    )
    assert Settings.from_env({**DISTRIBUTED, "LOG_FORMAT": "Json"}).log_format == "json"
    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        Settings.from_env({**DISTRIBUTED, "LOG_FORMAT": "xml"})


@pytest.mark.parametrize(
    ("variable", "value"),
    [("METRICS_PORT", "70000"), ("METRICS_PORT", "x"), ("METRICS_TOKEN", "short")],
)
def test_metrics_settings_are_validated(variable: str, value: str):
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env({**DISTRIBUTED, variable: value})


def test_the_request_id_survives_the_queue_and_older_messages_still_decode():
    update = ScoreUpdate.new("alice", "Alice", 5, request_id="abc-123")
    assert ScoreUpdate.from_message(update.message) == update
    without = ScoreUpdate.new("alice", "Alice", 5)
    assert b"requestId" not in without.message
    older = json.loads(without.message)
    assert ScoreUpdate.from_message(json.dumps(older).encode()).request_id is None
    # A mangled id costs the trace, never the update.
    mangled = {**older, "requestId": "has spaces\nand a newline"}
    decoded = ScoreUpdate.from_message(json.dumps(mangled).encode())
    assert (decoded.request_id, decoded.increment) == (None, 5)


async def test_the_request_id_is_taken_from_the_header_or_made_and_always_answered(api):
    given = await api.get("/healthz", headers={"X-Request-Id": "heroku-abc-123"})
    assert given.headers["X-Request-Id"] == "heroku-abc-123"
    made = await api.get("/nothing-here")
    assert made.status == 404
    assert len(made.headers["X-Request-Id"]) == 32
    for unusable in ("a" * (MAX_REQUEST_ID_LENGTH + 1), "two words", "<script>"):
        response = await api.post(URL, headers={"X-Request-Id": unusable})
        assert response.status == 401
        assert response.headers["X-Request-Id"] != unusable
        assert len(response.headers["X-Request-Id"]) == 32


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    with service_processes(tmp_path) as running:
        yield running


def json_lines(output: str) -> list[dict[str, Any]]:
    """Every line parsed; a line that is not a JSON object fails the test."""
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert all(isinstance(line, dict) for line in lines)
    return lines


async def test_one_post_has_the_same_request_id_in_web_and_worker_json_logs(
    processes: Processes, env: dict[str, str], make_token: TokenFactory
):
    json_env = {**env, "LOG_FORMAT": "json", "METRICS_PORT": "0"}
    web = processes.start_web(json_env)
    worker = processes.start_worker({**json_env, "LOG_LEVEL": "DEBUG"})
    request_id = f"trace-{uuid.uuid4().hex}"
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{web.url}{URL}",
            json={"userId": "alice", "scoreIncrement": 3},
            headers={**bearer(make_token("alice")), "X-Request-Id": request_id},
        ) as response:
            assert response.status == 200
            assert response.headers["X-Request-Id"] == request_id

    async def worker_logged_it() -> bool:
        return request_id in worker.output

    await eventually(worker_logged_it, "the request id in the worker's log")
    [access] = [line for line in json_lines(web.output) if line.get("request_id") == request_id]
    assert access["logger"] == "scoreboard.access"
    assert (access["method"], access["route"], access["status"]) == ("POST", URL, 200)
    assert access["duration_ms"] >= 0
    [applied] = [line for line in json_lines(worker.output) if line.get("request_id") == request_id]
    assert applied["message"].startswith("applied update ")
    assert applied["level"] == "DEBUG", "one line per update only at DEBUG (see the summary)"
    finished = processes.stop_all()
    for process in finished:
        json_lines(process.output)  # the shutdown lines too


async def test_text_logs_carry_the_request_id_too(
    processes: Processes, env: dict[str, str], make_token: TokenFactory
):
    web = processes.start_web(env)
    worker = processes.start_worker({**env, "METRICS_PORT": "0", "LOG_LEVEL": "DEBUG"})
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{web.url}{URL}",
            json={"userId": "bob", "scoreIncrement": 1},
            headers=bearer(make_token("bob")),
        ) as response:
            assert response.status == 200
            request_id = response.headers["X-Request-Id"]

    async def worker_logged_it() -> bool:
        return f"request_id={request_id}" in worker.output

    await eventually(worker_logged_it, "the generated request id in the worker's log")
    assert f"POST {URL} 200" in web.output
    assert f"request_id={request_id}" in web.output


async def test_a_dead_lettered_update_is_logged_with_its_request_id(namespace, delete_queues):
    client = redis.from_url(REDIS_URL)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter())
    package_logger = logging.getLogger("scoreboard")
    package_logger.addHandler(handler)
    try:
        # Corrupt state for one user makes the store refuse that user's update.
        await client.hset(f"{namespace}:members", "broken", "0000000000000001:broken")
        publisher = RabbitPublisher(RABBITMQ_URLS, QueueLayout(namespace))
        await publisher.start()
        await publisher.publish(ScoreUpdate.new("broken", "B", 1, request_id="req-poison"))
        await publisher.close()
        consumer = RabbitConsumer(RABBITMQ_URLS, QueueLayout(namespace), prefetch=10)
        await consumer.start()
        stats = ApplyStats()
        store = RedisLeaderboardStore(client, f"{namespace}:")
        emitter = Broadcaster(MeasuredEmitter(_NoClients(), Metrics()))
        applying = asyncio.create_task(apply_batches(consumer, store, emitter, stats))

        async def dead_lettered() -> bool:
            return stats.dead_lettered == 1

        await eventually(dead_lettered, "the refused update dead-lettered")
        await consumer.stop()
        await asyncio.wait_for(applying, 5)
        await consumer.close()
    finally:
        package_logger.removeHandler(handler)
        await client.aclose()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    about_it = [line for line in lines if line.get("request_id") == "req-poison"]
    messages = [line["message"] for line in about_it]
    assert any(m.startswith("update ") and "cannot be applied" in m for m in messages), lines
    assert any(m.startswith("dead-lettering message ") for m in messages), lines


class _NoClients:
    async def emit(
        self, event: str, data: Any, namespace: str | None = None, **options: Any
    ) -> None:
        """Nobody listens in this test."""
