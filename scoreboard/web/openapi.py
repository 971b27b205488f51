"""The OpenAPI 3.1 document of the HTTP API, served at GET /api/openapi.json.

Built from the same constants the handlers use, so limits cannot drift apart; a test checks that
every route the application registers is described here.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from scoreboard.config import MAX_SAFE_INTEGER, Settings
from scoreboard.intake.idempotency import MAX_KEY_LENGTH
from scoreboard.intake.identities import MAX_USER_ID_LENGTH, MAX_USERNAME_LENGTH
from scoreboard.models import TOP_N
from scoreboard.reads.params import (
    DEFAULT_AROUND,
    DEFAULT_LIMIT,
    MAX_AROUND,
    MAX_LIMIT,
    MAX_OFFSET,
)
from scoreboard.web.keys import SETTINGS
from scoreboard.web.page import STATIC_FILES

Schema = dict[str, Any]


def _socketio_description(socketio_path: str) -> str:
    return f"""\
## Live top {TOP_N} over Socket.IO

Not an HTTP endpoint, so described here in prose. Socket.IO v4 protocol (Engine.IO 4) on the path
`/{socketio_path}/` of this server, websocket or HTTP long-polling.

**Connecting.** Send the same bearer token as for the REST API, as `auth: {{token: "<JWT>"}}` in
the Socket.IO handshake (what browsers can send) or as an `Authorization: Bearer <JWT>` header.
Without a valid token the connection is refused: the client gets `connect_error` with the message
`Authentication failed`. Browsers are accepted from this site's own origin only, unless
`CORS_ALLOWED_ORIGINS` lists theirs. A client message may be at most 4 KiB.

```js
const socket = io("https://scores.example.com", {{ path: "/{socketio_path}", auth: {{ token }} }});
socket.on("leaderboardUpdate", ({{ version, top10 }}) => {{ /* … */ }});
```

**Event `leaderboardUpdate`** (server to client; the payload is the schema `LeaderboardUpdate`):

```json
{{"event": "leaderboardUpdate", "version": 12,
 "top10": [{{"userId": "bob", "username": "Bob", "score": 40}},
           {{"userId": "alice", "username": "Alice", "score": 35}}]}}
```

Sent once right after connecting (the current board) and then whenever the top {TOP_N} changes
(a score, the order or a name in it), never when it does not. `top10` is highest first, at most
{TOP_N} rows; among equal scores whoever reached the score first comes first, the same order as
`GET /api/leaderboard`. `version` grows by one with every change of the top {TOP_N}; a fresh
board is version 0 with an empty `top10`. With several workers an older version can arrive after
a newer one: drop any `version` not greater than the last one shown on this connection. The
server ignores every event a client sends.
"""


def _description(socketio_path: str) -> str:
    return f"""\
A real-time leaderboard. Clients post score increments (queued, then applied by workers) and
read the board; every connected Socket.IO client receives the live top {TOP_N}.

Every error has the body `{{"status": "error", "message": "…"}}`; every success has
`"status": "success"`. Every number is an integer no larger than 2^53−1, so it stays exact in
JavaScript. A path not listed here is `404 Not found`, a method not listed for a path `405 Method
not allowed` (with `Allow`), and an unexpected failure `500 Internal server error`, all in that
error shape.

**HTTPS.** Requests that did not arrive over HTTPS (directly or per `X-Forwarded-Proto`) are
answered `308` to the `https://` URL for `GET` and `HEAD` and `403` for other methods, except
`GET /healthz`, `/readyz`, `/metrics` and direct connections from the loopback address.

{_socketio_description(socketio_path)}"""


def _ref(kind: str, name: str) -> Schema:
    return {"$ref": f"#/components/{kind}/{name}"}


def _json(schema: Schema, description: str, headers: Schema | None = None) -> Schema:
    response: Schema = {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }
    if headers:
        response["headers"] = headers
    return response


def _error(description: str) -> Schema:
    return _json(_ref("schemas", "Error"), description)


def _unsupported_encoding() -> Schema:
    return _error(
        "`Content-Encoding must be gzip, deflate or identity`: the body comes in another coding"
    )


def _success(properties: Schema, required: list[str]) -> Schema:
    return {
        "type": "object",
        "required": ["status", *required],
        "properties": {"status": {"const": "success"}, **properties},
    }


def _integer(low: int, high: int) -> Schema:
    return {"type": "integer", "minimum": low, "maximum": high}


def _components(settings: Settings) -> Schema:
    user_id = {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_USER_ID_LENGTH,
        # What a pattern can say of the identity rule; the description says the rest.
        "pattern": r"^[^\p{C}\p{Z}](?:(?:[^\p{C}\p{Z}]| )*[^\p{C}\p{Z}])?$",
        "description": (
            f"1 to {MAX_USER_ID_LENGTH} printable characters after NFC normalisation (compared "
            "in NFC): no control, format, private-use, unassigned or separator characters (the "
            "space excepted, but not at either end), no invisible fillers, and no mix of scripts "
            "that look alike (Latin with Cyrillic or Greek; see the identities section of the docs)"
        ),
    }
    score = _integer(1, MAX_SAFE_INTEGER)
    retry_after = {
        "Retry-After": {
            "description": "Seconds to wait before retrying",
            "required": True,
            "schema": {"type": "integer", "minimum": 1},
        }
    }
    ranked_entry = {
        "type": "object",
        "required": ["rank", "userId", "username", "score"],
        "properties": {
            "rank": _integer(1, MAX_SAFE_INTEGER),
            "userId": {"type": "string"},
            "username": {"type": "string", "maxLength": MAX_USERNAME_LENGTH},
            "score": score,
        },
    }
    top_entry = {
        "type": "object",
        "required": ["userId", "username", "score"],
        "properties": {
            "userId": {"type": "string"},
            "username": {"type": "string"},
            "score": score,
        },
    }
    neighbours = {
        "type": "array",
        "maxItems": MAX_AROUND,
        "items": _ref("schemas", "RankedEntry"),
    }
    return {
        "securitySchemes": {
            "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": (
                    "A JWT signed with a key the service trusts (JWT_SECRET: HS256, "
                    "JWT_PUBLIC_KEY or JWKS_URL: RS256 or ES256) with a `sub` (the user id) and, "
                    "unless JWT_REQUIRE_EXP=0, an `exp`. The board shows the `name` claim, else "
                    "`preferred_username`, else `sub`. A `tier` claim picks the write limit and "
                    "queue priority; `role: admin` opens the admin endpoints."
                ),
            }
        },
        "headers": {"RetryAfter": retry_after["Retry-After"]},
        "schemas": {
            "UserId": user_id,
            "Error": {
                "type": "object",
                "required": ["status", "message"],
                "properties": {"status": {"const": "error"}, "message": {"type": "string"}},
            },
            "ScoreUpdateRequest": {
                "type": "object",
                "required": ["userId", "scoreIncrement"],
                "properties": {
                    "userId": {
                        **user_id,
                        "description": f"{user_id['description']}; must equal the token's `sub`",
                    },
                    "scoreIncrement": {
                        **_integer(1, settings.max_score_increment),
                        "description": (
                            "Written as a plain JSON integer: `5`, not `5.0` or `5e0` (refused "
                            "with 400 although JSON Schema counts them as integers too)"
                        ),
                    },
                },
            },
            "ScoreUpdateAccepted": _success(
                {
                    "message": {"const": "Score update queued"},
                    "newScore": {
                        **score,
                        "description": (
                            "The user's score once this update and every update accepted "
                            "before it are applied"
                        ),
                    },
                },
                ["message", "newScore"],
            ),
            "RankedEntry": ranked_entry,
            "BoardPage": _success(
                {
                    "version": {
                        **_integer(0, MAX_SAFE_INTEGER),
                        "description": (
                            f"The version of the top {TOP_N} when the page was read; at offset "
                            f"0 its first {TOP_N} entries are that version's `top10`"
                        ),
                    },
                    "total": {**_integer(0, MAX_SAFE_INTEGER), "description": "Users on the board"},
                    "entries": {
                        "type": "array",
                        "maxItems": MAX_LIMIT,
                        "items": _ref("schemas", "RankedEntry"),
                    },
                },
                ["version", "total", "entries"],
            ),
            "UserRank": _success(
                {
                    "version": _integer(0, MAX_SAFE_INTEGER),
                    "total": _integer(1, MAX_SAFE_INTEGER),
                    "user": _ref("schemas", "RankedEntry"),
                    "above": {**neighbours, "description": "Better ranked neighbours, best first"},
                    "below": {**neighbours, "description": "Worse ranked neighbours, best first"},
                },
                ["version", "total", "user", "above", "below"],
            ),
            "HistoryPage": _success(
                {
                    "userId": {"type": "string"},
                    "entries": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": [
                                "entryId",
                                "messageId",
                                "username",
                                "increment",
                                "score",
                                "acceptedAt",
                                "appliedAt",
                            ],
                            "properties": {
                                "entryId": {"type": "string", "pattern": "^[0-9]+$"},
                                "messageId": {"type": "string"},
                                "username": {"type": "string"},
                                "increment": _integer(1, MAX_SAFE_INTEGER),
                                "score": score,
                                "acceptedAt": {"type": "string", "format": "date-time"},
                                "appliedAt": {"type": "string", "format": "date-time"},
                            },
                        },
                    },
                    "nextBefore": {
                        "type": ["string", "null"],
                        "description": "Pass as `before` for the next, older page; null at the end",
                    },
                },
                ["userId", "entries", "nextBefore"],
            ),
            "Health": _success({"message": {"const": "ok"}}, ["message"]),
            "Readiness": {
                "type": "object",
                "description": (
                    "With METRICS_TOKEN set, only a request sending it as `Authorization: Bearer "
                    "…` gets more than `status` and `message`"
                ),
                "required": ["status", "message"],
                "properties": {
                    "status": {"enum": ["success", "error"]},
                    "message": {"type": "string"},
                    "mode": {"enum": ["distributed", "single-process"]},
                    "services": {
                        "type": "object",
                        "description": "redis, rabbitmq and postgresql, as far as configured",
                        "additionalProperties": {"enum": ["up", "down"]},
                    },
                    "queues": {
                        "type": "object",
                        "description": "Messages ready in `main` and `dead_letter`",
                        "additionalProperties": {"type": ["integer", "null"]},
                    },
                    "workers": {
                        "type": ["object", "null"],
                        "description": "Workers with a current heartbeat; null when unknown",
                        "required": ["alive", "list"],
                        "properties": {
                            "alive": {"type": "integer", "minimum": 0},
                            "list": {"type": "array", "items": {"type": "object"}},
                        },
                    },
                },
            },
            "DemoToken": _success(
                {
                    "userId": {"type": "string"},
                    "username": {"type": "string"},
                    "token": {"type": "string", "description": "A bearer token for `userId`"},
                },
                ["userId", "username", "token"],
            ),
            "LeaderboardUpdate": {
                "description": "Payload of the Socket.IO event `leaderboardUpdate` (see above)",
                "type": "object",
                "required": ["event", "version", "top10"],
                "properties": {
                    "event": {"const": "leaderboardUpdate"},
                    "version": _integer(0, MAX_SAFE_INTEGER),
                    "top10": {"type": "array", "maxItems": TOP_N, "items": top_entry},
                },
            },
        },
        "responses": {
            "Unauthorized": _error(
                "`Authentication failed`: the token is missing, malformed, badly signed, "
                "expired, uses another algorithm than its key's, or lacks `sub` or `exp`"
            ),
            "TooManyRequests": _json(
                _ref("schemas", "Error"),
                "`Too many requests`: over this user's rate limit",
                {"Retry-After": _ref("headers", "RetryAfter")},
            ),
            "ServiceUnavailable": _json(
                _ref("schemas", "Error"),
                "A backing service (Redis, the broker) did not answer; retry later",
                {"Retry-After": _ref("headers", "RetryAfter")},
            ),
            "HttpsRedirect": {
                "description": "The request came over plain HTTP: the same URL under https://",
                "headers": {
                    "Location": {"required": True, "schema": {"type": "string", "format": "uri"}}
                },
            },
        },
    }


def _admin_operation(
    summary: str, errors: Schema, parameters: list[Schema] | None = None
) -> Schema:
    return {
        "tags": ["admin"],
        "summary": summary,
        "description": "Needs a token whose `role` claim is `admin`; the action is logged.",
        "security": [{"bearerAuth": []}],
        "parameters": parameters or [],
        "responses": {
            "401": _ref("responses", "Unauthorized"),
            "403": _error("`This needs a token with role admin`"),
            **errors,
            "503": _ref("responses", "ServiceUnavailable"),
        },
    }


def _admin_paths() -> Schema:
    message = _success({"message": {"type": "string"}}, ["message"])
    limits = {"type": "object", "additionalProperties": {"type": "string"}}
    limit_query = {
        "name": "limit",
        "in": "query",
        "required": False,
        "description": "Dead letters to act on",
        "schema": _integer(1, 1000),
    }
    bad_limit = {"400": _error("`limit` is not an integer from 1 to 1000")}
    no_queue = {"404": _error("The single-process mode keeps no dead-letter queue")}

    remove = _admin_operation(
        "Take a user off the board",
        {},
        [{"name": "userId", "in": "path", "required": True, "schema": _ref("schemas", "UserId")}],
    )
    remove["responses"]["200"] = _json(message, "Removed; their next update starts from 0")
    reset = _admin_operation("Take everyone off the board", {})
    reset["responses"]["200"] = _json(message, "The board is empty")
    peek = _admin_operation("The oldest dead letters", {**bad_limit, **no_queue}, [limit_query])
    peek["responses"]["200"] = _json(
        _success(
            {
                "deadLetters": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["messageId", "body", "reason", "signed"],
                        "properties": {
                            "messageId": {"type": ["string", "null"]},
                            "body": {"type": "string", "maxLength": 2000},
                            "reason": {"type": "string"},
                            "signed": {"type": "boolean"},
                        },
                    },
                }
            },
            ["deadLetters"],
        ),
        "They stay in the dead-letter queue",
    )
    replay = _admin_operation(
        "Send dead letters back to the update queue", {**bad_limit, **no_queue}, [limit_query]
    )
    replay["responses"]["200"] = _json(
        _success(
            {"message": {"type": "string"}, "replayed": _integer(0, 1000)},
            ["message", "replayed"],
        ),
        "How many moved",
    )
    read_limits = _admin_operation("The rate limits in force", {})
    read_limits["responses"]["200"] = _json(
        _success({"configured": limits, "overrides": limits}, ["configured", "overrides"]),
        "Configured limits per tier (`default` for everyone else) and runtime overrides",
    )
    replace_limits = _admin_operation(
        "Replace the runtime rate-limit overrides",
        {
            "400": _error(
                "The body is not a JSON object of tier to a limit such as `50/minute`, or a "
                "limit is outside 1 to 10^9 requests in a window of at most a day"
            ),
            "415": _unsupported_encoding(),
        },
    )
    replace_limits["requestBody"] = {
        "required": True,
        "content": {
            "application/json": {
                "schema": limits,
                "example": {"free": "50/minute", "default": "20/minute"},
            }
        },
    }
    replace_limits["responses"]["200"] = _json(
        _success({"message": {"type": "string"}, "overrides": limits}, ["message", "overrides"]),
        "Saved; every web node applies them within 2 seconds",
    )
    return {
        "/api/admin/users/{userId}": {"delete": remove},
        "/api/admin/board/reset": {"post": reset},
        "/api/admin/dead-letters": {"get": peek},
        "/api/admin/dead-letters/replay": {"post": replay},
        "/api/admin/rate-limits": {"get": read_limits, "put": replace_limits},
    }


def _read_operation(summary: str, description: str, parameters: list[Schema]) -> Schema:
    return {
        "tags": ["board"],
        "summary": summary,
        "description": description,
        "security": [{"bearerAuth": []}],
        "parameters": parameters,
        "responses": {},
    }


def _query_integer(name: str, low: int, high: int, default: int, description: str) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {**_integer(low, high), "default": default},
    }


def _paths(settings: Settings, max_body_bytes: int) -> Schema:
    user_id_parameter = {
        "name": "userId",
        "in": "path",
        "required": True,
        "schema": _ref("schemas", "UserId"),
        "example": "alice",
    }
    unauthorized = _ref("responses", "Unauthorized")
    too_many = _ref("responses", "TooManyRequests")
    unavailable = _ref("responses", "ServiceUnavailable")
    redirect = _ref("responses", "HttpsRedirect")

    board = _read_operation(
        "A page of the board",
        f"Up to `limit` users from rank `offset + 1` on, highest score first; among equal scores "
        f"whoever reached the score first ranks higher. Rows, `version` and `total` are read "
        f"at one moment. Counts against `READ_RATE_LIMIT` (now {settings.read_rate_limit}).",
        [
            _query_integer("limit", 1, MAX_LIMIT, DEFAULT_LIMIT, "Rows wanted"),
            _query_integer("offset", 0, MAX_OFFSET, 0, "Rows to skip from the top"),
        ],
    )
    board["responses"] = {
        "200": _json(_ref("schemas", "BoardPage"), "The page; `entries` is empty past the end"),
        "308": redirect,
        "400": _error("`limit` or `offset` is not an integer in its range, or given twice"),
        "401": unauthorized,
        "429": too_many,
        "503": unavailable,
    }

    rank = _read_operation(
        "A user's rank and neighbours",
        "The user's row and up to `around` rows on each side, read at one moment. Any valid "
        "token may read anyone's rank. A user appears once a worker has applied their first "
        f"update. Counts against `READ_RATE_LIMIT` (now {settings.read_rate_limit}).",
        [
            user_id_parameter,
            _query_integer(
                "around", 0, MAX_AROUND, DEFAULT_AROUND, "Neighbours wanted on each side"
            ),
        ],
    )
    rank["responses"] = {
        "200": _json(_ref("schemas", "UserRank"), "The user's place on the board"),
        "308": redirect,
        "400": _error(
            f"`around` is not an integer from 0 to {MAX_AROUND}, or `userId` breaks the "
            "identity rule (see the `UserId` schema)"
        ),
        "401": unauthorized,
        "404": _error("`No score for this user`: the user has no applied score"),
        "429": too_many,
        "503": unavailable,
    }

    return {
        "/api/score/update": {
            "post": {
                "tags": ["scores"],
                "summary": "Queue an increment of the caller's own score",
                "description": (
                    "Answered 200 once the broker has confirmed the message; a worker applies "
                    "it a moment later. The body is parsed as JSON whatever its Content-Type. "
                    "Counts against the limit of the token's `tier` (`RATE_LIMITS`, or an "
                    f"admin's override), else `RATE_LIMIT` (now {settings.rate_limit})."
                ),
                "security": [{"bearerAuth": []}],
                "parameters": [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "description": (
                            "Makes a retry safe: the same key from the same user with the same "
                            "body within 24 hours answers the first response again and changes "
                            "nothing; with another body it is 409. 1 to 255 printable ASCII "
                            "characters"
                        ),
                        "schema": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": MAX_KEY_LENGTH,
                            # HTTP strips spaces around a header value, so it cannot start or
                            # end with one.
                            "pattern": "^[!-~](?:[ -~]*[!-~])?$",
                        },
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": _ref("schemas", "ScoreUpdateRequest"),
                            "example": {"userId": "alice", "scoreIncrement": 5},
                        }
                    },
                },
                "responses": {
                    "200": _json(
                        _ref("schemas", "ScoreUpdateAccepted"),
                        "Queued",
                        {
                            "Idempotent-Replayed": {
                                "description": "`true` when this repeats the key's first answer",
                                "schema": {"const": "true"},
                            }
                        },
                    ),
                    "400": _error(
                        "`Invalid score increment` (not a JSON integer from 1 to "
                        f"{settings.max_score_increment}); the body is not JSON, not an object "
                        "or has no valid `userId`; the total would pass 2^53−1; or the "
                        "Idempotency-Key is not 1 to 255 printable ASCII characters"
                    ),
                    "401": unauthorized,
                    "403": _error(
                        "`A user can only update their own score` (`userId` is not the token's "
                        "`sub`), or `HTTPS required`"
                    ),
                    "409": _error(
                        "The Idempotency-Key was used by this user with another body, or its "
                        "first request is still running"
                    ),
                    "413": _error(f"`Request body too large`: over {max_body_bytes} bytes"),
                    "415": _unsupported_encoding(),
                    "429": too_many,
                    "503": unavailable,
                },
            }
        },
        "/api/leaderboard": {"get": board},
        "/api/users/{userId}/rank": {"get": rank},
        "/api/users/{userId}/history": {
            "get": {
                "tags": ["scores"],
                "summary": "The caller's own applied updates, newest first",
                "description": (
                    "Only with a PostgreSQL ledger (`DATABASE_URL`); a page of at most `limit` "
                    "entries older than the entry `before`."
                ),
                "security": [{"bearerAuth": []}],
                "parameters": [
                    user_id_parameter,
                    _query_integer("limit", 1, 100, 20, "Entries wanted"),
                    {
                        "name": "before",
                        "in": "query",
                        "required": False,
                        "description": "`nextBefore` of the previous page",
                        "schema": {"type": "string", "pattern": "^[0-9]+$"},
                    },
                ],
                "responses": {
                    "200": _json(_ref("schemas", "HistoryPage"), "A page of the history"),
                    "308": redirect,
                    "400": _error("`limit` or `before` is not an integer in its range"),
                    "401": unauthorized,
                    "403": _error("`userId` is not the token's `sub`"),
                    "404": _error("This deployment keeps no ledger"),
                    "503": unavailable,
                },
            }
        },
        **_admin_paths(),
        "/api/openapi.json": {
            "get": {
                "tags": ["meta"],
                "summary": "This document",
                "security": [],
                "responses": {
                    "200": _json({"type": "object"}, "The OpenAPI 3.1 document"),
                    "308": redirect,
                },
            }
        },
        "/api/demo": {
            "get": {
                "tags": ["meta"],
                "summary": "The demo token of the single-process mode",
                "description": (
                    "Only when the server runs in the single-process mode and generated its own "
                    "JWT_SECRET (then nothing survives a restart); the live page uses it."
                ),
                "security": [],
                "responses": {
                    "200": _json(_ref("schemas", "DemoToken"), "The demo user and its token"),
                    "308": redirect,
                    "404": _error("No demo token on this deployment"),
                },
            }
        },
        "/healthz": {
            "get": {
                "tags": ["meta"],
                "summary": "Liveness probe; plain HTTP allowed",
                "security": [],
                "responses": {"200": _json(_ref("schemas", "Health"), "The process serves")},
            }
        },
        "/readyz": {
            "get": {
                "tags": ["meta"],
                "summary": "Readiness probe: the backing services answer; plain HTTP allowed",
                "description": (
                    "Also lists the workers whose heartbeat is current. No worker is not an "
                    "error: updates are still accepted and wait in the queue. When OPS_PORT is "
                    "set, served on that port only."
                ),
                "security": [],
                "responses": {
                    "200": _json(_ref("schemas", "Readiness"), "Every backing service answers"),
                    "503": _json(_ref("schemas", "Readiness"), "`message` names the services down"),
                },
            }
        },
        "/metrics": {
            "get": {
                "tags": ["meta"],
                "summary": "This node's Prometheus metrics; plain HTTP allowed",
                "description": (
                    "When METRICS_TOKEN is set, send it as `Authorization: Bearer …`. When "
                    "OPS_PORT is set, served on that port only."
                ),
                "security": [],
                "responses": {
                    "200": {
                        "description": "Prometheus text format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "401": _error("METRICS_TOKEN is set and was not sent"),
                },
            }
        },
        "/": {
            "get": {
                "tags": ["page"],
                "summary": f"The live page: the top {TOP_N} as it changes",
                "security": [],
                "responses": {
                    "200": {
                        "description": "The HTML page; it asks for a token",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    },
                    "308": redirect,
                },
            }
        },
        "/static/{name}": {
            "get": {
                "tags": ["page"],
                "summary": "A file the live page loads",
                "security": [],
                "parameters": [
                    {
                        "name": "name",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": sorted(STATIC_FILES)},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "The file",
                        "content": {
                            media_type: {"schema": {"type": "string"}}
                            for media_type in sorted(set(STATIC_FILES.values()))
                        },
                    },
                    "308": redirect,
                    "404": _error("No such file"),
                },
            }
        },
    }


def openapi_document(settings: Settings) -> Schema:
    """The whole document, with this deployment's limits filled in."""
    # Imported here: app.py imports this module (through routes.py) before defining these.
    from scoreboard.web.app import MAX_BODY_BYTES, SOCKETIO_PATH

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "scoreboard",
            "version": "1.0.0",
            "summary": "Real-time leaderboard: score updates, reads and a live top 10",
            "description": _description(SOCKETIO_PATH),
        },
        "servers": [{"url": "/"}],
        "tags": [
            {"name": "scores", "description": "Posting scores and their history"},
            {"name": "board", "description": "Reading the board"},
            {"name": "meta", "description": "The service itself"},
            {"name": "admin", "description": "Acting on the board and the limits (role admin)"},
            {"name": "page", "description": "The live page in the browser"},
        ],
        "paths": _paths(settings, MAX_BODY_BYTES),
        "components": _components(settings),
    }


async def get_openapi(request: web.Request) -> web.Response:
    """GET /api/openapi.json: no token needed, so integrators can read it first."""
    return web.json_response(openapi_document(request.app[SETTINGS]))
