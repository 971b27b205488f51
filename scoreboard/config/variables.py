"""Every environment variable the processes read, declared once: docs and Settings derive."""

from __future__ import annotations

from typing import Any

from scoreboard.config.kinds import (
    Anything,
    Choice,
    Decimal,
    Flag,
    Host,
    Integer,
    KeySetUrl,
    Origins,
    PublicKeyPem,
    QueueName,
    RateLimit,
    RedisUrl,
    SecretText,
    Text,
    TierMap,
    Url,
    UrlList,
)
from scoreboard.config.secret import Secret
from scoreboard.config.variable import Variable

MIN_JWT_SECRET_LENGTH = 32  # RFC 7518 §3.2: an HS256 key has at least 256 bits
MAX_SAFE_INTEGER = 2**53 - 1  # Number.MAX_SAFE_INTEGER: scores stay exact in JavaScript
MAX_PRIORITY = 9  # RabbitMQ's x-max-priority: a few levels cost little, many cost memory and CPU
CLASSIC_QUEUES = "classic"  # RabbitMQ's queue types (x-queue-type) the update queue may be
QUORUM_QUEUES = "quorum"
DEFAULT_METRICS_PORT = 9464  # not 9100: node_exporter, often on the same host, has that one
# AMQP names are short strings (255 bytes); the dead-letter queue adds ".dead", the longest of
# the suffixes queue/queue_layout.py adds (a quorum queue of a priority level adds ".p9").
MAX_QUEUE_NAME_BYTES = 255 - len(".dead")

_PORT = Integer(1, 65535)

PORT = Variable("PORT", _PORT, 3000, "HTTP port of the web process")
HOST: Variable[str | None] = Variable(
    "HOST",
    Host(),
    None,
    "the address the web process listens on, e.g. `127.0.0.1` behind a proxy on the same "
    "machine; unset: every interface, which containers and Heroku need",
)
REUSE_PORT = Variable(
    "REUSE_PORT",
    Flag(),
    False,
    "`1` lets several web processes on one machine listen on the same `PORT` (`SO_REUSEPORT`, "
    "Linux): the kernel spreads new connections over them, so one port uses every core. "
    "Distributed mode only; give each process its own `OPS_PORT` to scrape it. See [Scaling "
    "out](scaling.md#several-web-processes-behind-one-port)",
)
OPS_PORT: Variable[int | None] = Variable(
    "OPS_PORT",
    _PORT,
    None,
    "a second port of the web process, other than `PORT`, for `/metrics` and `/readyz` (and "
    "`/healthz`) only; on `PORT` those two then answer 404. See [Metrics](operations.md#metrics)",
)
REDIS_URL: Variable[str | None] = Variable(
    "REDIS_URL",
    RedisUrl(),
    None,
    "the board, the rate limits and the broadcasts; `redis+sentinel://` names a primary kept by "
    "Sentinel, followed through failovers ([High availability](../README.md#high-availability)). "
    "Set it and `RABBITMQ_URL` for the distributed mode, neither for the single-process mode; "
    "one without the other refuses to start. Heroku Redis presents a self-signed certificate: "
    "set `REDIS_TLS_VERIFY=0` with it",
    secret=True,
)
REDIS_TLS_VERIFY = Variable(
    "REDIS_TLS_VERIFY",
    Flag(),
    True,
    "`0` accepts any certificate from a `rediss://` `REDIS_URL` (still encrypted, but not proof "
    "of whom it speaks to): for Heroku Redis, whose certificate is self-signed. The same as "
    "`?ssl_cert_reqs=none` on the URL",
)
RABBITMQ_URL: Variable[tuple[str, ...]] = Variable(
    "RABBITMQ_URL",
    UrlList(Url(("amqp", "amqps"))),
    (),
    "the broker of the update queue; for a cluster, one URL per node separated by commas: a "
    "process connects to the first that answers and, when that connection drops, to the next "
    "([High availability](high-availability.md)). Unset: `CLOUDAMQP_URL`",
    secret=True,
)
CLOUDAMQP_URL: Variable[str | None] = Variable(
    "CLOUDAMQP_URL",
    Url(("amqp", "amqps")),
    None,
    "set by Heroku's CloudAMQP add-on; used when `RABBITMQ_URL` is unset",
    secret=True,
)
DATABASE_URL: Variable[str | None] = Variable(
    "DATABASE_URL",
    Url(("postgres", "postgresql")),
    None,
    "the [ledger](ledger.md) (distributed mode only; Heroku Postgres sets it)",
    secret=True,
)
JWT_SECRET: Variable[Secret | None] = Variable(
    "JWT_SECRET",
    SecretText(MIN_JWT_SECRET_LENGTH),
    None,
    "HS256 key of the tokens (RFC 7518 asks for 256 bits). Unset: generated for the run in the "
    "single-process mode; the distributed mode needs it, `JWT_PUBLIC_KEY` or `JWKS_URL`",
    secret=True,
)
JWT_PUBLIC_KEY: Variable[str | None] = Variable(
    "JWT_PUBLIC_KEY",
    PublicKeyPem(),
    None,
    "the auth service's public key: an RSA key verifies RS256 tokens, an EC key ES256 tokens",
)
JWKS_URL: Variable[str | None] = Variable(
    "JWKS_URL",
    KeySetUrl(),
    None,
    "the auth service's JWKS document (see [Tokens](security.md#tokens))",
)
JWT_ISSUER: Variable[str | None] = Variable(
    "JWT_ISSUER", Text(), None, "when set, a token's `iss` must equal it"
)
JWT_AUDIENCE: Variable[str | None] = Variable(
    "JWT_AUDIENCE",
    Text(),
    None,
    "when set, a token's `aud` must be or contain it; when unset, `aud` is not checked",
)
JWT_REQUIRE_EXP = Variable("JWT_REQUIRE_EXP", Flag(), True, "`0` also accepts tokens without `exp`")
JWT_LEEWAY_SECONDS = Variable(
    "JWT_LEEWAY_SECONDS",
    Integer(0, 300),
    30,
    "clock skew allowed when checking `exp`, `nbf` and `iat`",
)
RATE_LIMIT = Variable(
    "RATE_LIMIT",
    RateLimit(),
    "100/minute",
    "score updates per user, e.g. `10/second`, `1000/hour` ([why these bounds]"
    "(input-rules.md#rate-limits-checked_rate_limit-in-scoreboardintakerate_policypy))",
)
RATE_LIMITS = Variable(
    "RATE_LIMITS",
    TierMap(":", "limit", RateLimit(), "free:100/minute,premium:300/minute"),
    (),
    "per-tier write limits: the token's `tier` claim picks one, `RATE_LIMIT` covers the rest. "
    "Admins override them at runtime (see [Tiers and the admin API]"
    "(admin.md))",
)
READ_RATE_LIMIT = Variable(
    "READ_RATE_LIMIT",
    RateLimit(),
    "600/minute",
    "reads per user (`GET /api/leaderboard`, `GET /api/users/{userId}/rank`), counted apart "
    "from score updates",
)
TIER_PRIORITIES = Variable(
    "TIER_PRIORITIES",
    TierMap("=", "priority", Integer(0, MAX_PRIORITY), "free=0,premium=5"),
    (),
    "queue priority per tier, 0 for tiers not listed: at peak, higher tiers' updates overtake "
    "a backlog of lower ones",
)
MAX_SCORE_INCREMENT = Variable(
    "MAX_SCORE_INCREMENT",
    Integer(1, MAX_SAFE_INTEGER),
    1_000_000,
    "largest accepted `scoreIncrement`",
)
MAX_SCORE = Variable(
    "MAX_SCORE",
    Integer(1, MAX_SAFE_INTEGER),
    MAX_SAFE_INTEGER,
    "largest `score` posted to a `best` or `set` board (an `incr` board takes increments up to "
    "`MAX_SCORE_INCREMENT`)",
)
REDIS_KEY_PREFIX = Variable(
    "REDIS_KEY_PREFIX",
    Text(),
    "scoreboard:",
    "prefix of every Redis key and of the pub/sub channels of the pushes. Distinct prefixes and "
    "`QUEUE_NAME`s let several deployments (or test runs) share one Redis and one broker",
)
QUEUE_NAME = Variable(
    "QUEUE_NAME",
    QueueName(MAX_QUEUE_NAME_BYTES),
    "scoreboard.updates",
    "RabbitMQ queue of the updates; its dead-letter queue is `<name>.dead`. With "
    "`QUEUE_TYPE=quorum` the updates of priority level n > 0 have a queue `<name>.p<n>`",
)
QUEUE_TYPE = Variable(
    "QUEUE_TYPE",
    Choice((CLASSIC_QUEUES, QUORUM_QUEUES)),
    CLASSIC_QUEUES,
    "`quorum` replicates the update and dead-letter queues over the nodes of a RabbitMQ cluster, "
    "one queue per priority level; `classic` is one queue on one node. An existing queue keeps "
    "its type: see [changing it](high-availability.md#changing-the-queue-type)",
)
QUEUE_DELIVERY_LIMIT = Variable(
    "QUEUE_DELIVERY_LIMIT",
    Integer(0, 1000),
    4,
    "times a message goes back to the queue and out again because its worker died or lost "
    "its connection holding it; the next time it comes back, it goes to the dead-letter queue. "
    "Counted by the broker on quorum queues (`x-delivery-limit`, fixed when the queue is "
    "created), by the workers in Redis on classic ones",
)
QUEUE_SIGNING_KEY: Variable[Secret | None] = Variable(
    "QUEUE_SIGNING_KEY",
    SecretText(32),
    None,
    "web nodes sign every queued message with HMAC-SHA256 and workers dead-letter unsigned or "
    "tampered ones. Set the same value on web and worker processes",
    secret=True,
)
BROADCAST_HZ = Variable(
    "BROADCAST_HZ",
    Decimal(0, 1000),
    100.0,
    "at most this many top-10 pushes a second of each board, across all workers (the newest board "
    "always goes out; each web node pushes less often when `FAN_OUT_FRAMES_PER_SECOND` says so); "
    "`0` pushes every change at once",
)
FAN_OUT_FRAMES_PER_SECOND = Variable(
    "FAN_OUT_FRAMES_PER_SECOND",
    Integer(100, 10_000_000),
    30_000,
    "top-10 frames a web node writes to its clients per second at most: with few clients it "
    "pushes every board `BROADCAST_HZ` allows, with many it pushes the newest board less often "
    "(20 clients: every change; 10,000: three times a second, about 40% of a core)",
)
CLOSED_SEASONS_KEPT = Variable(
    "CLOSED_SEASONS_KEPT",
    Integer(1, 10_000),
    12,
    "closed seasons kept per board (in PostgreSQL with `DATABASE_URL`, else in Redis or memory); "
    "the oldest goes when one more closes. See [Seasons](boards.md#seasons)",
)
WORKER_PREFETCH = Variable(
    "WORKER_PREFETCH",
    Integer(1, 10_000),
    100,
    "unacknowledged messages a worker holds; also its largest batch. With quorum queues, the "
    "queue of priority level n lends it up to (n + 1) times that ([why](high-availability.md"
    "#priorities-without-x-max-priority))",
)
REDIS_MAX_CONNECTIONS = Variable(
    "REDIS_MAX_CONNECTIONS",
    Integer(2, 10_000),
    100,
    "connections a process opens to Redis at most; a request that finds them all busy waits "
    "for one instead of failing",
)
REDIS_POOL_TIMEOUT_SECONDS = Variable(
    "REDIS_POOL_TIMEOUT_SECONDS",
    Decimal(0.1, 60),
    5.0,
    "how long a request waits for a free Redis connection before it is answered 503 (Redis "
    "is then too slow to be called up)",
)
GROUP_COMMIT_WAIT_MS = Variable(
    "GROUP_COMMIT_WAIT_MS",
    Integer(0, 50),
    5,
    "how long a busy web node lets a group of score updates fill before its Redis call and its "
    "broker message; a lone update on a quiet node never waits. Higher: less CPU per update, "
    "longer answers; `0`: only what queued during the previous call ([measured](performance.md))",
)
MAX_UPDATES_IN_FLIGHT = Variable(
    "MAX_UPDATES_IN_FLIGHT",
    Integer(1, 1_000_000),
    1000,
    "score updates a web node works on at once; past it, it answers `503 Server busy, try "
    "again` at once, shedding load rather than letting every answer slow down",
)
LOG_LEVEL = Variable(
    "LOG_LEVEL",
    Choice(("DEBUG", "INFO", "WARNING", "ERROR")),
    "INFO",
    "the least severe lines the log shows",
)
LOG_FORMAT = Variable(
    "LOG_FORMAT",
    Choice(("json", "text")),
    "text",
    "`json` writes one object per line, and is the default when `DYNO` is set; see "
    "[Logs](operations.md#logs)",
)
DYNO: Variable[str | None] = Variable(
    "DYNO", Anything(), None, "set by Heroku on every dyno: makes `json` the default `LOG_FORMAT`"
)
METRICS_PORT = Variable(
    "METRICS_PORT",
    Integer(0, 65535),
    DEFAULT_METRICS_PORT,
    "port of the worker's `/metrics`; `0` serves none (web nodes serve theirs on `PORT`)",
)
METRICS_TOKEN: Variable[Secret | None] = Variable(
    "METRICS_TOKEN",
    SecretText(16),
    None,
    "when set, `/metrics` (web and worker) needs `Authorization: Bearer <token>`, and `/readyz` "
    "shows its details only with it",
    secret=True,
)
FORCE_HTTPS = Variable(
    "FORCE_HTTPS",
    Flag(),
    True,
    "`0` serves plain HTTP to everyone and sends no HSTS (see [HTTPS and browser security]"
    "(security.md#https-and-browser-security))",
)
TLS_CERT_FILE: Variable[str | None] = Variable(
    "TLS_CERT_FILE",
    Text("a file path"),
    None,
    "PEM certificate (chain) for the web process to serve HTTPS itself; set together with "
    "`TLS_KEY_FILE`",
)
TLS_KEY_FILE: Variable[str | None] = Variable(
    "TLS_KEY_FILE",
    Text("a file path"),
    None,
    "the certificate's unencrypted PEM private key; set together with `TLS_CERT_FILE`",
)
CORS_ALLOWED_ORIGINS = Variable(
    "CORS_ALLOWED_ORIGINS",
    Origins(),
    (),
    "browser origins allowed to open the Socket.IO connection; unset: the same origin only",
)

# In the order declared above, which is the order of docs/configuration.md.
VARIABLES: tuple[Variable[Any], ...] = tuple(
    value for value in list(globals().values()) if isinstance(value, Variable)
)
