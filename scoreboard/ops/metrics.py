"""The Prometheus metrics a process exports, in a registry of its own (one per test app too)."""

from __future__ import annotations

import collections
import hmac
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from scoreboard.boards.model import GLOBAL_BOARD_ID
from scoreboard.config import Secret
from scoreboard.models import ScoreUpdate
from scoreboard.push.broadcast import Emitter

# The classic text format, which every Prometheus version reads.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
# A request that matched no route: one label value, so scanners cannot mint new series.
UNMATCHED_ROUTE = "unmatched"
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# From "applied at once" to "the queue backed up for minutes".
LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
BOARD_LABELS_KEPT = 20  # boards a process labels by id; beyond them, "other"
OTHER_BOARDS = "other"
GROUP_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)

# A *_created series per counter doubles the series count for a timestamp no panel uses.
disable_created_metrics()


class Metrics:
    """What every process counts: requests, accepted and applied updates, lags, dead letters."""

    def __init__(self) -> None:
        registry = CollectorRegistry()
        self.registry = registry
        self.http_requests = Counter(
            "scoreboard_http_requests",
            "HTTP requests answered, by route template and status code",
            ["route", "status"],
            registry=registry,
        )
        self.http_request_duration = Histogram(
            "scoreboard_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template (Socket.IO transport excluded)",
            ["route"],
            buckets=HTTP_BUCKETS,
            registry=registry,
        )
        self.rate_limited = Counter(
            "scoreboard_rate_limited",
            "Requests refused with 429 because the user was over their rate limit, by route",
            ["route"],
            registry=registry,
        )
        self.updates_accepted = Counter(
            "scoreboard_updates_accepted",
            "Score updates queued and answered 200 (idempotent replays not counted), by board",
            ["board"],
            registry=registry,
        )
        self.updates_applied = Counter(
            "scoreboard_updates_applied",
            "Score updates applied to their board and acknowledged, by board",
            ["board"],
            registry=registry,
        )
        self._board_labels: set[str] = {GLOBAL_BOARD_ID}
        self.update_apply_lag = Histogram(
            "scoreboard_update_apply_lag_seconds",
            "From a web node accepting an update to a worker applying it",
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self.broadcasts = Counter(
            "scoreboard_broadcasts",
            "leaderboardUpdate events emitted because the top 10 changed",
            registry=registry,
        )
        self.broadcast_lag = Histogram(
            "scoreboard_broadcast_lag_seconds",
            "From accepting the newest update of a batch to emitting the top 10 it changed",
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self.group_size = Histogram(
            "scoreboard_group_size",
            "Updates carried per group: per reservation script call and per published message"
            " (web), per applied batch (worker)",
            ["stage"],
            buckets=GROUP_BUCKETS,
            registry=registry,
        )
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        # When the newest update that changed the top 10 was accepted, until a broadcast sends it.
        self._newest_unsent: float | None = None

    def count_request(self, route: str, status: int) -> None:
        """One HTTP request answered; a 429 counts as rate-limited too."""
        self.http_requests.labels(route=route, status=str(status)).inc()
        if status == 429:
            self.rate_limited.labels(route=route).inc()

    def board_label(self, board_id: str) -> str:
        """The `board` label of a board: its id for the first BOARD_LABELS_KEPT, else "other".

        Deployments with thousands of boards would otherwise grow a series per board.
        """
        if board_id in self._board_labels:
            return board_id
        if len(self._board_labels) < BOARD_LABELS_KEPT:
            self._board_labels.add(board_id)
            return board_id
        return OTHER_BOARDS

    def count_accepted(self, board_id: str) -> None:
        self.updates_accepted.labels(self.board_label(board_id)).inc()

    def observe_applied(self, updates: Sequence[ScoreUpdate]) -> None:
        """Count applied updates by board and how long each waited since it was accepted."""
        now = time.time()
        boards = collections.Counter(self.board_label(u.board_id) for u in updates)
        for board, count in boards.items():
            self.updates_applied.labels(board).inc(count)
        self.group_size.labels("apply").observe(len(updates))
        for update in updates:
            self.update_apply_lag.observe(_since(update.accepted_at, now))

    def board_changed(self, newest_accepted_at: float) -> None:
        """A batch changed the top 10; its newest update goes out with the next broadcast."""
        if self._newest_unsent is None or newest_accepted_at > self._newest_unsent:
            self._newest_unsent = newest_accepted_at

    def observe_broadcast(self) -> None:
        self.broadcasts.inc()
        if self._newest_unsent is not None:
            self.broadcast_lag.observe(_since(self._newest_unsent, time.time()))
            self._newest_unsent = None

    def count_dead_letters(self, read: Callable[[], int]) -> None:
        """Export scoreboard_updates_dead_lettered_total, read from `read` at each scrape."""
        # A callback because part of the count is kept by the broker's consumer, which drops
        # undecodable messages before the apply loop sees them.
        self.registry.register(
            _CallbackCounter(
                "scoreboard_updates_dead_lettered",
                "Messages moved to the dead-letter queue (or, single-process, dropped)",
                read,
            )
        )

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)


class WebMetrics(Metrics):
    """A web process adds what it alone sees: its Socket.IO clients, the queues, the workers."""

    def __init__(self, connected_clients: Callable[[], int]) -> None:
        super().__init__()
        self.updates_shed = Counter(
            "scoreboard_updates_shed",
            "Score updates answered 503 Server busy because MAX_UPDATES_IN_FLIGHT were under way",
            registry=self.registry,
        )
        self.socketio_clients = Gauge(
            "scoreboard_socketio_clients",
            "Socket.IO clients connected to this web node",
            registry=self.registry,
        )
        self.socketio_clients.set_function(connected_clients)
        self.queue_depth = Gauge(
            "scoreboard_queue_depth",
            "Messages ready in a queue (main or dead_letter), sampled when scraped",
            ["queue"],
            registry=self.registry,
        )
        self.workers_alive = Gauge(
            "scoreboard_workers_alive",
            "Workers whose heartbeat in Redis is current, sampled when scraped",
            registry=self.registry,
        )
        self.dependency_up = Gauge(
            "scoreboard_dependency_up",
            "1 when the backing service (redis, rabbitmq, postgresql) answered, else 0",
            ["dependency"],
            registry=self.registry,
        )
        self.pushes_received = Counter(
            "scoreboard_pushes_received",
            "Top-10 pushes that reached this web node through Redis, by board and channel:"
            " `board` (the board's own, heard while a client of this node holds the board) or"
            " `shared` (python-socketio's, where a worker of an older version pushes)",
            ["board", "channel"],
            registry=self.registry,
        )

    def count_push_received(self, board_id: str, channel: str) -> None:
        self.pushes_received.labels(self.board_label(board_id), channel).inc()

    def count_socket_messages(self, read: Callable[[], Mapping[str, int]]) -> None:
        """Export scoreboard_socketio_messages_total by path, read from `read` at each scrape."""
        self.registry.register(
            _CallbackCounter(
                "scoreboard_socketio_messages",
                "Broadcast messages for this node's clients: written straight to the websocket"
                " (direct), queued behind the connection's own packets (queued), or sent by"
                " python-socketio's emit (socketio)",
                read,
                label="path",
            )
        )

    def watch_fan_out(
        self, direct: Callable[[], bool], errors: Callable[[], Mapping[str, int]]
    ) -> None:
        """Export which way broadcasts leave this node, and how often that failed."""
        gauge = Gauge(
            "scoreboard_fan_out_direct",
            "1 while broadcasts are written straight to websockets; 0 once the library"
            " internals that needs differ at start-up and python-socketio's emit sends them",
            registry=self.registry,
        )
        gauge.set_function(lambda: 1.0 if direct() else 0.0)
        self.registry.register(
            _CallbackCounter(
                "scoreboard_fan_out_errors",
                "Broadcasts whose fan-out raised (each logged with its traceback), by the path"
                " that raised; after a direct one, python-socketio's emit sends the broadcast",
                errors,
                label="path",
            )
        )


class MeasuredEmitter:
    """An Emitter that reports every broadcast it sends, however the broadcaster paces them."""

    def __init__(self, emitter: Emitter, metrics: Metrics) -> None:
        self._emitter = emitter
        self._metrics = metrics

    async def emit(
        self, event: str, data: Any, namespace: str | None = None, **options: Any
    ) -> Any:
        result = await self._emitter.emit(event, data, namespace=namespace, **options)
        self._metrics.observe_broadcast()
        return result


def scrape_allowed(authorization: str | None, token: Secret | None) -> bool:
    """Without METRICS_TOKEN anyone may scrape; with it, only `Authorization: Bearer <token>`."""
    if token is None:
        return True
    expected = f"Bearer {token.value}".encode()
    return hmac.compare_digest((authorization or "").encode(), expected)


def _since(accepted_at: float, now: float) -> float:
    # Web nodes and workers read different clocks: a small skew must not make a negative lag.
    return max(0.0, now - accepted_at)


class _CallbackCounter(Collector):
    """A counter whose value, or values by one label, is kept elsewhere and read at scrape time."""

    def __init__(
        self,
        name: str,
        documentation: str,
        read: Callable[[], int] | Callable[[], Mapping[str, int]],
        label: str | None = None,
    ) -> None:
        self._name = name
        self._documentation = documentation
        self._read = read
        self._label = label

    def collect(self) -> Iterable[Metric]:
        value = self._read()
        if isinstance(value, Mapping):
            family = CounterMetricFamily(
                self._name, self._documentation, labels=[self._label or ""]
            )
            for label_value, count in value.items():
                family.add_metric([label_value], count)
            yield family
        else:
            yield CounterMetricFamily(self._name, self._documentation, value=value)
