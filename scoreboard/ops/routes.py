"""Operations endpoints: /healthz, /metrics for Prometheus and /readyz for probes and people."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import socketio
from aiohttp import web

from scoreboard.api.models import Health
from scoreboard.ops.heartbeat import WorkerRegistry
from scoreboard.ops.metrics import CONTENT_TYPE, WebMetrics, scrape_allowed
from scoreboard.ops.readiness import Readiness, ReadinessProbe
from scoreboard.push import socketio_internals
from scoreboard.queue.queue_depth import QueueProbe
from scoreboard.queue.queue_layout import QueueLayout
from scoreboard.web import responses
from scoreboard.web.keys import LEDGER, METRICS, READINESS, REDIS, SETTINGS, SOCKETIO


async def healthz(request: web.Request) -> web.Response:
    """The process is up and serving requests."""
    return responses.answer(Health(message="ok"))


async def get_metrics(request: web.Request) -> web.Response:
    """This node's metrics in Prometheus' text format; behind METRICS_TOKEN when it is set."""
    app = request.app
    if not scrape_allowed(request.headers.get("Authorization"), app[SETTINGS].metrics_token):
        return responses.error(401, "Authentication failed", {"WWW-Authenticate": "Bearer"})
    metrics = app[METRICS]
    _record_sample(metrics, await app[READINESS].sample())
    return web.Response(body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})


async def get_readyz(request: web.Request) -> web.Response:
    """200 while every configured backing service answers, else 503. With METRICS_TOKEN set,
    only a caller sending it learns which services, queues and workers there are."""
    app = request.app
    readiness = await app[READINESS].sample()
    detailed = scrape_allowed(request.headers.get("Authorization"), app[SETTINGS].metrics_token)
    body: dict[str, Any] = {}
    if detailed:
        body = {
            "mode": app[SETTINGS].mode.value,
            "services": {name: "up" if up else "down" for name, up in readiness.services.items()},
            "queues": readiness.queue_depths,
            "workers": _workers_json(readiness),
        }
    if readiness.ready:
        return responses.success({"message": "Ready", **body})
    message = f"Not ready: {', '.join(readiness.down)} unreachable" if detailed else "Not ready"
    return web.json_response({"status": "error", "message": message, **body}, status=503)


def connected_clients(sio: socketio.AsyncServer) -> int:
    """Socket.IO clients connected to this node (past authentication, not yet gone)."""
    return socketio_internals.connected_clients(sio)


def add_operations(app: web.Application) -> None:
    """This node's metrics and the readiness probe behind /metrics and /readyz."""
    sio = app[SOCKETIO]
    app[METRICS] = WebMetrics(lambda: connected_clients(sio))
    app.cleanup_ctx.append(_readiness_probe)


async def _readiness_probe(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    client = app.get(REDIS)
    queues = (
        QueueProbe(settings.rabbitmq_urls, QueueLayout.of(settings))
        if settings.rabbitmq_urls
        else None
    )
    workers = None if client is None else WorkerRegistry(client, settings.redis_key_prefix)
    probe = ReadinessProbe(client, queues, lambda: app.get(LEDGER), workers)
    app[READINESS] = probe
    yield
    await probe.close()


def _record_sample(metrics: WebMetrics, readiness: Readiness) -> None:
    for name, up in readiness.services.items():
        metrics.dependency_up.labels(dependency=name).set(1 if up else 0)
    # A queue that could not be asked has no value rather than a stale one.
    metrics.queue_depth.clear()
    for queue, depth in readiness.queue_depths.items():
        if depth is not None:
            metrics.queue_depth.labels(queue=queue).set(depth)
    if readiness.workers is None:
        metrics.workers_alive.set(float("nan"))
    else:
        metrics.workers_alive.set(len(readiness.workers))


def _workers_json(readiness: Readiness) -> dict[str, Any] | None:
    if readiness.workers is None:
        return None
    now = time.time()
    return {
        "alive": len(readiness.workers),
        "list": [beat.to_json(now) for beat in readiness.workers],
    }
