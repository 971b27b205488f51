"""The domain: a score update travelling through the queue, and the board it changes."""

from __future__ import annotations

import functools
import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from scoreboard.errors import PoisonMessage
from scoreboard.ops.request_ids import acceptable_request_id

MESSAGE_FORMAT_VERSION = 1
TOP_N = 10


@dataclass(frozen=True)
class ScoreUpdate:
    """One accepted increment of one user's score, as the worker receives it."""

    message_id: str
    user_id: str
    username: str
    increment: int
    accepted_at: float
    request_id: str | None = None  # the HTTP request that queued it, for the worker's logs

    @classmethod
    def new(
        cls, user_id: str, username: str, increment: int, request_id: str | None = None
    ) -> ScoreUpdate:
        return cls(
            message_id=uuid.uuid4().hex,
            user_id=user_id,
            username=username,
            increment=increment,
            accepted_at=time.time(),
            request_id=request_id,
        )

    @functools.cached_property
    def message(self) -> bytes:
        """The queue message, encoded once; raises if the update cannot be encoded at all."""
        message: dict[str, Any] = {
            "v": MESSAGE_FORMAT_VERSION,
            "id": self.message_id,
            "userId": self.user_id,
            "username": self.username,
            "increment": self.increment,
            "acceptedAt": self.accepted_at,
        }
        if self.request_id is not None:
            message["requestId"] = self.request_id
        return orjson.dumps(message)

    @classmethod
    def from_message(cls, body: bytes) -> ScoreUpdate:
        """Decode a queued message; raise PoisonMessage for anything malformed."""
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise PoisonMessage(f"not JSON: {exc}") from None
        if not isinstance(data, dict) or data.get("v") != MESSAGE_FORMAT_VERSION:
            raise PoisonMessage("not a score update message of a known version")
        message_id, user_id = data.get("id"), data.get("userId")
        username, increment = data.get("username"), data.get("increment")
        accepted_at = data.get("acceptedAt")
        if not (
            isinstance(message_id, str)
            and message_id
            and isinstance(user_id, str)
            and user_id
            and isinstance(username, str)
            and type(increment) is int
            and increment > 0
            and isinstance(accepted_at, (int, float))
        ):
            raise PoisonMessage("score update message with missing or mistyped fields")
        # Optional and only for tracing: a message without a usable one is still applied.
        request_id = acceptable_request_id(data.get("requestId"))
        return cls(message_id, user_id, username, increment, float(accepted_at), request_id)


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
    """The top of the board at one `version`; versions only grow, so clients drop stale ones."""

    version: int
    top: tuple[LeaderboardEntry, ...]


@dataclass(frozen=True)
class UserStanding:
    """A user's whole place on the board: what a rebuild restores and an adoption records."""

    user_id: str
    username: str
    score: int
    sequence: int  # when the user reached `score`; the earlier, the higher among equal scores
