"""The OpenAPI 3.1 document, built from the declarations in scoreboard/api once per process.

Schemas come from the typed bodies (scoreboard/api/models.py), parameters from the declared
queries (scoreboard/api/queries.py), operations from the endpoint table
(scoreboard/api/endpoints.py); only the prose and the shared answers are written here.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from scoreboard.api import models
from scoreboard.api.endpoints import (
    ENDPOINTS,
    HTTPS_REDIRECT,
    MAX_BODY_BYTES,
    NOT_ADMIN,
    PATH_PARAMETERS,
    SOCKETIO_PATH,
    TOO_MANY,
    UNAUTHORIZED,
    UNAVAILABLE,
    UNSUPPORTED_ENCODING,
    Answer,
    Endpoint,
)
from scoreboard.api.queries import board_id_fields, integer_fields
from scoreboard.config import Settings
from scoreboard.models import TOP_N
from scoreboard.push.broadcast import LEADERBOARD_EVENT

Schema = dict[str, Any]
TAGS = {
    "scores": "Posting scores and their history",
    "board": "Reading the board",
    "boards": "The leaderboards of the deployment: scores, reads and settings",
    "meta": "The service itself",
    "admin": "Acting on the boards and the limits (role admin)",
    "page": "The live page in the browser",
}
_PATH_PARAMETER = re.compile(r"\{([^}]+)\}")


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
socket.on("{LEADERBOARD_EVENT}", ({{ version, top10 }}) => {{ /* … */ }});
```

**Event `{LEADERBOARD_EVENT}`** (server to client; the payload is the schema `LeaderboardUpdate`):

```json
{{"event": "{LEADERBOARD_EVENT}", "version": 12,
 "top10": [{{"userId": "bob", "username": "Bob", "score": 40}},
           {{"userId": "alice", "username": "Alice", "score": 35}}]}}
```

Sent once right after connecting (the current board) and then whenever the top {TOP_N} changes
(a score, the order or a name in it), never when it does not. `top10` is highest first, at most
{TOP_N} rows; among equal scores whoever reached the score first comes first, the same order as
`GET /api/leaderboard`. `version` grows by one with every change of the top {TOP_N}; a fresh
board is version 0 with an empty `top10`. With several workers an older version can arrive after
a newer one: drop any `version` not greater than the last one shown on this connection.

**Other boards.** That is the board `global`, what a client that chooses nothing receives. A
client chooses boards with `auth: {{token, boards: ["weekly", …]}}` or later with the events
`subscribe` / `unsubscribe` carrying `{{"boards": […]}}` (acknowledged with the boards now held);
their pushes add `boardId` and `season` to the payload, and versions count per board and season.
Every event and payload is declared in the AsyncAPI 3.0 document at `/api/asyncapi.json`; the
project's docs/events.md gives every rule.
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


def _shared_answers() -> Schema:
    error = _ref("schemas", "Error")
    retry_after = {"Retry-After": _ref("headers", "RetryAfter")}
    return {
        UNAUTHORIZED: _json(
            error,
            "`Authentication failed`: the token is missing, malformed, badly signed, expired, "
            "uses another algorithm than its key's, or lacks `sub` or `exp`",
        ),
        TOO_MANY: _json(error, "`Too many requests`: over this user's rate limit", retry_after),
        UNAVAILABLE: _json(
            error, "A backing service (Redis, the broker) did not answer; retry later", retry_after
        ),
        HTTPS_REDIRECT: {
            "description": "The request came over plain HTTP: the same URL under https://",
            "headers": {
                "Location": {"required": True, "schema": {"type": "string", "format": "uri"}}
            },
        },
        NOT_ADMIN: _json(error, "`This needs a token with role admin`"),
        UNSUPPORTED_ENCODING: _json(
            error,
            "`Content-Encoding must be gzip, deflate or identity`: the body comes in another "
            "coding",
        ),
    }


_RESPONSE_HEADERS: Schema = {
    "Idempotent-Replayed": {
        "description": "`true` when this repeats the key's first answer",
        "schema": {"const": "true"},
    },
}


def _schemas(settings: Settings) -> Schema:
    """Every declared body as a component; answers on their own also carry `status`."""
    answers: set[type] = {
        answer.body
        for endpoint in ENDPOINTS
        for answer in endpoint.answers.values()
        if answer.body is not None
    }
    requests = {
        models.score_update_request(settings.max_score_increment),
        models.board_score_request(max(settings.max_score, settings.max_score_increment)),
    }
    every: set[type] = {*answers, models.LeaderboardUpdate, models.BoardSettings, *requests}
    types = sorted(every, key=lambda kind: kind.__name__)
    _, components = msgspec.json.schema_components(
        types, ref_template="#/components/schemas/{name}"
    )
    for body in answers:
        schema = components[body.__name__]
        if "status" not in schema["properties"]:
            schema["properties"] = {"status": {"const": "success"}, **schema["properties"]}
            schema["required"] = ["status", *schema.get("required", [])]
    components["UserId"] = msgspec.json.schema(models.UserId)
    components["BoardId"] = msgspec.json.schema(models.BoardId)
    components["Season"] = msgspec.json.schema(models.Season)
    components["RateLimits"] = msgspec.json.schema(models.RateLimits)
    return dict(sorted(components.items()))


def _parameters(endpoint: Endpoint) -> list[Schema]:
    parameters: list[Schema] = []
    for name in _PATH_PARAMETER.findall(endpoint.path):
        if name in endpoint.path_enums:
            schema: Schema = {"type": "string", "enum": list(endpoint.path_enums[name])}
            parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
        else:
            schema_name, example = PATH_PARAMETERS[name]
            parameters.append(
                {
                    "name": name,
                    "in": "path",
                    "required": True,
                    "schema": _ref("schemas", schema_name),
                    "example": example,
                }
            )
    for field in integer_fields(endpoint.query) if endpoint.query is not None else ():
        schema = {"type": "integer", "minimum": field.low, "maximum": field.high}
        if field.default is not None:
            schema["default"] = field.default
        parameters.append(
            {
                "name": field.name,
                "in": "query",
                "required": False,
                "description": field.description,
                "schema": schema,
            }
        )
    for board in board_id_fields(endpoint.query) if endpoint.query is not None else ():
        parameters.append(
            {
                "name": board.name,
                "in": "query",
                "required": False,
                "description": board.description,
                "schema": _ref("schemas", "BoardId"),
            }
        )
    for header in endpoint.headers:
        parameters.append(
            {
                "name": header.name,
                "in": "header",
                "required": False,
                "description": header.description,
                "schema": {
                    "type": "string",
                    "minLength": header.min_length,
                    "maxLength": header.max_length,
                    "pattern": header.pattern,
                },
            }
        )
    return parameters


def _answer(answer: Answer, values: dict[str, object]) -> Schema:
    if answer.shared is not None:
        return _ref("responses", answer.shared)
    description = answer.description.format(**values)
    headers = {name: _RESPONSE_HEADERS[name] for name in answer.headers}
    if answer.body is not None:
        return _json(_ref("schemas", answer.body.__name__), description, headers)
    if answer.media_types == ("application/json",):
        return _json({"type": "object"}, description)
    return {
        "description": description,
        "content": {media: {"schema": {"type": "string"}} for media in answer.media_types},
    }


def _operation(endpoint: Endpoint, values: dict[str, object]) -> Schema:
    operation: Schema = {
        "operationId": endpoint.operation,
        "tags": [endpoint.tag],
        "summary": endpoint.summary,
    }
    if endpoint.description:
        operation["description"] = endpoint.description.format(**values)
    operation["security"] = [{"bearerAuth": []}] if endpoint.auth else []
    if parameters := _parameters(endpoint):
        operation["parameters"] = parameters
    if endpoint.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {
                    "schema": _ref("schemas", endpoint.body),
                    "example": endpoint.body_example,
                }
            },
        }
    operation["responses"] = {
        str(status): _answer(answer, values) for status, answer in sorted(endpoint.answers.items())
    }
    return operation


def openapi_document(settings: Settings) -> Schema:
    """The whole document, with this deployment's limits filled in."""
    values: dict[str, object] = {
        "rate_limit": settings.rate_limit,
        "read_rate_limit": settings.read_rate_limit,
        "max_increment": settings.max_score_increment,
        "max_score": settings.max_score,
        "max_body_bytes": MAX_BODY_BYTES,
    }
    paths: Schema = {}
    for endpoint in ENDPOINTS:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint, values)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "scoreboard",
            "version": "1.0.0",
            "summary": "Real-time leaderboard: score updates, reads and a live top 10",
            "description": _description(SOCKETIO_PATH),
        },
        "servers": [{"url": "/"}],
        "tags": [{"name": name, "description": text} for name, text in TAGS.items()],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": (
                        "A JWT signed with a key the service trusts (JWT_SECRET: HS256, "
                        "JWT_PUBLIC_KEY or JWKS_URL: RS256 or ES256) with a `sub` (the user id) "
                        "and, unless JWT_REQUIRE_EXP=0, an `exp`. The board shows the `name` "
                        "claim, else `preferred_username`, else `sub`. A `tier` claim picks the "
                        "write limit and queue priority; `role: admin` opens the admin endpoints."
                    ),
                }
            },
            "headers": {
                "RetryAfter": {
                    "description": "Seconds to wait before retrying",
                    "required": True,
                    "schema": {"type": "integer", "minimum": 1},
                }
            },
            "schemas": _schemas(settings),
            "responses": _shared_answers(),
        },
    }
