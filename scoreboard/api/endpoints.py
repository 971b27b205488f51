"""Every HTTP endpoint, declared once: its path, what it takes, what it answers and why.

The web process registers its routes from this table (scoreboard/web/routes.py maps each
operation to its handler), the OpenAPI document is built from it, and so is docs/api.md.
Descriptions may name `{rate_limit}`, `{read_rate_limit}`, `{max_increment}` and
`{max_body_bytes}`: the document fills in this deployment's values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from scoreboard.api import models, queries
from scoreboard.boards.model import GLOBAL_BOARD_ID
from scoreboard.boards.registry import REFRESH_SECONDS
from scoreboard.intake.idempotency import MAX_KEY_LENGTH
from scoreboard.models import TOP_N
from scoreboard.web.static_files import STATIC_FILES

SOCKETIO_PATH = "ws/scoreboard"  # Socket.IO's path: clients connect with {path: "/ws/scoreboard"}
MAX_BODY_BYTES = 16 * 1024  # a score update is well under 1 KiB
# Socket.IO clients send only the connect packet (token, boards) and subscribe/unsubscribe (boards).
MAX_SOCKET_MESSAGE_BYTES = 4 * 1024

# Shared answers, described once (components/responses of the document).
UNAUTHORIZED = "Unauthorized"
TOO_MANY = "TooManyRequests"
UNAVAILABLE = "ServiceUnavailable"
HTTPS_REDIRECT = "HttpsRedirect"
NOT_ADMIN = "NotAdmin"
UNSUPPORTED_ENCODING = "UnsupportedEncoding"


@dataclass(frozen=True)
class Answer:
    """One status an endpoint answers with: a body of a declared type, or a shared answer."""

    description: str = ""
    body: type | None = None  # a models.Wire struct; success bodies also carry status
    media_types: tuple[str, ...] = ("application/json",)
    shared: str | None = None  # the name of a shared answer instead of the fields above
    headers: tuple[str, ...] = ()  # names of declared response headers


def error(description: str) -> Answer:
    return Answer(description, models.Error)


def shared(name: str) -> Answer:
    return Answer(shared=name)


# The declared type of each path parameter by name: a schema of the document, and an example.
PATH_PARAMETERS: dict[str, tuple[str, str]] = {
    "userId": ("UserId", "alice"),
    "boardId": ("BoardId", "weekly"),
    "season": ("Season", "3"),
}


@dataclass(frozen=True)
class Header:
    """A request header an endpoint reads."""

    name: str
    description: str
    min_length: int
    max_length: int
    pattern: str


@dataclass(frozen=True)
class Endpoint:
    """One method on one path."""

    operation: str  # the operationId; web/routes.py maps it to the handler
    method: str
    path: str
    tag: str
    summary: str
    answers: dict[int, Answer]
    description: str = ""
    auth: bool = True
    query: type[queries.Query] | None = None
    body: str | None = None  # a schema name of the document: ScoreUpdateRequest, RateLimits
    body_example: object = None
    headers: tuple[Header, ...] = ()
    path_enums: dict[str, tuple[str, ...]] = field(default_factory=dict)  # e.g. static names


IDEMPOTENCY_KEY = Header(
    "Idempotency-Key",
    "Makes a retry safe: the same key from the same user with the same body within "
    "24 hours answers the first response again and changes nothing; with another "
    f"body it is 409. 1 to {MAX_KEY_LENGTH} printable ASCII characters",
    1,
    MAX_KEY_LENGTH,
    # HTTP strips spaces around a header value, so it cannot start or end with one.
    "^[!-~](?:[ -~]*[!-~])?$",
)
READ_LIMIT = "Counts against `READ_RATE_LIMIT` (now {read_rate_limit})."
ADMIN = "Needs a token whose `role` claim is `admin`; the action is logged."
NO_DEAD_LETTER_QUEUE = error("The single-process mode keeps no dead-letter queue")


def _admin(
    operation: str,
    method: str,
    path: str,
    summary: str,
    ok: Answer,
    others: dict[int, Answer] | None = None,
    query: type[queries.Query] | None = None,
    body: str | None = None,
    body_example: object = None,
    description: str = "",
) -> Endpoint:
    answers = {
        200: ok,
        401: shared(UNAUTHORIZED),
        403: shared(NOT_ADMIN),
        **(others or {}),
        503: shared(UNAVAILABLE),
    }
    return Endpoint(
        operation,
        method,
        path,
        "admin",
        summary,
        answers,
        description=f"{description} {ADMIN}" if description else ADMIN,
        query=query,
        body=body,
        body_example=body_example,
    )


TOO_LARGE = error("`Request body too large`: over {max_body_bytes} bytes")
BAD_BOARD_ID = error("`boardId` breaks the rule of the `BoardId` schema")
NO_SUCH_BOARD = error("`No such board`")
GLOBAL_IS_FIXED = f"`The {GLOBAL_BOARD_ID} board cannot be changed or removed`"


def _dead_letter_limit(model: type[queries.Query]) -> Answer:
    [limit] = queries.integer_fields(model)
    return error(f"`limit` is not an integer from {limit.low} to {limit.high}")


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "postScoreUpdate",
        "POST",
        "/api/score/update",
        "scores",
        "Queue an increment of the caller's own score",
        description=(
            "Answered 200 once the broker has confirmed the message; a worker applies it a "
            "moment later. The body is parsed as JSON whatever its Content-Type. Counts against "
            "the limit of the token's `tier` (`RATE_LIMITS`, or an admin's override), else "
            "`RATE_LIMIT` (now {rate_limit})."
        ),
        headers=(IDEMPOTENCY_KEY,),
        body="ScoreUpdateRequest",
        body_example={"userId": "alice", "scoreIncrement": 5},
        answers={
            200: Answer("Queued", models.ScoreUpdateAccepted, headers=("Idempotent-Replayed",)),
            400: error(
                "`Invalid score increment` (not a JSON integer from 1 to {max_increment}); the "
                "body is not JSON, not an object or has no valid `userId`; the total would pass "
                "2^53−1; or the Idempotency-Key is not 1 to 255 printable ASCII characters"
            ),
            401: shared(UNAUTHORIZED),
            403: error(
                "`A user can only update their own score` (`userId` is not the token's `sub`), "
                "or `HTTPS required`"
            ),
            409: error(
                "The Idempotency-Key was used by this user with another body, or its first "
                "request is still running"
            ),
            413: TOO_LARGE,
            415: shared(UNSUPPORTED_ENCODING),
            429: shared(TOO_MANY),
            503: shared(UNAVAILABLE),
        },
    ),
    Endpoint(
        "getLeaderboard",
        "GET",
        "/api/leaderboard",
        "board",
        "A page of the board",
        description=(
            "Up to `limit` users from rank `offset + 1` on, highest score first; among equal "
            "scores whoever reached the score first ranks higher. Rows, `version` and `total` "
            f"are read at one moment. {READ_LIMIT}"
        ),
        query=queries.BoardQuery,
        answers={
            200: Answer("The page; `entries` is empty past the end", models.BoardPage),
            308: shared(HTTPS_REDIRECT),
            400: error("`limit` or `offset` is not an integer in its range, or given twice"),
            401: shared(UNAUTHORIZED),
            429: shared(TOO_MANY),
            503: shared(UNAVAILABLE),
        },
    ),
    Endpoint(
        "getUserRank",
        "GET",
        "/api/users/{userId}/rank",
        "board",
        "A user's rank and neighbours",
        description=(
            "The user's row and up to `around` rows on each side, read at one moment. Any "
            "valid token may read anyone's rank. A user appears once a worker has applied "
            f"their first update. {READ_LIMIT}"
        ),
        query=queries.RankQuery,
        answers={
            200: Answer("The user's place on the board", models.UserRank),
            308: shared(HTTPS_REDIRECT),
            400: error(
                f"`around` is not an integer from 0 to {queries.MAX_AROUND}, or `userId` breaks "
                "the identity rule (see the `UserId` schema)"
            ),
            401: shared(UNAUTHORIZED),
            404: error("`No score for this user`: the user has no applied score"),
            429: shared(TOO_MANY),
            503: shared(UNAVAILABLE),
        },
    ),
    Endpoint(
        "postBoardScore",
        "POST",
        "/api/boards/{boardId}/scores",
        "boards",
        "Queue a score on a board",
        description=(
            "On an `incr` board `score` is added (1 to {max_increment}); on a `best` board the "
            "better of the user's value and `score` is kept, on a `set` board `score` replaces "
            "it (0 to {max_score}). `newScore` is the user's value on the board once this "
            "update and every one accepted before it are applied. A user posts their own "
            "score; a token with `role: service` (a game server) posts for any `userId` and "
            "sends `username`; on an `authoritative` board only service tokens may post. Rate "
            "limits count a user's updates on every board together (now {rate_limit}); "
            "Idempotency-Key as for `POST /api/score/update`."
        ),
        headers=(IDEMPOTENCY_KEY,),
        body="BoardScoreRequest",
        body_example={"userId": "alice", "score": 5},
        answers={
            200: Answer("Queued", models.BoardScoreAccepted, headers=("Idempotent-Replayed",)),
            400: error(
                "`score` is not a JSON integer in the board's range, the body is not JSON or "
                "has no valid `userId`, `username` is missing with a service token or sent "
                "without one, the total would pass 2^53−1, the `boardId` is not a board id, or "
                "the Idempotency-Key is malformed"
            ),
            401: shared(UNAUTHORIZED),
            403: error(
                "`A user can only update their own score`, `Only a service token may post to "
                "this board` (an authoritative board), or `HTTPS required`"
            ),
            404: error("`Board not found`"),
            409: error(
                "The Idempotency-Key was used by this user with another body, or its first "
                "request is still running"
            ),
            413: error("`Request body too large`: over {max_body_bytes} bytes"),
            415: shared(UNSUPPORTED_ENCODING),
            429: shared(TOO_MANY),
            503: shared(UNAVAILABLE),
        },
    ),
    Endpoint(
        "getBoardLeaderboard",
        "GET",
        "/api/boards/{boardId}/leaderboard",
        "boards",
        "A page of a board's live season",
        description=(
            "As `GET /api/leaderboard`, for any board, in its order (a `desc` board lists the "
            "highest value first, an `asc` board the lowest), with `boardId` and `season`. "
            f"{READ_LIMIT}"
        ),
        query=queries.BoardQuery,
        answers={
            200: Answer("The page; `entries` is empty past the end", models.BoardSeasonPage),
            308: shared(HTTPS_REDIRECT),
            400: error("`limit` or `offset` out of range or given twice, or a malformed `boardId`"),
            401: shared(UNAUTHORIZED),
            404: error("`Board not found`"),
            429: shared(TOO_MANY),
            503: shared(UNAVAILABLE),
        },
    ),
    Endpoint(
        "getBoardUserRank",
        "GET",
        "/api/boards/{boardId}/users/{userId}/rank",
        "boards",
        "A user's rank and neighbours on a board",
        description=(
            "As `GET /api/users/{{userId}}/rank`, for any board's live season, with `boardId` "
            f"and `season`. {READ_LIMIT}"
        ),
        query=queries.RankQuery,
        answers={
            200: Answer("The user's row and neighbours", models.BoardUserRank),
            308: shared(HTTPS_REDIRECT),
            400: error("`around` out of range, or a malformed `userId` or `boardId`"),
            401: shared(UNAUTHORIZED),
            404: error("`Board not found`, or `No score for this user on this board`"),
            429: shared(TOO_MANY),
            503: shared(UNAVAILABLE),
        },
    ),
    Endpoint(
        "listSeasons",
        "GET",
        "/api/boards/{boardId}/seasons",
        "boards",
        "A board's closed seasons",
        description=(
            "Newest first; a board keeps its last `CLOSED_SEASONS_KEPT`. A season closes at its "
            f"board's reset boundary or by an admin's reset. {READ_LIMIT}"
        ),
        answers={
            200: Answer(
                "Each season's times and how many users it ranked", models.ClosedSeasonList
            ),
            308: shared(HTTPS_REDIRECT),
            400: BAD_BOARD_ID,
            401: shared(UNAUTHORIZED),
            404: error("`Board not found`"),
            429: shared(TOO_MANY),
            503: shared(UNAVAILABLE),
        },
    ),
    Endpoint(
        "getSeasonLeaderboard",
        "GET",
        "/api/boards/{boardId}/seasons/{season}/leaderboard",
        "boards",
        "A page of a closed season's final standings",
        description=(
            "As `GET /api/boards/{{boardId}}/leaderboard`, for a closed season: every user it "
            f"ranked, in its order, as it stood when it closed. {READ_LIMIT}"
        ),
        query=queries.BoardQuery,
        answers={
            200: Answer("The page; `entries` is empty past the end", models.ClosedSeasonPage),
            308: shared(HTTPS_REDIRECT),
            400: error(
                "`limit` or `offset` out of range or given twice, a malformed `boardId`, or "
                "`season` is not a season number"
            ),
            401: shared(UNAUTHORIZED),
            404: error("`Board not found`, or `No such closed season` (live, unknown or dropped)"),
            429: shared(TOO_MANY),
            503: shared(UNAVAILABLE),
        },
    ),
    Endpoint(
        "getHistory",
        "GET",
        "/api/users/{userId}/history",
        "scores",
        "The caller's own applied updates, newest first",
        description=(
            "Only with a PostgreSQL ledger (`DATABASE_URL`); a page of at most `limit` "
            "entries older than the entry `before`."
        ),
        query=queries.HistoryQuery,
        answers={
            200: Answer("A page of the history", models.HistoryPage),
            308: shared(HTTPS_REDIRECT),
            400: error("`limit` or `before` is not an integer in its range, or `userId` is bad"),
            401: shared(UNAUTHORIZED),
            403: error("`userId` is not the token's `sub`"),
            404: error("This deployment keeps no ledger"),
            503: shared(UNAVAILABLE),
        },
    ),
    Endpoint(
        "getBoardHistory",
        "GET",
        "/api/boards/{boardId}/users/{userId}/history",
        "boards",
        "The caller's own applied updates on a board, every season, newest first",
        description=(
            "As `GET /api/users/{{userId}}/history`, for one board: each entry with what was "
            "posted, the value it led to and its season. Only with a PostgreSQL ledger."
        ),
        query=queries.HistoryQuery,
        answers={
            200: Answer("A page of the history", models.BoardHistoryPage),
            308: shared(HTTPS_REDIRECT),
            400: error("`limit` or `before` out of range, or a malformed `userId` or `boardId`"),
            401: shared(UNAUTHORIZED),
            403: error("`userId` is not the token's `sub`"),
            404: error("`Board not found`, or this deployment keeps no ledger"),
            503: shared(UNAVAILABLE),
        },
    ),
    _admin(
        "removeUser",
        "DELETE",
        "/api/admin/users/{userId}",
        "Take a user off every board, or off one",
        Answer(
            "Removed from the live season of every board (or of `board`); their next update "
            "there starts from nothing. Subscribers of a board whose top 10 changed are pushed it",
            models.Message,
        ),
        {
            400: error(
                "`userId` breaks the identity rule (see the `UserId` schema), or `board` is not "
                "a board id"
            ),
            404: error("`Board not found`: no board `board`"),
        },
        query=queries.RemoveUserQuery,
        description=(
            "Closed seasons (and one closing at that moment) keep the user: they are the "
            "record of what happened. With a ledger the user's values in the live seasons go "
            "from it too, so a rebuild does not bring them back; their history stays."
        ),
    ),
    _admin(
        "resetBoard",
        "POST",
        "/api/admin/board/reset",
        "Take everyone off the board",
        Answer("The board is empty", models.Message),
    ),
    _admin(
        "listDeadLetters",
        "GET",
        "/api/admin/dead-letters",
        "The oldest dead letters",
        Answer("They stay in the dead-letter queue", models.DeadLetters),
        {
            400: _dead_letter_limit(queries.DeadLetterPeekQuery),
            404: NO_DEAD_LETTER_QUEUE,
        },
        query=queries.DeadLetterPeekQuery,
    ),
    _admin(
        "replayDeadLetters",
        "POST",
        "/api/admin/dead-letters/replay",
        "Send dead letters back to the update queue",
        Answer("How many moved", models.Replayed),
        {
            400: _dead_letter_limit(queries.DeadLetterReplayQuery),
            404: NO_DEAD_LETTER_QUEUE,
        },
        query=queries.DeadLetterReplayQuery,
    ),
    _admin(
        "getRateLimits",
        "GET",
        "/api/admin/rate-limits",
        "The rate limits in force",
        Answer(
            "Configured limits per tier (`default` for everyone else) and runtime overrides",
            models.RateLimitsInForce,
        ),
    ),
    _admin(
        "putRateLimits",
        "PUT",
        "/api/admin/rate-limits",
        "Replace the runtime rate-limit overrides",
        Answer("Saved; every web node applies them within 2 seconds", models.RateLimitsSaved),
        {
            400: error(
                "The body is not a JSON object of tier to a limit such as `50/minute`, or a "
                "limit is outside 1 to 10^9 requests in a window of at most a day"
            ),
            415: shared(UNSUPPORTED_ENCODING),
        },
        body="RateLimits",
        body_example={"free": "50/minute", "default": "20/minute"},
    ),
    Endpoint(
        "listBoards",
        "GET",
        "/api/boards",
        "boards",
        "Every board",
        description=f"Each with the number of its live season. {READ_LIMIT}",
        answers={
            200: Answer(f"`{GLOBAL_BOARD_ID}` first, then by id", models.BoardList),
            308: shared(HTTPS_REDIRECT),
            401: shared(UNAUTHORIZED),
            429: shared(TOO_MANY),
            503: shared(UNAVAILABLE),
        },
    ),
    Endpoint(
        "getBoard",
        "GET",
        "/api/boards/{boardId}",
        "boards",
        "One board",
        description=f"Its settings, its live season and when that season began. {READ_LIMIT}",
        answers={
            200: Answer("The board", models.BoardAnswer),
            308: shared(HTTPS_REDIRECT),
            400: BAD_BOARD_ID,
            401: shared(UNAUTHORIZED),
            404: NO_SUCH_BOARD,
            429: shared(TOO_MANY),
            503: shared(UNAVAILABLE),
        },
    ),
    _admin(
        "putBoard",
        "PUT",
        "/api/admin/boards/{boardId}",
        "Create a board or change its settings",
        Answer(
            f"Changed; every web node sees the change within {REFRESH_SECONDS:g} seconds",
            models.BoardAnswer,
        ),
        {
            201: Answer("Created, in its first season", models.BoardAnswer),
            400: error(
                f"{BAD_BOARD_ID.description}, or the body is not a JSON object of the "
                "`BoardSettings` fields; the message names the first field that is wrong"
            ),
            409: error(
                f"{GLOBAL_IS_FIXED}, or `Board … has scores: its operator and order cannot "
                "change` (someone has a score in its live season)"
            ),
            413: TOO_LARGE,
            415: shared(UNSUPPORTED_ENCODING),
        },
        body="BoardSettings",
        body_example={"name": "Weekly sprint", "operator": "best", "reset": "weekly"},
        description=(
            "The body holds every setting: one left out takes its default, also on a change. "
            "The operator and the order of a board cannot change while it has scores."
        ),
    ),
    _admin(
        "removeBoard",
        "DELETE",
        "/api/admin/boards/{boardId}",
        "Remove a board and its scores",
        Answer("Removed with every season's scores; the ledger keeps its history", models.Message),
        {400: BAD_BOARD_ID, 404: NO_SUCH_BOARD, 409: error(GLOBAL_IS_FIXED)},
    ),
    _admin(
        "resetBoardSeason",
        "POST",
        "/api/admin/boards/{boardId}/reset",
        "Close a board's live season now",
        Answer(
            "Closed: the live season is the next one, empty, and its subscribers are sent the "
            "empty board; the closed season is listed once a worker has archived it (seconds)",
            models.SeasonReset,
        ),
        {
            400: BAD_BOARD_ID,
            404: error("`Board not found`"),
            409: error(
                f"`The {GLOBAL_BOARD_ID} board has no seasons: POST /api/admin/board/reset "
                "empties it`, or `The season changed meanwhile; try again` (its boundary or "
                "another reset closed it a moment before)"
            ),
        },
        description="Any board but `global`, whatever its `reset`.",
    ),
    Endpoint(
        "getOpenapi",
        "GET",
        "/api/openapi.json",
        "meta",
        "This document",
        auth=False,
        answers={200: Answer("The OpenAPI 3.1 document"), 308: shared(HTTPS_REDIRECT)},
    ),
    Endpoint(
        "getAsyncapi",
        "GET",
        "/api/asyncapi.json",
        "meta",
        "The Socket.IO events as an AsyncAPI 3.0 document",
        auth=False,
        answers={200: Answer("The AsyncAPI 3.0 document"), 308: shared(HTTPS_REDIRECT)},
    ),
    Endpoint(
        "getApiDocs",
        "GET",
        "/api/docs",
        "meta",
        "This document as an interactive page",
        description=(
            'Swagger UI, served by this server (no CDN); its "Try it out" sends requests '
            'to this server with the bearer token given under "Authorize".'
        ),
        auth=False,
        answers={
            200: Answer("The HTML page", media_types=("text/html",)),
            308: shared(HTTPS_REDIRECT),
        },
    ),
    Endpoint(
        "getDemo",
        "GET",
        "/api/demo",
        "meta",
        "The demo token of the single-process mode",
        description=(
            "Only when the server runs in the single-process mode and generated its own "
            "JWT_SECRET (then nothing survives a restart); the live page uses it."
        ),
        auth=False,
        answers={
            200: Answer("The demo user and its token", models.DemoToken),
            308: shared(HTTPS_REDIRECT),
            404: error("No demo token on this deployment"),
        },
    ),
    Endpoint(
        "getHealthz",
        "GET",
        "/healthz",
        "meta",
        "Liveness probe; plain HTTP allowed",
        auth=False,
        answers={200: Answer("The process serves", models.Health)},
    ),
    Endpoint(
        "getReadyz",
        "GET",
        "/readyz",
        "meta",
        "Readiness probe: the backing services answer; plain HTTP allowed",
        description=(
            "Also lists the workers whose heartbeat is current. No worker is not an error: "
            "updates are still accepted and wait in the queue. When OPS_PORT is set, served "
            "on that port only."
        ),
        auth=False,
        answers={
            200: Answer("Every backing service answers", models.Readiness),
            503: Answer("`message` names the services down", models.Readiness),
        },
    ),
    Endpoint(
        "getMetrics",
        "GET",
        "/metrics",
        "meta",
        "This node's Prometheus metrics; plain HTTP allowed",
        description=(
            "When METRICS_TOKEN is set, send it as `Authorization: Bearer …`. When OPS_PORT is "
            "set, served on that port only."
        ),
        auth=False,
        answers={
            200: Answer("Prometheus text format", media_types=("text/plain",)),
            401: error("METRICS_TOKEN is set and was not sent"),
        },
    ),
    Endpoint(
        "getLivePage",
        "GET",
        "/",
        "page",
        f"The live page: the top {TOP_N} as it changes",
        auth=False,
        answers={
            200: Answer("The HTML page; it asks for a token", media_types=("text/html",)),
            308: shared(HTTPS_REDIRECT),
        },
    ),
    Endpoint(
        "getStaticFile",
        "GET",
        "/static/{name}",
        "page",
        "A file the live page loads",
        auth=False,
        path_enums={"name": tuple(sorted(STATIC_FILES))},
        answers={
            200: Answer("The file", media_types=tuple(sorted(set(STATIC_FILES.values())))),
            308: shared(HTTPS_REDIRECT),
            404: error("No such file"),
        },
    ),
)
