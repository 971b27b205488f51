"""Every exception the package raises on purpose, and when.

ScoreboardError
├── ConfigError              a variable in the environment is missing or malformed
│   └── QueueLayoutConflict  a queue exists with another type or arguments than configured
├── ApiError                 a request is refused; carries the HTTP status and message
│   ├── AuthenticationFailed 401: token missing, malformed, badly signed, expired…
│   ├── InvalidRequest       400: body is not what the endpoint accepts
│   │   ├── InvalidScoreIncrement  400: scoreIncrement is not an allowed integer
│   │   └── InvalidQuery   400: a query parameter or path segment is not an accepted value
│   ├── ScoreOverflow        400: the total would pass Number.MAX_SAFE_INTEGER
│   ├── Forbidden            403: the token's user may not do this
│   ├── NotFound             404: nothing there (or the feature is not enabled here)
│   ├── IdempotencyConflict  409: an Idempotency-Key reused with another body, or in flight
│   ├── BoardConflict        409: a board cannot change that way (`global`; order of a full board)
│   ├── UnsupportedMediaType 415: the body comes in an encoding we do not read
│   ├── RateLimited          429: the user spent their allowance; carries retry_after
│   └── ServiceUnavailable   503: a backing service cannot take the request now
│       ├── Overloaded         this node has MAX_UPDATES_IN_FLIGHT updates under way already
│       ├── QueueUnavailable   the broker did not confirm the message
│       ├── StoreUnavailable   Redis did not answer
│       ├── LedgerUnavailable  PostgreSQL did not answer
│       └── SeasonUnknown      Redis lost a board's live season number; restore it, then retry
├── BoardOutOfSync           Redis lost the board the ledger holds; rebuild before applying
├── SeasonClosed             an update of a season archived as closed: the ledger keeps it alone
├── PoisonMessage            a queued message cannot be decoded into a ScoreUpdate
└── UpdateRejected           the store refuses updates for a reason retrying will not fix
"""

from __future__ import annotations


class ScoreboardError(Exception):
    """Base of every error raised on purpose by this package."""


class ConfigError(ScoreboardError):
    """An environment variable is missing or malformed; the message names it."""


class QueueLayoutConflict(ConfigError):
    """A queue exists in the broker with another type or other arguments than configured.

    RabbitMQ cannot change either in place: web and worker processes exit with os.EX_CONFIG.
    """


class ApiError(ScoreboardError):
    """A request is refused with `status` and a client-facing `message`."""

    status: int = 400
    message: str = "Bad request"

    def __init__(self, message: str | None = None) -> None:
        if message is not None:
            self.message = message
        super().__init__(self.message)


class AuthenticationFailed(ApiError):
    """The bearer token is missing or does not verify."""

    status = 401
    message = "Authentication failed"


class InvalidRequest(ApiError):
    """The request body is not a JSON object of the documented shape."""

    status = 400
    message = "Invalid request body"


class InvalidScoreIncrement(InvalidRequest):
    """`scoreIncrement` is not an integer from 1 to MAX_SCORE_INCREMENT."""

    message = "Invalid score increment"


class InvalidQuery(InvalidRequest):
    """A query parameter or path segment of a read is not a value the endpoint accepts."""

    message = "Invalid query"


class ScoreOverflow(ApiError):
    """Applying the increment would take the total past 2**53 - 1."""

    status = 400
    message = "Score would exceed the maximum safe integer (9007199254740991)"


class Forbidden(ApiError):
    """The authenticated user tries to act for someone else."""

    status = 403
    message = "Forbidden"


class NotFound(ApiError):
    """What the request asks for does not exist on this deployment."""

    status = 404
    message = "Not found"


class BoardConflict(ApiError):
    """The board cannot change that way: it is `global`, or it has scores the change would
    rank differently."""

    status = 409
    message = "Board conflict"


class UnsupportedMediaType(ApiError):
    """The body's Content-Encoding is not one this service decodes."""

    status = 415
    message = "Unsupported media type"


class IdempotencyConflict(ApiError):
    """The Idempotency-Key was used for a different request, or its request is still running."""

    status = 409
    message = "Idempotency-Key conflict"


class RateLimited(ApiError):
    """The user is over the rate limit; retry after `retry_after` seconds."""

    status = 429
    message = "Too many requests"

    def __init__(self, retry_after: int) -> None:
        super().__init__()
        self.retry_after = retry_after


class ServiceUnavailable(ApiError):
    """A backing service cannot take the request now; retrying later may work."""

    status = 503
    message = "Service temporarily unavailable"
    retry_after = 2


class Overloaded(ServiceUnavailable):
    """This web node sheds load: it works on MAX_UPDATES_IN_FLIGHT updates already."""

    message = "Server busy, try again"
    retry_after = 1


class QueueUnavailable(ServiceUnavailable):
    """The broker did not confirm the message in time, or refused it."""

    message = "Score update could not be queued, try again"


class StoreUnavailable(ServiceUnavailable):
    """Redis did not answer."""

    message = "Leaderboard store unavailable, try again"


class LedgerUnavailable(ServiceUnavailable):
    """PostgreSQL did not answer."""

    message = "Ledger (PostgreSQL) unavailable, try again"


class SeasonUnknown(ServiceUnavailable):
    """Redis lost a board's live season number (a ledger records it): restore it, then retry."""

    message = "Board is being restored, try again"
    retry_after = 1


class SeasonClosed(ScoreboardError):
    """A late update of a board's season already archived as closed: recorded in the ledger's
    season, not brought back to Redis."""


class BoardOutOfSync(ScoreboardError):
    """Redis lost the board the ledger holds (e.g. a restart without persistence)."""


class PoisonMessage(ScoreboardError):
    """A message from the queue cannot be decoded into a ScoreUpdate."""


class UpdateRejected(ScoreboardError):
    """The store refuses updates for a reason retrying will not fix (not an outage)."""
