"""The worker's METRICS_PORT: /metrics for Prometheus, /healthz and /readyz for orchestrators."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from scoreboard.api.models import Health
from scoreboard.config import Secret
from scoreboard.ops.metrics import CONTENT_TYPE, Metrics, scrape_allowed
from scoreboard.ops.worker_readiness import WorkerReadinessProbe
from scoreboard.web import responses
from scoreboard.web.server_header import hide_server_software

log = logging.getLogger(__name__)


class WorkerPort:
    """Serves the worker's metrics and health from start() to stop(); port 0 serves nothing."""

    def __init__(
        self,
        metrics: Metrics,
        readiness: WorkerReadinessProbe,
        port: int,
        token: Secret | None,
    ) -> None:
        self._metrics = metrics
        self._readiness = readiness
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
        app.router.add_get("/healthz", self._get_healthz)
        app.router.add_get("/readyz", self._get_readyz)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, port=self._port).start()
        except OSError as exc:
            log.warning("no metrics: cannot listen on METRICS_PORT %d (%s)", self._port, exc)
            await runner.cleanup()
            return
        self._runner = runner
        log.info(
            "worker metrics on port %d at /metrics, health at /healthz and /readyz", self._port
        )

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _get_metrics(self, request: web.Request) -> web.Response:
        if not scrape_allowed(request.headers.get("Authorization"), self._token):
            return responses.error(401, "Authentication failed", {"WWW-Authenticate": "Bearer"})
        return web.Response(body=self._metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})

    async def _get_healthz(self, request: web.Request) -> web.Response:
        """Answered by the worker's own event loop: a blocked or dead loop answers nothing."""
        return responses.answer(Health(message="ok"))

    async def _get_readyz(self, request: web.Request) -> web.Response:
        """200 while consuming with every service answering, else 503 saying why. With
        METRICS_TOKEN set, only a caller sending it learns the state and the services."""
        readiness = await self._readiness.sample()
        detailed = scrape_allowed(request.headers.get("Authorization"), self._token)
        body: dict[str, Any] = {}
        if detailed:
            body = {
                "state": readiness.state,
                "services": {
                    name: "up" if up else "down" for name, up in readiness.services.items()
                },
            }
        if readiness.ready:
            return responses.success({"message": "Ready", **body})
        message = f"Not ready: {', '.join(readiness.reasons)}" if detailed else "Not ready"
        return web.json_response({"status": "error", "message": message, **body}, status=503)
