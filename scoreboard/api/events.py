"""Every Socket.IO message, declared once: its name, its payload and who sends it to whom.

The AsyncAPI document is built from this table (scoreboard/api/asyncapi.py); the server registers
its handlers under the same names (scoreboard/push/socket_events.py) and a test checks that the
payloads it really sends match the declared types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from scoreboard.api import models
from scoreboard.push.broadcast import LEADERBOARD_EVENT
from scoreboard.push.socket_events import CONNECT_EVENT, SUBSCRIBE_EVENT, UNSUBSCRIBE_EVENT


@dataclass(frozen=True)
class Message:
    """One kind of packet: an event under its Socket.IO name, or an acknowledgement."""

    name: str  # the event name; an acknowledgement travels nameless, this names it in the document
    summary: str
    payload: type
    description: str = ""


@dataclass(frozen=True)
class Operation:
    """What the server does with a message: sends it, or receives it and answers with a reply."""

    operation: str  # the operationId
    action: Literal["send", "receive"]
    message: Message
    replies: tuple[Message, ...] = ()


HANDSHAKE = Message(
    CONNECT_EVENT,
    "Connect: the token, and the boards to hold",
    models.SocketAuth,
    "The `auth` object of the Socket.IO handshake. Clients that cannot send one (not browsers) "
    "may send an `Authorization: Bearer <JWT>` header instead, and then hold `global`. The token "
    "is checked first: an unauthenticated client learns nothing about boards.",
)
REFUSED_CONNECTION = Message(
    "connect_error",
    "The connection is refused, and why",
    models.ConnectionRefused,
    "`Authentication failed`, or what is wrong with `boards`: `Unknown board: nope`, "
    "`boards[1] is not a board id`, `boards must be a list of board ids`.",
)
LEADERBOARD_UPDATE = Message(
    LEADERBOARD_EVENT,
    "A board's top 10: on holding it, then whenever it changes",
    models.LeaderboardUpdate,
    "Sent for each board the connection newly holds (its current top 10), then whenever that "
    "top 10 changes, never when it does not. A payload without `boardId` is `global`'s. Order a "
    "board's payloads by `(season, version)`: with several workers an older one can arrive "
    "late; drop any not newer than the last one seen for that board.",
)
SUBSCRIBE = Message(
    SUBSCRIBE_EVENT,
    "Hold these boards too",
    models.BoardsRequest,
    "Each board newly held is sent at once as a `leaderboardUpdate`, after the acknowledgement.",
)
UNSUBSCRIBE = Message(
    UNSUBSCRIBE_EVENT,
    "Hold these boards no longer",
    models.BoardsRequest,
    "A board not held, or deleted meanwhile, is simply not held afterwards.",
)
BOARDS_HELD = Message(
    "boardsHeld", "Acknowledgement: done; every board now held", models.BoardsHeld
)
REFUSED = Message(
    "refused",
    "Acknowledgement: refused, nothing changed",
    models.Error,
    "A malformed list, an unknown board (`subscribe` only; `Unknown boards: a, b` names each) or "
    "more boards than a connection may hold.",
)

OPERATIONS: tuple[Operation, ...] = (
    Operation("connect", "receive", HANDSHAKE, (REFUSED_CONNECTION,)),
    Operation("pushLeaderboardUpdate", "send", LEADERBOARD_UPDATE),
    Operation("subscribe", "receive", SUBSCRIBE, (BOARDS_HELD, REFUSED)),
    Operation("unsubscribe", "receive", UNSUBSCRIBE, (BOARDS_HELD, REFUSED)),
)
MESSAGES: tuple[Message, ...] = tuple(
    dict.fromkeys(
        message for operation in OPERATIONS for message in (operation.message, *operation.replies)
    )
)
