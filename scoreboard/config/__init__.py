"""Settings: read once from the environment into one frozen, validated object."""

from scoreboard.config.kinds import LOOPBACK_HOSTS
from scoreboard.config.secret import Secret
from scoreboard.config.settings import Mode, Settings
from scoreboard.config.variables import (
    CLASSIC_QUEUES,
    DEFAULT_METRICS_PORT,
    MAX_PRIORITY,
    MAX_SAFE_INTEGER,
    MIN_JWT_SECRET_LENGTH,
    QUORUM_QUEUES,
    VARIABLES,
)

__all__ = [
    "CLASSIC_QUEUES",
    "DEFAULT_METRICS_PORT",
    "LOOPBACK_HOSTS",
    "MAX_PRIORITY",
    "MAX_SAFE_INTEGER",
    "MIN_JWT_SECRET_LENGTH",
    "QUORUM_QUEUES",
    "VARIABLES",
    "Mode",
    "Secret",
    "Settings",
]
