"""The AsyncAPI 3.0 document of the Socket.IO events, built from scoreboard/api/events.py.

Payload schemas come from the typed declarations (scoreboard/api/models.py), as the OpenAPI
document's do; the operations and messages from the event table. Operations are the server's:
it receives the handshake, `subscribe` and `unsubscribe` and replies, and sends
`leaderboardUpdate`.
"""

from __future__ import annotations

from typing import Any

import msgspec

from scoreboard.api.endpoints import MAX_SOCKET_MESSAGE_BYTES, SOCKETIO_PATH
from scoreboard.api.events import MESSAGES, OPERATIONS, Message
from scoreboard.models import TOP_N

Schema = dict[str, Any]
SERVER = "scoreboard"
CHANNEL = "live"
DEFAULT_HOST = "localhost:3000"

_DESCRIPTION = f"""\
The live top {TOP_N} of the boards a client holds, over Socket.IO v4 (Engine.IO 4, websocket or
HTTP long-polling) on the path `/{SOCKETIO_PATH}/` of the server that serves the REST API
(`/api/openapi.json`). Each message below is a Socket.IO event under its name, or the
acknowledgement of one (`emitWithAck`). A client message may be at most
{MAX_SOCKET_MESSAGE_BYTES // 1024} KiB. Every number is an integer no larger than 2^53−1."""


def _ref(*path: str) -> Schema:
    return {"$ref": "#/" + "/".join(path)}


def _message(message: Message) -> Schema:
    document: Schema = {
        "name": message.name,
        "title": message.name,
        "summary": message.summary,
        "contentType": "application/json",
        "payload": _ref("components", "schemas", message.payload.__name__),
    }
    if message.description:
        document["description"] = message.description
    return document


def _operations() -> Schema:
    channel = _ref("channels", CHANNEL)
    operations: Schema = {}
    for operation in OPERATIONS:
        document: Schema = {
            "action": operation.action,
            "channel": channel,
            "summary": operation.message.summary,
            "messages": [_ref("channels", CHANNEL, "messages", operation.message.name)],
        }
        if operation.replies:
            document["reply"] = {
                "channel": channel,
                "messages": [
                    _ref("channels", CHANNEL, "messages", reply.name) for reply in operation.replies
                ],
            }
        operations[operation.operation] = document
    return operations


def asyncapi_document() -> Schema:
    """The whole document."""
    payloads = sorted({message.payload for message in MESSAGES}, key=lambda kind: kind.__name__)
    _, schemas = msgspec.json.schema_components(
        payloads, ref_template="#/components/schemas/{name}"
    )
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "scoreboard live events",
            "version": "1.0.0",
            "description": _DESCRIPTION,
        },
        "defaultContentType": "application/json",
        "servers": {
            SERVER: {
                "host": "{host}",
                "protocol": "ws",
                "pathname": f"/{SOCKETIO_PATH}/",
                "description": "Socket.IO; `wss` where the server is reached over HTTPS",
                "variables": {
                    "host": {"default": DEFAULT_HOST, "description": "The server's host and port"}
                },
            }
        },
        "channels": {
            CHANNEL: {
                "address": "/",
                "title": "The default Socket.IO namespace",
                "servers": [_ref("servers", SERVER)],
                "messages": {
                    message.name: _ref("components", "messages", message.name)
                    for message in MESSAGES
                },
            }
        },
        "operations": _operations(),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "messages": {message.name: _message(message) for message in MESSAGES},
        },
    }
