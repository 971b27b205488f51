"""Settings: read once from the environment into one frozen, validated object."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from urllib.parse import urlparse

import limits

from scoreboard.errors import ConfigError

MIN_JWT_SECRET_LENGTH = 32  # RFC 7518 §3.2: an HS256 key has at least 256 bits
MAX_SAFE_INTEGER = 2**53 - 1  # Number.MAX_SAFE_INTEGER: scores stay exact in JavaScript


class Mode(Enum):
    """How the process finds its queue and its board."""

    DISTRIBUTED = "distributed"  # RabbitMQ queue, Redis board, separate worker processes
    SINGLE_PROCESS = "single-process"  # in-memory queue and board, worker loop in the web process


@dataclass(frozen=True)
class Secret:
    """A value that never shows up in logs or reprs."""

    value: str = field(repr=False)

    def __repr__(self) -> str:
        return "Secret('**********')"


@dataclass(frozen=True)
class Settings:
    """Everything the web and worker processes read from the environment."""

    port: int = 3000
    redis_url: str | None = None
    rabbitmq_url: str | None = None
    jwt_secret: Secret = field(default_factory=lambda: Secret(secrets.token_urlsafe(48)))
    jwt_secret_generated: bool = False
    rate_limit: str = "100/minute"
    max_score_increment: int = 1_000_000
    redis_key_prefix: str = "scoreboard:"
    queue_name: str = "scoreboard.updates"
    worker_prefetch: int = 100
    log_level: str = "INFO"

    @property
    def mode(self) -> Mode:
        return Mode.SINGLE_PROCESS if self.redis_url is None else Mode.DISTRIBUTED

    @property
    def socketio_channel(self) -> str:
        """The Redis pub/sub channel web nodes and workers share for broadcasts."""
        return f"{self.redis_key_prefix}socketio"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `env` (default: os.environ); ConfigError names a bad variable."""
        env = os.environ if env is None else env
        reader = _EnvReader(env)
        redis_url = reader.url("REDIS_URL", schemes={"redis", "rediss", "unix"})
        rabbitmq_url = reader.url("RABBITMQ_URL", schemes={"amqp", "amqps"}) or reader.url(
            "CLOUDAMQP_URL", schemes={"amqp", "amqps"}
        )
        if (redis_url is None) != (rabbitmq_url is None):
            present, missing = (
                ("REDIS_URL", "RABBITMQ_URL") if redis_url else ("RABBITMQ_URL", "REDIS_URL")
            )
            raise ConfigError(
                f"{present} is set but {missing} is not: set both for the distributed mode, "
                "or neither for the single-process mode"
            )
        secret = reader.text("JWT_SECRET")
        generated = False
        if secret is None:
            if redis_url is not None:
                raise ConfigError("JWT_SECRET is required when REDIS_URL and RABBITMQ_URL are set")
            secret, generated = secrets.token_urlsafe(48), True
        if len(secret) < MIN_JWT_SECRET_LENGTH:
            raise ConfigError(
                f"JWT_SECRET must be at least {MIN_JWT_SECRET_LENGTH} characters long"
            )
        return cls(
            port=reader.integer("PORT", default=3000, low=1, high=65535),
            redis_url=redis_url,
            rabbitmq_url=rabbitmq_url,
            jwt_secret=Secret(secret),
            jwt_secret_generated=generated,
            rate_limit=reader.rate_limit("RATE_LIMIT", default="100/minute"),
            max_score_increment=reader.integer(
                "MAX_SCORE_INCREMENT", default=1_000_000, low=1, high=MAX_SAFE_INTEGER
            ),
            redis_key_prefix=reader.text("REDIS_KEY_PREFIX") or "scoreboard:",
            queue_name=reader.text("QUEUE_NAME") or "scoreboard.updates",
            worker_prefetch=reader.integer("WORKER_PREFETCH", default=100, low=1, high=10_000),
            log_level=reader.choice(
                "LOG_LEVEL", default="INFO", choices={"DEBUG", "INFO", "WARNING", "ERROR"}
            ),
        )


class _EnvReader:
    """Typed access to environment variables; empty values count as unset."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def text(self, name: str) -> str | None:
        value = self._env.get(name, "").strip()
        return value or None

    def integer(self, name: str, *, default: int, low: int, high: int) -> int:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
        if not low <= value <= high:
            raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
        return value

    def url(self, name: str, *, schemes: set[str]) -> str | None:
        raw = self.text(name)
        if raw is None:
            return None
        scheme = urlparse(raw).scheme
        if scheme not in schemes:
            allowed = ", ".join(sorted(f"{s}://" for s in schemes))
            raise ConfigError(f"{name} must start with one of {allowed}")
        return raw

    def rate_limit(self, name: str, *, default: str) -> str:
        raw = self.text(name) or default
        try:
            limits.parse(raw)
        except ValueError:
            raise ConfigError(f"{name} must look like '100/minute', got {raw!r}") from None
        return raw

    def choice(self, name: str, *, default: str, choices: set[str]) -> str:
        raw = (self.text(name) or default).upper()
        if raw not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(sorted(choices))}, got {raw!r}")
        return raw
