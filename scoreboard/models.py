"""The domain: a score update travelling through the queue, and the board it changes."""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from scoreboard.boards.model import (
    GLOBAL_BOARD,
    GLOBAL_BOARD_ID,
    OPERATORS,
    ORDERS,
    Board,
    Operator,
    Order,
    is_board_id,
)
from scoreboard.errors import PoisonMessage
from scoreboard.ops.request_ids import acceptable_request_id

# Queue message formats: 1 carries one update (before group commit), 2 a group of them.
SINGLE_UPDATE_FORMAT = 1
GROUP_FORMAT = 2
TOP_N = 10


@dataclass(frozen=True)
class ScoreUpdate:
    """One accepted score update of one user on one board, as the worker receives it.

    `increment` is what was posted: the amount added on an `incr` board, the submitted score
    on a `best` or `set` board. `operator` and `order` travel with the update so a worker
    applies it as the board was when it was accepted.
    """

    message_id: str
    user_id: str
    username: str
    increment: int
    accepted_at: float
    request_id: str | None = None  # the HTTP request that queued it, for the worker's logs
    board_id: str = GLOBAL_BOARD_ID
    season: int = 1
    operator: Operator = "incr"
    order: Order = "desc"
    # Its place in the order updates were accepted in (boards other than `global`): a worker
    # applying a user's updates out of order still ends on the newest `set` (apply.lua).
    accepted_seq: int | None = None

    @classmethod
    def new(
        cls,
        user_id: str,
        username: str,
        increment: int,
        request_id: str | None = None,
        board: Board = GLOBAL_BOARD,
        season: int = 1,
    ) -> ScoreUpdate:
        return cls(
            message_id=uuid.uuid4().hex,
            user_id=user_id,
            username=username,
            increment=increment,
            accepted_at=time.time(),
            request_id=request_id,
            board_id=board.board_id,
            season=season,
            operator=board.operator,
            order=board.order,
        )

    @functools.cached_property
    def entry(self) -> bytes:
        """The update as one JSON object of a queue message, encoded once; raises if it cannot."""
        fields: dict[str, Any] = {
            "id": self.message_id,
            "userId": self.user_id,
            "username": self.username,
            "increment": self.increment,
            "acceptedAt": self.accepted_at,
        }
        if self.request_id is not None:
            fields["requestId"] = self.request_id
        if self.board_id != GLOBAL_BOARD_ID:  # global's entries stay as before boards existed
            fields.update(board=self.board_id, season=self.season, op=self.operator)
            fields["order"] = self.order
            if self.accepted_seq is not None:
                fields["seq"] = self.accepted_seq
        return orjson.dumps(fields)

    @property
    def message(self) -> bytes:
        """This update alone as a format-1 message: what versions before group commit published."""
        return b'{"v":%d,%s' % (SINGLE_UPDATE_FORMAT, self.entry[1:])

    @classmethod
    def from_entry(cls, data: object) -> ScoreUpdate:
        """Decode one update's JSON object; raise PoisonMessage for anything malformed."""
        if not isinstance(data, dict):
            raise PoisonMessage("a score update must be a JSON object")
        message_id, user_id = data.get("id"), data.get("userId")
        username, increment = data.get("username"), data.get("increment")
        accepted_at = data.get("acceptedAt")
        board_id, season = data.get("board", GLOBAL_BOARD_ID), data.get("season", 1)
        operator, order = data.get("op", "incr"), data.get("order", "desc")
        accepted_seq = data.get("seq")
        if not (
            isinstance(message_id, str)
            and message_id
            and isinstance(user_id, str)
            and user_id
            and isinstance(username, str)
            and type(increment) is int
            and (increment > 0 if operator == "incr" else increment >= 0)
            and isinstance(accepted_at, (int, float))
            and isinstance(board_id, str)
            and is_board_id(board_id)
            and type(season) is int
            and season > 0
            and operator in OPERATORS
            and order in ORDERS
            and (accepted_seq is None or (type(accepted_seq) is int and accepted_seq > 0))
        ):
            raise PoisonMessage("score update message with missing or mistyped fields")
        # Optional and only for tracing: a message without a usable one is still applied.
        request_id = acceptable_request_id(data.get("requestId"))
        return cls(
            message_id,
            user_id,
            username,
            increment,
            float(accepted_at),
            request_id,
            board_id,
            season,
            operator,
            order,
            accepted_seq,
        )

    @classmethod
    def from_message(cls, body: bytes) -> ScoreUpdate:
        """Decode a message of exactly one update, in either format; raise PoisonMessage else."""
        entries = decode_message(body)
        if len(entries) != 1:
            raise PoisonMessage(f"a message of {len(entries)} updates where one was expected")
        if isinstance(entries[0], PoisonMessage):
            raise entries[0]
        return entries[0]


def encode_group(updates: Sequence[ScoreUpdate]) -> bytes:
    """One queue message (format 2) carrying every update of a group, in order."""
    return b'{"v":%d,"updates":[%s]}' % (
        GROUP_FORMAT,
        b",".join(update.entry for update in updates),
    )


def decode_message(body: bytes) -> list[ScoreUpdate | PoisonMessage]:
    """Every update a queue message of either format carries, each decoded on its own.

    Raises PoisonMessage when the message as a whole is unreadable; an entry that is malformed
    comes back as its PoisonMessage, so its valid neighbours are still applied.
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PoisonMessage(f"not JSON: {exc}") from None
    version = data.get("v") if isinstance(data, dict) else None
    if version == SINGLE_UPDATE_FORMAT:
        return [_decoded(data)]
    if version == GROUP_FORMAT and isinstance(data.get("updates"), list) and data["updates"]:
        return [_decoded(entry) for entry in data["updates"]]
    raise PoisonMessage("not a score update message of a known version")


def _decoded(entry: object) -> ScoreUpdate | PoisonMessage:
    try:
        return ScoreUpdate.from_entry(entry)
    except PoisonMessage as exc:
        return exc


@dataclass(frozen=True)
class LeaderboardEntry:
    """One row of the top 10."""

    user_id: str
    username: str
    score: int

    def to_json(self) -> dict[str, Any]:
        return {"userId": self.user_id, "username": self.username, "score": self.score}


@dataclass(frozen=True)
class Leaderboard:
    """The top of a board at one `version`; versions only grow, so clients drop stale ones."""

    version: int
    top: tuple[LeaderboardEntry, ...]
    board_id: str = GLOBAL_BOARD_ID
    season: int = 1


@dataclass(frozen=True)
class UserStanding:
    """A user's whole place on the board: what a rebuild restores and an adoption records."""

    user_id: str
    username: str
    score: int
    sequence: int  # when the user reached `score`; the earlier, the higher among equal scores
    latest_set: int | None = None  # the acceptance order of their newest `set` (apply.lua)
