"""Where Redis is and how every component reaches it: one URL, plain or through Sentinel.

`REDIS_URL` is a plain Redis URL (`redis://`, `rediss://`, `unix://`) or names a primary kept by
Sentinel, in the form python-socketio's AsyncRedisManager reads (so the broadcast channel gets
the URL as it is, and parses it as this module does):

    redis+sentinel://[[username]:password@]host:port[,host:port…]/db/service_name

The credentials are the Redis servers' (the Sentinels must not require one) and are taken
literally, not percent-decoded, as python-socketio takes them. Everything else in a process (the
board, the rate limits, boards, seasons, heartbeats) shares the one client built here. Through
Sentinel its pool asks the Sentinels for the primary's address whenever it opens a connection,
and drops a connection whose server answers READONLY (a demoted primary): after a failover every
component reaches the promoted replica without a restart.

The pool blocks rather than fails: redis-py's default pool refuses a command with
MaxConnectionsError the moment more are in flight than it holds, so under load a healthy Redis
looked down and requests got 503. A blocking pool makes a request wait for a free connection;
only a wait past REDIS_POOL_TIMEOUT_SECONDS, when Redis no longer keeps up, turns into 503.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import redis.asyncio as redis
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool

SENTINEL_SCHEME = "redis+sentinel"
SENTINEL_URL_FORM = f"{SENTINEL_SCHEME}://[:password@]host:port[,host:port…]/db/service_name"
# Asking a Sentinel where the primary is must not hang on one that is unreachable.
SENTINEL_TIMEOUT_SECONDS = 1.0
MAX_DB = 15  # Redis's default number of databases, 0 to 15


@dataclass(frozen=True)
class SentinelLocation:
    """The Sentinels to ask, the service they keep, and how to log in to its servers."""

    sentinels: tuple[tuple[str, int], ...]
    service_name: str
    db: int
    username: str | None = None
    password: str | None = None

    def server_options(self) -> dict[str, Any]:
        """What every connection to the primary is opened with."""
        options: dict[str, Any] = {"db": self.db}
        if self.username is not None:
            options["username"] = self.username
        if self.password is not None:
            options["password"] = self.password
        return options


def sentinel_location(url: str) -> SentinelLocation | None:
    """Where a `redis+sentinel://` URL points; None for a plain Redis URL.

    ValueError says what is wrong with a malformed one, without repeating any of it (it may hold
    a password).
    """
    parts = urlsplit(url)
    if parts.scheme != SENTINEL_SCHEME:
        return None
    if parts.query or parts.fragment:
        raise ValueError("a redis+sentinel:// URL takes no ?options or #fragment")
    addresses = parts.netloc.rpartition("@")[2]
    sentinels = tuple(_address(text) for text in addresses.split(","))
    path = parts.path.split("/")
    if len(path) != 3 or not path[1].isascii() or not path[1].isdigit() or not path[2]:
        raise ValueError("the path must be /db/service_name, such as /0/mymaster")
    db = int(path[1])
    if db > MAX_DB:
        raise ValueError(f"the database number must be from 0 to {MAX_DB}")
    return SentinelLocation(sentinels, path[2], db, parts.username or None, parts.password or None)


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or "[" in host or not (port.isascii() and port.isdigit()):
        raise ValueError("each Sentinel must be host:port, with an IPv4 address or a host name")
    number = int(port)
    if not 1 <= number <= 65535:
        raise ValueError("a Sentinel's port must be from 1 to 65535")
    return host, number


class PoolLimits(Protocol):
    """How many connections a process opens and how long a command waits for one (Settings)."""

    @property
    def redis_max_connections(self) -> int: ...

    @property
    def redis_pool_timeout_seconds(self) -> float: ...


class _BlockingSentinelPool(SentinelConnectionPool, redis.BlockingConnectionPool):
    """Sentinel's pool (connects to the current primary), waiting for a free connection."""


class _PrimaryClient(redis.Redis):
    """A client of Sentinel's current primary; closing it closes its Sentinel connections too."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        pool = self.connection_pool
        if isinstance(pool, SentinelConnectionPool):
            await pool.sentinel_manager.aclose()


def redis_client(url: str, settings: PoolLimits) -> redis.Redis:
    """A client on a blocking pool of REDIS_MAX_CONNECTIONS connections to the primary."""
    location = sentinel_location(url)
    if location is None:
        pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=settings.redis_max_connections,
            timeout=settings.redis_pool_timeout_seconds,
        )
        return redis.Redis(connection_pool=pool)
    sentinel = Sentinel(
        list(location.sentinels),
        sentinel_kwargs={
            "socket_timeout": SENTINEL_TIMEOUT_SECONDS,
            "socket_connect_timeout": SENTINEL_TIMEOUT_SECONDS,
        },
        **location.server_options(),
    )
    client: redis.Redis = sentinel.master_for(
        location.service_name,
        redis_class=_PrimaryClient,
        connection_pool_class=_BlockingSentinelPool,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_pool_timeout_seconds,
    )
    return client
