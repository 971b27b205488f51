"""The body of POST /api/score/update: parsed strictly, before anything is queued."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, NoReturn

import orjson

from scoreboard.errors import InvalidRequest, InvalidScoreIncrement

MAX_USER_ID_LENGTH = 128


@dataclass(frozen=True)
class ScoreUpdateRequest:
    """A syntactically valid request: whose score, and by how much."""

    user_id: str
    score_increment: int


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def parse_score_update(body: bytes, max_increment: int) -> ScoreUpdateRequest:
    """Parse and validate the raw body; raise InvalidRequest with a message saying what is wrong."""
    data: Any
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        # orjson refuses some bodies the standard library reads (integers past 64 bits, UTF-16):
        # those keep their precise answer, e.g. an invalid scoreIncrement rather than bad JSON.
        try:
            # NaN and Infinity are Python extensions, not JSON.
            data = json.loads(body, parse_constant=_reject_constant)
        except (ValueError, RecursionError):
            raise InvalidRequest("Request body must be valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidRequest("Request body must be a JSON object")
    user_id = data.get("userId")
    if not isinstance(user_id, str) or not user_id:
        raise InvalidRequest("userId must be a non-empty string")
    if len(user_id) > MAX_USER_ID_LENGTH or not user_id.isprintable():
        raise InvalidRequest(f"userId must be at most {MAX_USER_ID_LENGTH} printable characters")
    increment = data.get("scoreIncrement")
    # type() rather than isinstance(): True is an int to Python but not to a client.
    if type(increment) is not int or not 1 <= increment <= max_increment:
        raise InvalidScoreIncrement()
    return ScoreUpdateRequest(user_id=user_id, score_increment=increment)
