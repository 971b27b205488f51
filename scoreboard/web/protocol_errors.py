"""aiohttp's own answers, to requests it cannot parse and to errors past every middleware, as ours.

aiohttp answers both in RequestHandler.handle_error: plain text echoing the request, none of
the app's headers, and an ERROR line with a traceback per request, which lets anyone flood the
log. `app_runner` serves with a RequestHandler whose handle_error answers like the app. This is
the one module that leans on aiohttp's internals; `app_runner` checks them at start-up and, when
they are not as expected, keeps aiohttp's own answers and logs a warning saying so.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import (
    BadHttpMethod,
    BadStatusLine,
    HttpProcessingError,
    InvalidHeader,
    InvalidURLError,
    LineTooLong,
)

from scoreboard.config import Settings
from scoreboard.ops.log_throttle import LogThrottle
from scoreboard.ops.metrics import UNMATCHED_ROUTE, Metrics
from scoreboard.ops.request_ids import REQUEST_ID_HEADER, new_request_id, request_id_from_header
from scoreboard.web import responses
from scoreboard.web.keys import METRICS, SETTINGS
from scoreboard.web.route_names import route_template
from scoreboard.web.security import add_security_headers
from scoreboard.web.server_header import drop_server_header

log = logging.getLogger(__name__)

# A flood of malformed requests costs a line a minute; the metrics count every one of them.
LOG_INTERVAL_SECONDS = 60.0
# Most specific first: a BadHttpMethod is a BadStatusLine. aiohttp answers every one with 400.
_MESSAGES: tuple[tuple[type[HttpProcessingError], str], ...] = (
    (LineTooLong, "Request line or header too long"),
    (InvalidHeader, "Invalid request header"),
    (BadHttpMethod, "Invalid request method"),
    (BadStatusLine, "Invalid request line"),
    (InvalidURLError, "Invalid request target"),
)
MALFORMED = "Bad request"
FALLBACK_WARNING = "aiohttp answers malformed requests itself, in plain text, logging each: %s"
# How aiohttp 3.14 calls handle_error, and builds a RequestHandler.
_HANDLE_ERROR_PARAMETERS = ("self", "request", "status", "exc", "message")
_HANDLER_PARAMETERS = {"self", "manager", "loop"}


def malformed_message(exc: HttpProcessingError) -> str:
    """What the client is told about a request the parser refused; never the request's bytes."""
    for kind, message in _MESSAGES:
        if isinstance(exc, kind):
            return message
    return MALFORMED


class ErrorAnswers:
    """Answers in the API's error shape, with the app's headers; counts and logs them."""

    def __init__(self, metrics: Metrics, settings: Settings, throttle: LogThrottle) -> None:
        self._metrics = metrics
        self._settings = settings
        self._throttle = throttle

    def malformed(
        self, request: web.BaseRequest, status: int, exc: HttpProcessingError
    ) -> web.Response:
        """A request the parser refused: counted as unmatched, logged one line at a time."""
        message = malformed_message(exc)
        request_id = new_request_id()
        self._metrics.count_request(UNMATCHED_ROUTE, status)
        suppressed = self._throttle.admit()
        if suppressed is not None:
            log.warning(
                "refused a malformed request from %s: %d %s (%s)%s",
                request.remote,
                status,
                message,
                type(exc).__name__,
                f"; {suppressed} more since the last such line" if suppressed else "",
                extra={"request_id": request_id},
            )
        return self._answer(request, status, message, request_id)

    def unhandled(
        self, request: web.BaseRequest, status: int, exc: BaseException | None
    ) -> web.Response:
        """An exception no middleware caught (track_requests counted the request if it saw it)."""
        request_id = request_id_from_header(request.headers.get(REQUEST_ID_HEADER))
        log.error(
            "unhandled error past the middlewares on %s %s",
            request.method,
            _route(request),
            exc_info=exc,
            extra={"request_id": request_id},
        )
        message = HTTPStatus(status).phrase.capitalize()
        return self._answer(request, status, message, request_id)

    def _answer(
        self, request: web.BaseRequest, status: int, message: str, request_id: str
    ) -> web.Response:
        answer = responses.error(status, message)
        assert isinstance(answer.body, bytes)
        response = _WithoutServerHeader(body=answer.body, status=status, headers=answer.headers)
        # Only TLS on this very connection counts: a malformed request's headers are not read.
        add_security_headers(
            response.headers,
            no_store=True,
            strict_transport=self._settings.force_https and request.secure,
        )
        response.headers[REQUEST_ID_HEADER] = request_id
        # As aiohttp does: after a parse error nothing tells where a next request would start.
        response.force_close()
        return response


def app_runner(app: web.Application, **kwargs: Any) -> web.AppRunner:
    """web.AppRunner(app, **kwargs), serving with the handler below when aiohttp's internals
    are as expected; else aiohttp's own, and a warning."""
    problem = _internals_problem()
    if problem is not None:
        log.warning(FALLBACK_WARNING, problem)
        return web.AppRunner(app, **kwargs)
    answers = ErrorAnswers(app[METRICS], app[SETTINGS], LogThrottle(LOG_INTERVAL_SECONDS))
    return _Runner(app, answers, **kwargs)


def _internals_problem() -> str | None:
    """What differs from the aiohttp this module was written for; None if nothing does."""
    handle_error = getattr(web.RequestHandler, "handle_error", None)
    if handle_error is None or _parameters(handle_error) != _HANDLE_ERROR_PARAMETERS:
        return "RequestHandler.handle_error is not handle_error(request, status, exc, message)"
    if not _HANDLER_PARAMETERS <= set(_parameters(web.RequestHandler.__init__)):
        return "RequestHandler(manager, loop=…) is not how a handler is made"
    if not inspect.iscoroutinefunction(getattr(web.AppRunner, "_make_server", None)):
        return "AppRunner._make_server is not a coroutine function"
    if not inspect.iscoroutinefunction(getattr(web.StreamResponse, "_prepare_headers", None)):
        return "StreamResponse._prepare_headers is not a coroutine function"
    return None


def _parameters(function: Any) -> tuple[str, ...]:
    return tuple(inspect.signature(function).parameters)


def _route(request: web.BaseRequest) -> str:
    # An error in routing itself leaves no match info to name the route by.
    if isinstance(request, web.Request) and getattr(request, "_match_info", None) is not None:
        return route_template(request)
    return UNMATCHED_ROUTE


class _WithoutServerHeader(web.Response):
    """No app hook runs for a request that never reached the app: drop `Server` here instead."""

    async def _prepare_headers(self) -> None:
        await super()._prepare_headers()
        drop_server_header(self)


class _Handler(web.RequestHandler):
    """aiohttp's connection handler, answering its errors through ErrorAnswers."""

    __slots__ = ("_answers",)

    def __init__(self, manager: web.Server, *, answers: ErrorAnswers, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._answers = answers

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:
            # As aiohttp does: part of a response went out, so no other can follow it.
            raise ConnectionError("a response is partly sent; no error response can follow")
        if isinstance(exc, HttpProcessingError):
            return self._answers.malformed(request, status, exc)
        return self._answers.unhandled(request, status, exc)


class _Server(web.Server):
    """aiohttp's protocol factory, making _Handler instead of RequestHandler."""

    def __init__(self, handler: Any, *, answers: ErrorAnswers, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._answers = answers

    def __call__(self) -> web.RequestHandler:
        return _Handler(self, loop=self._loop, answers=self._answers, **self._kwargs)


class _Runner(web.AppRunner):
    """AppRunner whose server is a _Server with the settings aiohttp chose for its own."""

    def __init__(self, app: web.Application, answers: ErrorAnswers, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._answers = answers

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        kwargs = getattr(server, "_kwargs", None)
        loop = getattr(server, "_loop", None)
        if type(server) is not web.Server or not isinstance(kwargs, dict):
            log.warning(FALLBACK_WARNING, "aiohttp's Server keeps its handler settings elsewhere")
            return server
        if not isinstance(loop, asyncio.AbstractEventLoop):
            log.warning(FALLBACK_WARNING, "aiohttp's Server keeps its event loop elsewhere")
            return server
        return _Server(
            server.request_handler,
            answers=self._answers,
            request_factory=server.request_factory,
            handler_cancellation=server.handler_cancellation,
            loop=loop,
            **kwargs,
        )
