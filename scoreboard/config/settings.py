"""Settings: the declared variables read once into one frozen object, with the rules across them."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from enum import Enum
from typing import Any

from scoreboard.config import variables as var
from scoreboard.config.secret import Secret
from scoreboard.config.variable import VARIABLE, Variable
from scoreboard.errors import ConfigError


class Mode(Enum):
    """How the process finds its queue and its board."""

    DISTRIBUTED = "distributed"  # RabbitMQ queue, Redis board, separate worker processes
    SINGLE_PROCESS = "single-process"  # in-memory queue and board, worker loop in the web process


def generated_secret() -> Secret:
    """A JWT secret for one run, when none is configured."""
    return Secret(secrets.token_urlsafe(48))


@dataclass(frozen=True)
class Settings:
    """Everything the web and worker processes read from the environment."""

    port: int = var.PORT.field()
    host: str | None = var.HOST.field()
    reuse_port: bool = var.REUSE_PORT.field()
    ops_port: int | None = var.OPS_PORT.field()
    redis_url: str | None = var.REDIS_URL.field()  # with REDIS_TLS_VERIFY: see from_env
    redis_tls_verify: bool = var.REDIS_TLS_VERIFY.field()
    rabbitmq_urls: tuple[str, ...] = var.RABBITMQ_URL.field()  # else CLOUDAMQP_URL: see from_env
    database_url: str | None = var.DATABASE_URL.field()
    jwt_secret: Secret = field(default_factory=generated_secret)  # JWT_SECRET: see from_env
    jwt_secret_generated: bool = False
    jwt_public_key: str | None = var.JWT_PUBLIC_KEY.field(in_repr=False)  # public, but long
    jwks_url: str | None = var.JWKS_URL.field()
    jwt_issuer: str | None = var.JWT_ISSUER.field()
    jwt_audience: str | None = var.JWT_AUDIENCE.field()
    jwt_require_exp: bool = var.JWT_REQUIRE_EXP.field()
    jwt_leeway_seconds: int = var.JWT_LEEWAY_SECONDS.field()
    rate_limit: str = var.RATE_LIMIT.field()
    read_rate_limit: str = var.READ_RATE_LIMIT.field()
    tier_rate_limits: tuple[tuple[str, str], ...] = var.RATE_LIMITS.field()
    tier_priorities: tuple[tuple[str, int], ...] = var.TIER_PRIORITIES.field()
    max_score_increment: int = var.MAX_SCORE_INCREMENT.field()
    max_score: int = var.MAX_SCORE.field()
    redis_key_prefix: str = var.REDIS_KEY_PREFIX.field()
    queue_name: str = var.QUEUE_NAME.field()
    queue_type: str = var.QUEUE_TYPE.field()
    queue_delivery_limit: int = var.QUEUE_DELIVERY_LIMIT.field()
    worker_prefetch: int = var.WORKER_PREFETCH.field()
    closed_seasons_kept: int = var.CLOSED_SEASONS_KEPT.field()
    broadcast_hz: float = var.BROADCAST_HZ.field()
    fan_out_frames_per_second: int = var.FAN_OUT_FRAMES_PER_SECOND.field()
    redis_max_connections: int = var.REDIS_MAX_CONNECTIONS.field()
    redis_pool_timeout_seconds: float = var.REDIS_POOL_TIMEOUT_SECONDS.field()
    max_updates_in_flight: int = var.MAX_UPDATES_IN_FLIGHT.field()
    group_commit_wait_ms: int = var.GROUP_COMMIT_WAIT_MS.field()
    queue_signing_key: Secret | None = var.QUEUE_SIGNING_KEY.field()
    log_level: str = var.LOG_LEVEL.field()
    log_format: str = var.LOG_FORMAT.field()  # json when DYNO is set: see from_env
    metrics_port: int = var.METRICS_PORT.field()
    metrics_token: Secret | None = var.METRICS_TOKEN.field()
    force_https: bool = var.FORCE_HTTPS.field()
    tls_cert_file: str | None = var.TLS_CERT_FILE.field()
    tls_key_file: str | None = var.TLS_KEY_FILE.field()
    cors_allowed_origins: tuple[str, ...] = var.CORS_ALLOWED_ORIGINS.field()

    def __post_init__(self) -> None:
        if self.ops_port is not None and self.ops_port == self.port:
            raise ConfigError(
                f"{var.OPS_PORT.name} must differ from {var.PORT.name}: it serves /metrics and "
                "/readyz"
            )
        if self.reuse_port and self.redis_url is None:
            raise ConfigError(
                f"{var.REUSE_PORT.name} needs {var.REDIS_URL.name} and {var.RABBITMQ_URL.name}: "
                "processes in the single-process mode sharing a port would each keep a board of "
                "their own"
            )

    @property
    def mode(self) -> Mode:
        return Mode.SINGLE_PROCESS if self.redis_url is None else Mode.DISTRIBUTED

    @property
    def keeps_ledger(self) -> bool:
        """PostgreSQL records every applied update (distributed mode with DATABASE_URL)."""
        return self.database_url is not None and self.mode is Mode.DISTRIBUTED

    def priority_of(self, tier: str | None) -> int:
        """The queue priority of a user's updates, from TIER_PRIORITIES (0 when unlisted)."""
        return dict(self.tier_priorities).get(tier or "", 0)

    @property
    def socketio_channel(self) -> str:
        """The Redis pub/sub channel web nodes and workers share for broadcasts."""
        return f"{self.redis_key_prefix}socketio"

    @property
    def hs256_secret(self) -> str | None:
        """The key HS256 tokens are checked with; None when only public keys are trusted."""
        # A secret generated in distributed mode differs per process: no token could carry it.
        if self.jwt_secret_generated and self.mode is Mode.DISTRIBUTED:
            return None
        return self.jwt_secret.value

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `env` (default: os.environ); ConfigError names a bad variable."""
        env = os.environ if env is None else env
        settings = cls(
            **{
                each.name: each.metadata[VARIABLE].read(env)
                for each in fields(cls)
                if VARIABLE in each.metadata
            }
        )
        # Read even when RABBITMQ_URL makes it moot: a malformed value stops start-up anyway.
        cloudamqp_url = var.CLOUDAMQP_URL.read(env)
        rabbitmq_urls = settings.rabbitmq_urls or ((cloudamqp_url,) if cloudamqp_url else ())
        # Name the variable that was set: on Heroku that is often CLOUDAMQP_URL alone.
        broker = (
            var.RABBITMQ_URL if settings.rabbitmq_urls or not cloudamqp_url else var.CLOUDAMQP_URL
        )
        _both_or_neither(
            (var.REDIS_URL, settings.redis_url),
            (broker, rabbitmq_urls or None),
            "set both for the distributed mode, or neither for the single-process mode",
        )
        _both_or_neither(
            (var.TLS_CERT_FILE, settings.tls_cert_file),
            (var.TLS_KEY_FILE, settings.tls_key_file),
            "set both to serve HTTPS, or neither",
        )
        secret = var.JWT_SECRET.read(env)
        if (
            secret is None
            and settings.redis_url is not None
            and settings.jwt_public_key is None
            and settings.jwks_url is None
        ):
            raise ConfigError(
                f"{var.JWT_SECRET.name}, {var.JWT_PUBLIC_KEY.name} or {var.JWKS_URL.name} is "
                f"required when {var.REDIS_URL.name} and {var.RABBITMQ_URL.name} are set"
            )
        log_format = settings.log_format
        if var.DYNO.read(env) is not None and not var.LOG_FORMAT.is_set(env):
            log_format = "json"
        redis_url = settings.redis_url
        if not settings.redis_tls_verify:
            redis_url = _tls_unverified(redis_url)
        return replace(
            settings,
            redis_url=redis_url,
            rabbitmq_urls=rabbitmq_urls,
            jwt_secret=secret or generated_secret(),
            jwt_secret_generated=secret is None,
            log_format=log_format,
        )


def _tls_unverified(url: str | None) -> str | None:
    """A rediss:// URL whose server certificate redis-py (and so python-socketio) won't check."""
    if url is None or not url.startswith("rediss://") or "ssl_cert_reqs=" in url:
        return url
    return url + ("&" if "?" in url else "?") + "ssl_cert_reqs=none"


def _both_or_neither(
    first: tuple[Variable[Any], object | None],
    second: tuple[Variable[Any], object | None],
    advice: str,
) -> None:
    (first_variable, first_value), (second_variable, second_value) = first, second
    if (first_value is None) != (second_value is None):
        present, missing = (
            (first_variable, second_variable)
            if first_value is not None
            else (second_variable, first_variable)
        )
        raise ConfigError(f"{present.name} is set but {missing.name} is not: {advice}")
