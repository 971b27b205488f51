"""REDIS_URL through Sentinel: one URL form, read alike here and by python-socketio."""

from __future__ import annotations

import pytest
import redis.asyncio as redis
from redis.asyncio.sentinel import SentinelConnectionPool
from socketio.redis_manager import parse_redis_sentinel_url

from scoreboard.config import Settings
from scoreboard.errors import ConfigError
from scoreboard.redis_connection import SentinelLocation, redis_client, sentinel_location

DISTRIBUTED = {
    "REDIS_URL": "redis://localhost:6379/0",
    "RABBITMQ_URL": "amqp://guest:guest@localhost:5672/",
    "JWT_SECRET": "x" * 32,
}
ACCEPTED = {
    "redis+sentinel://:s3cret@10.0.0.1:26379,10.0.0.2:26380/0/mymaster": SentinelLocation(
        (("10.0.0.1", 26379), ("10.0.0.2", 26380)), "mymaster", 0, None, "s3cret"
    ),
    "redis+sentinel://sentinel-a.internal:26379/3/scores": SentinelLocation(
        (("sentinel-a.internal", 26379),), "scores", 3
    ),
    "redis+sentinel://app:s3cret@h1:1,h2:2,h3:3/15/svc": SentinelLocation(
        (("h1", 1), ("h2", 2), ("h3", 3)), "svc", 15, "app", "s3cret"
    ),
}
REFUSED = {
    "redis+sentinel://h:26379/mymaster": "the path must be /db/service_name",
    "redis+sentinel://h:26379/mymaster/0": "the path must be /db/service_name",
    "redis+sentinel://:s3cret@h:26379/0/": "the path must be /db/service_name",
    "redis+sentinel://h:26379/0/a/b": "the path must be /db/service_name",
    "redis+sentinel://:s3cret@h/0/mymaster": "each Sentinel must be host:port",
    "redis+sentinel://h:26379,/0/mymaster": "each Sentinel must be host:port",
    "redis+sentinel://[::1]:26379/0/mymaster": "each Sentinel must be host:port",
    "redis+sentinel://h:70000/0/mymaster": "port must be from 1 to 65535",
    "redis+sentinel://h:26379/16/mymaster": "database number must be from 0 to 15",
    "redis+sentinel://h:26379/0/mymaster?ssl=true": "takes no ?options",
}


@pytest.mark.parametrize(("url", "location"), ACCEPTED.items())
def test_a_sentinel_url_names_the_sentinels_the_service_and_how_to_log_in(
    url: str, location: SentinelLocation
):
    assert sentinel_location(url) == location
    assert Settings.from_env({**DISTRIBUTED, "REDIS_URL": url}).redis_url == url


@pytest.mark.parametrize(("url", "location"), ACCEPTED.items())
def test_python_socketio_reads_every_accepted_url_as_the_store_does(
    url: str, location: SentinelLocation
):
    # The broadcast channel gets REDIS_URL as it is: both readings must agree.
    sentinels, service_name, options = parse_redis_sentinel_url(url)
    assert [tuple(s) for s in sentinels] == list(location.sentinels)
    assert service_name == location.service_name
    assert options == location.server_options()


@pytest.mark.parametrize(("url", "reason"), REFUSED.items())
def test_a_malformed_sentinel_url_stops_start_up_saying_why_without_the_password(
    url: str, reason: str
):
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({**DISTRIBUTED, "REDIS_URL": url})
    message = str(refused.value)
    assert message.startswith("REDIS_URL must be") and reason in message, message
    assert "s3cret" not in message


def test_a_plain_url_is_no_sentinel_url():
    for url in ("redis://localhost:6379/0", "rediss://:pw@host:6380", "unix:///tmp/redis.sock"):
        assert sentinel_location(url) is None


async def test_through_sentinel_the_pool_still_waits_for_a_free_connection():
    url = "redis+sentinel://:s3cret@127.0.0.1:26379/2/mymaster"
    settings = Settings.from_env({**DISTRIBUTED, "REDIS_URL": url, "REDIS_MAX_CONNECTIONS": "7"})
    client = redis_client(url, settings)  # nothing connects until the first command
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool) and pool.service_name == "mymaster"
    assert isinstance(pool, redis.BlockingConnectionPool) and pool.max_connections == 7
    assert pool.timeout == settings.redis_pool_timeout_seconds
    assert (pool.connection_kwargs["db"], pool.connection_kwargs["password"]) == (2, "s3cret")
    await client.aclose()
