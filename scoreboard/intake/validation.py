"""The body of POST /api/score/update: parsed strictly, before anything is queued."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, NoReturn

import orjson

from scoreboard.errors import InvalidRequest, InvalidScoreIncrement
from scoreboard.intake import identities


@dataclass(frozen=True)
class ScoreUpdateRequest:
    """A syntactically valid request: whose score, and by how much."""

    user_id: str
    score_increment: int


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def parse_json(body: bytes) -> Any:
    """Any JSON document; InvalidRequest for anything else, however deep or odd."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        # orjson refuses some bodies the standard library reads (integers past 64 bits, UTF-16):
        # those keep their precise answer, e.g. an invalid scoreIncrement rather than bad JSON.
        try:
            # NaN and Infinity are Python extensions, not JSON.
            return json.loads(body, parse_constant=_reject_constant)
        except (ValueError, RecursionError):
            # ValueError covers integers past Python's digit limit and undecodable bytes too.
            raise InvalidRequest("Request body must be valid JSON") from None


def parse_score_update(body: bytes, max_increment: int) -> ScoreUpdateRequest:
    """Parse and validate the raw body; raise InvalidRequest with a message saying what is wrong."""
    data = parse_json(body)
    if not isinstance(data, dict):
        raise InvalidRequest("Request body must be a JSON object")
    user_id = checked_user_id(data.get("userId"))
    increment = data.get("scoreIncrement")
    # type() rather than isinstance(): True is an int to Python but not to a client.
    if type(increment) is not int or not 1 <= increment <= max_increment:
        raise InvalidScoreIncrement()
    return ScoreUpdateRequest(user_id=user_id, score_increment=increment)


def checked_user_id(raw: object) -> str:
    """A userId from a body or a path, normalised; InvalidRequest says what is wrong."""
    try:
        return identities.user_id(raw)
    except identities.InvalidIdentity as exc:
        raise InvalidRequest(f"userId {exc}") from None
