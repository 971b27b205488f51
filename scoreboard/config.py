"""Settings: read once from the environment into one frozen, validated object."""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from urllib.parse import urlparse

from scoreboard.errors import ConfigError
from scoreboard.intake.rate_policy import checked_rate_limit
from scoreboard.intake.verification_keys import public_key_from_pem

MIN_JWT_SECRET_LENGTH = 32  # RFC 7518 §3.2: an HS256 key has at least 256 bits
MAX_SAFE_INTEGER = 2**53 - 1  # Number.MAX_SAFE_INTEGER: scores stay exact in JavaScript
MAX_PRIORITY = 9  # RabbitMQ's x-max-priority: a few levels cost little, many cost memory and CPU
LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}
DEFAULT_METRICS_PORT = 9464  # not 9100: node_exporter, often on the same host, has that one
_PRIORITY_DIGITS = frozenset(str(priority) for priority in range(MAX_PRIORITY + 1))
_HOST_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


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
    host: str | None = None  # the web node's address to listen on; None: every interface
    ops_port: int | None = None  # when set, /metrics and /readyz are served there, not on `port`
    redis_url: str | None = None
    rabbitmq_url: str | None = None
    database_url: str | None = None
    jwt_secret: Secret = field(default_factory=lambda: Secret(secrets.token_urlsafe(48)))
    jwt_secret_generated: bool = False
    jwt_public_key: str | None = field(default=None, repr=False)  # PEM text: public, but long
    jwks_url: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_require_exp: bool = True
    jwt_leeway_seconds: int = 30
    rate_limit: str = "100/minute"
    read_rate_limit: str = "600/minute"
    tier_rate_limits: tuple[tuple[str, str], ...] = ()  # (tier, limit) pairs from RATE_LIMITS
    tier_priorities: tuple[tuple[str, int], ...] = ()  # (tier, priority) from TIER_PRIORITIES
    max_score_increment: int = 1_000_000
    redis_key_prefix: str = "scoreboard:"
    queue_name: str = "scoreboard.updates"
    worker_prefetch: int = 100
    broadcast_hz: float = 10.0  # 0: push every change at once
    queue_signing_key: Secret | None = None
    log_level: str = "INFO"
    log_format: str = "text"  # or "json"; json by default on Heroku-style platforms (DYNO set)
    metrics_port: int = DEFAULT_METRICS_PORT  # the worker's /metrics; 0: none
    metrics_token: Secret | None = None  # when set, /metrics needs `Authorization: Bearer <it>`
    force_https: bool = True
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    cors_allowed_origins: tuple[str, ...] = ()  # empty: same origin only; ("*",): any

    def __post_init__(self) -> None:
        if self.ops_port is not None and self.ops_port == self.port:
            raise ConfigError("OPS_PORT must differ from PORT: it serves /metrics and /readyz")

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
        public_key = reader.public_key("JWT_PUBLIC_KEY")
        jwks_url = reader.https_url("JWKS_URL")
        generated = False
        if secret is None:
            if redis_url is not None and public_key is None and jwks_url is None:
                raise ConfigError(
                    "JWT_SECRET, JWT_PUBLIC_KEY or JWKS_URL is required when REDIS_URL and "
                    "RABBITMQ_URL are set"
                )
            secret, generated = secrets.token_urlsafe(48), True
        if len(secret) < MIN_JWT_SECRET_LENGTH:
            raise ConfigError(
                f"JWT_SECRET must be at least {MIN_JWT_SECRET_LENGTH} characters long"
            )
        tls_cert_file, tls_key_file = reader.both_or_neither(
            "TLS_CERT_FILE", "TLS_KEY_FILE", purpose="serve HTTPS"
        )
        return cls(
            port=reader.integer("PORT", default=3000, low=1, high=65535),
            host=reader.host("HOST"),
            ops_port=reader.optional_port("OPS_PORT"),
            redis_url=redis_url,
            rabbitmq_url=rabbitmq_url,
            database_url=reader.url("DATABASE_URL", schemes={"postgres", "postgresql"}),
            jwt_secret=Secret(secret),
            jwt_secret_generated=generated,
            jwt_public_key=public_key,
            jwks_url=jwks_url,
            jwt_issuer=reader.text("JWT_ISSUER"),
            jwt_audience=reader.text("JWT_AUDIENCE"),
            jwt_require_exp=reader.flag("JWT_REQUIRE_EXP", default=True),
            jwt_leeway_seconds=reader.integer("JWT_LEEWAY_SECONDS", default=30, low=0, high=300),
            rate_limit=reader.rate_limit("RATE_LIMIT", default="100/minute"),
            read_rate_limit=reader.rate_limit("READ_RATE_LIMIT", default="600/minute"),
            tier_rate_limits=reader.tier_rate_limits("RATE_LIMITS"),
            tier_priorities=reader.tier_priorities("TIER_PRIORITIES"),
            max_score_increment=reader.integer(
                "MAX_SCORE_INCREMENT", default=1_000_000, low=1, high=MAX_SAFE_INTEGER
            ),
            redis_key_prefix=reader.text("REDIS_KEY_PREFIX") or "scoreboard:",
            queue_name=reader.text("QUEUE_NAME") or "scoreboard.updates",
            worker_prefetch=reader.integer("WORKER_PREFETCH", default=100, low=1, high=10_000),
            broadcast_hz=reader.decimal("BROADCAST_HZ", default=10.0, low=0.0, high=1000.0),
            queue_signing_key=reader.secret("QUEUE_SIGNING_KEY", min_length=32),
            log_level=reader.choice(
                "LOG_LEVEL", default="INFO", choices={"DEBUG", "INFO", "WARNING", "ERROR"}
            ),
            log_format=reader.choice(
                "LOG_FORMAT", default="JSON" if "DYNO" in env else "TEXT", choices={"JSON", "TEXT"}
            ).lower(),
            metrics_port=reader.integer(
                "METRICS_PORT", default=DEFAULT_METRICS_PORT, low=0, high=65535
            ),
            metrics_token=reader.secret("METRICS_TOKEN", min_length=16),
            force_https=reader.flag("FORCE_HTTPS", default=True),
            tls_cert_file=tls_cert_file,
            tls_key_file=tls_key_file,
            cors_allowed_origins=reader.origins("CORS_ALLOWED_ORIGINS"),
        )


class _EnvReader:
    """Typed access to environment variables; empty values count as unset."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def text(self, name: str) -> str | None:
        value = self._env.get(name, "").strip()
        return value or None

    def secret(self, name: str, *, min_length: int) -> Secret | None:
        value = self.text(name)
        if value is None:
            return None
        if len(value) < min_length:
            raise ConfigError(f"{name} must be at least {min_length} characters long")
        return Secret(value)

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

    def optional_port(self, name: str) -> int | None:
        if self.text(name) is None:
            return None
        return self.integer(name, default=0, low=1, high=65535)

    def host(self, name: str) -> str | None:
        """An IP address or a host name to listen on."""
        raw = self.text(name)
        if raw is None:
            return None
        try:
            ipaddress.ip_address(raw)
        except ValueError:
            if not _HOST_NAME.fullmatch(raw):
                raise ConfigError(
                    f"{name} must be an IP address (0.0.0.0, ::, 127.0.0.1) or a host name, "
                    f"got {raw!r}"
                ) from None
        return raw

    def decimal(self, name: str, *, default: float, low: float, high: float) -> float:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None
        if not low <= value <= high:
            raise ConfigError(f"{name} must be between {low:g} and {high:g}, got {raw}")
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

    def public_key(self, name: str) -> str | None:
        raw = self.text(name)
        if raw is None:
            return None
        # Many environments cannot hold a multi-line value: a literal backslash-n stands for one.
        pem = raw.replace("\\n", "\n").strip()
        try:
            public_key_from_pem(pem)
        except ValueError as exc:
            raise ConfigError(
                f"{name} must be a PEM RSA (2048 bits or more) or EC P-256 public key: {exc}"
            ) from None
        return pem

    def https_url(self, name: str) -> str | None:
        raw = self.url(name, schemes={"https", "http"})
        if raw is None:
            return None
        # Whoever can alter the key set in transit can sign any token.
        if urlparse(raw).scheme == "http" and urlparse(raw).hostname not in LOOPBACK_HOSTS:
            raise ConfigError(f"{name} must start with https:// (http:// only for localhost)")
        return raw

    def rate_limit(self, name: str, *, default: str) -> str:
        raw = self.text(name) or default
        try:
            return checked_rate_limit(raw)
        except ValueError as exc:
            raise ConfigError(f"{name}: {exc}") from None

    def choice(self, name: str, *, default: str, choices: set[str]) -> str:
        raw = (self.text(name) or default).upper()
        if raw not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(sorted(choices))}, got {raw!r}")
        return raw

    def flag(self, name: str, *, default: bool) -> bool:
        raw = self.text(name)
        if raw is None:
            return default
        if raw.lower() in {"1", "true", "yes", "on"}:
            return True
        if raw.lower() in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{name} must be 1 or 0 (also true/false, yes/no, on/off), got {raw!r}")

    def both_or_neither(
        self, first: str, second: str, *, purpose: str
    ) -> tuple[str | None, str | None]:
        values = self.text(first), self.text(second)
        if (values[0] is None) != (values[1] is None):
            present, missing = (first, second) if values[0] is not None else (second, first)
            raise ConfigError(
                f"{present} is set but {missing} is not: set both to {purpose}, or neither"
            )
        return values

    def tier_rate_limits(self, name: str) -> tuple[tuple[str, str], ...]:
        """'free:100/minute,premium:300/minute' as (tier, limit) pairs."""
        pairs = []
        for item in filter(None, (part.strip() for part in (self.text(name) or "").split(","))):
            tier, _, limit = item.partition(":")
            try:
                checked_rate_limit(limit.strip())
            except ValueError as exc:
                raise ConfigError(
                    f"{name} must look like 'free:100/minute,premium:300/minute', got {item!r}: "
                    f"{exc}"
                ) from None
            if not tier.strip():
                raise ConfigError(f"{name} has a limit without a tier: {item!r}")
            pairs.append((tier.strip(), limit.strip()))
        return tuple(pairs)

    def tier_priorities(self, name: str) -> tuple[tuple[str, int], ...]:
        """'free=0,premium=5' as (tier, priority) pairs, priorities 0 to MAX_PRIORITY."""
        pairs = []
        for item in filter(None, (part.strip() for part in (self.text(name) or "").split(","))):
            tier, _, priority = item.partition("=")
            if not tier.strip() or priority.strip() not in _PRIORITY_DIGITS:
                raise ConfigError(
                    f"{name} must look like 'free=0,premium=5' (priorities 0 to {MAX_PRIORITY}), "
                    f"got {item!r}"
                )
            pairs.append((tier.strip(), int(priority)))
        return tuple(pairs)

    def origins(self, name: str) -> tuple[str, ...]:
        raw = self.text(name) or ""
        # Browsers send Origin lower-case, as scheme://host[:port] and nothing more.
        origins = tuple(item.strip().lower() for item in raw.split(",") if item.strip())
        if origins == ("*",):
            return origins
        for origin in origins:
            parsed = urlparse(origin)
            if (
                parsed.scheme not in {"http", "https"}
                or not parsed.hostname
                or "@" in origin
                or "*" in origin
                or origin != f"{parsed.scheme}://{parsed.netloc}"
            ):
                raise ConfigError(
                    f"{name} must be * or a comma-separated list of origins such as "
                    f"https://game.example, got {origin!r}"
                )
        return origins
