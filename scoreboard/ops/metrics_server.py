"""The worker's GET /metrics on METRICS_PORT: a small aiohttp app in the worker's own loop."""

from __future__ import annotations

import logging

from aiohttp import web

from scoreboard.config import Secret
from scoreboard.ops.metrics import CONTENT_TYPE, Metrics, scrape_allowed
from scoreboard.web.server_header import hide_server_software

log = logging.getLogger(__name__)


class MetricsServer:
    """Serves `metrics` from start() to stop(); port 0 serves nothing."""

    def __init__(self, metrics: Metrics, port: int, token: Secret | None) -> None:
        self._metrics = metrics
        self._port = port
        self._token = token
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Listen on every interface; a port already taken costs the metrics, not the worker."""
        if self._port == 0:
            return
        app = web.Application()
        app.on_response_prepare.append(hide_server_software)
        app.router.add_get("/metrics", self._get_metrics)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, port=self._port).start()
        except OSError as exc:
            log.warning("no metrics: cannot listen on METRICS_PORT %d (%s)", self._port, exc)
            await runner.cleanup()
            return
        self._runner = runner
        log.info("worker metrics on port %d at /metrics", self._port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _get_metrics(self, request: web.Request) -> web.Response:
        if not scrape_allowed(request.headers.get("Authorization"), self._token):
            return web.json_response(
                {"status": "error", "message": "Authentication failed"},
                status=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return web.Response(body=self._metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})
