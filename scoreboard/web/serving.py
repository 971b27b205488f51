"""Serve the web app on HOST at PORT (and OPS_PORT) until SIGTERM, then shut down gracefully."""

from __future__ import annotations

import asyncio
import logging
import ssl
from contextlib import suppress

import uvloop
from aiohttp import web

from scoreboard.config import Settings
from scoreboard.ops.collector_pauses import keep_collector_pauses_short
from scoreboard.web.keys import FATAL
from scoreboard.web.protocol_errors import app_runner

log = logging.getLogger(__name__)

# In-flight requests get this long after SIGTERM; the platform's SIGKILL comes at 30 s.
SHUTDOWN_TIMEOUT_SECONDS = 10.0
# aiohttp's default, which outlasts the idle timeout of the usual proxies in front.
KEEPALIVE_TIMEOUT_SECONDS = 75.0


def serve(app: web.Application, settings: Settings, ssl_context: ssl.SSLContext | None) -> None:
    """Serve until SIGTERM or SIGINT; then shut the app down gracefully and close the loop."""
    keep_collector_pauses_short()
    loop = uvloop.new_event_loop()  # a faster event loop for the same asyncio code
    asyncio.set_event_loop(loop)
    serving = loop.create_task(_serve(app, settings, ssl_context))
    try:
        loop.run_until_complete(serving)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        try:
            if not serving.done():
                serving.cancel()  # its clean-up is the graceful shutdown
                with suppress(asyncio.CancelledError):
                    loop.run_until_complete(serving)
        finally:
            _cancel_remaining_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()


async def _serve(
    app: web.Application, settings: Settings, ssl_context: ssl.SSLContext | None
) -> None:
    runner = app_runner(
        app,
        handle_signals=True,  # SIGTERM and SIGINT raise GracefulExit out of the loop
        access_log=None,  # scoreboard.access logs every request instead
        shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS,
        keepalive_timeout=KEEPALIVE_TIMEOUT_SECONDS,
    )
    await runner.setup()
    try:
        for port in (settings.port, settings.ops_port):
            if port is not None:  # host None: every interface
                # OPS_PORT is each process's own: a scrape must reach the process it names.
                reuse_port = settings.reuse_port and port == settings.port
                await web.TCPSite(
                    runner, settings.host, port, ssl_context=ssl_context, reuse_port=reuse_port
                ).start()
        log.info("listening on %s", ", ".join(sorted(site.name for site in runner.sites)))
        fatal = app.get(FATAL)
        # Until cancelled, or until something fails that must stop the node (then it raises).
        await (fatal if fatal is not None else asyncio.Event().wait())
    finally:
        await runner.cleanup()


def _cancel_remaining_tasks(loop: asyncio.AbstractEventLoop) -> None:
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            loop.call_exception_handler(
                {"message": "task failed during shutdown", "exception": task.exception()}
            )
