"""Request bodies, decoded into their declared types (scoreboard/api/models.py) before anything
is queued; every refusal is a 400 saying what is wrong.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import msgspec

from scoreboard.api.models import (
    BoardSettings,
    RateLimits,
    board_score_request,
    score_update_request,
)
from scoreboard.boards.model import (
    BOARD_ID_PATTERN,
    MAX_BOARD_NAME_LENGTH,
    OPERATORS,
    ORDERS,
    RESETS,
    is_board_id,
)
from scoreboard.config import MAX_SAFE_INTEGER
from scoreboard.errors import InvalidQuery, InvalidRequest, InvalidScoreIncrement
from scoreboard.intake import identities

T = TypeVar("T")
INVALID_JSON = "Request body must be valid JSON"
MAX_NAME_SHOWN = 64  # of an unknown field's name in the answer


class ScoreUpdateRequest(msgspec.Struct, frozen=True):
    """A valid request: whose score (normalised), and by how much."""

    user_id: str
    score_increment: int


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def decode(body: bytes, decoder: msgspec.json.Decoder[T], refusals: Refusals) -> T:
    """`body` as the decoder's declared type; InvalidRequest says what is wrong, as documented.

    The typed decode is the fast path. A body it refuses is read again untyped so the answer
    names the first wrong field in declaration order, whatever order the client wrote them in.
    """
    try:
        return decoder.decode(body)
    except (msgspec.DecodeError, RecursionError):
        pass
    document = _untyped(body)
    if not isinstance(document, dict):
        raise InvalidRequest("Request body must be a JSON object")
    declared: type[msgspec.Struct] = decoder.type  # type: ignore[assignment]
    fields = msgspec.structs.fields(declared)
    for field in fields:
        value = document.get(field.encode_name, _MISSING)
        if value is _MISSING and not field.required:
            continue
        try:
            msgspec.convert(value, field.type)
        except msgspec.ValidationError:
            raise refusals.get(field.encode_name, InvalidRequest)() from None
    if declared.__struct_config__.forbid_unknown_fields:
        known = {field.encode_name for field in fields}
        for name in document:
            if name not in known:
                raise InvalidRequest(f"Unknown field {json.dumps(name[:MAX_NAME_SHOWN])}")
    return msgspec.convert(document, decoder.type)  # type: ignore[no-any-return]


Refusals = dict[str, Callable[[], InvalidRequest]]  # by field: the exception to raise
_MISSING = msgspec.UNSET  # converts to no declared field type


def _untyped(body: bytes) -> Any:
    try:
        return msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):
        pass
    # msgspec reads UTF-8 only; the standard library also reads UTF-16 and UTF-32 bodies, and
    # those keep their precise answer (an invalid scoreIncrement rather than bad JSON).
    try:
        # NaN and Infinity are Python extensions, not JSON.
        return json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        # ValueError covers integers past Python's digit limit and undecodable bytes too.
        raise InvalidRequest(INVALID_JSON) from None


@functools.lru_cache(maxsize=8)
def _score_update_decoder(max_increment: int) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(score_update_request(max_increment))


_SCORE_UPDATE_REFUSALS: Refusals = {
    "userId": lambda: InvalidRequest("userId must be a non-empty string"),
    "scoreIncrement": InvalidScoreIncrement,
}


def parse_score_update(body: bytes, max_increment: int) -> ScoreUpdateRequest:
    """Parse and validate the raw body; raise InvalidRequest with a message saying what is wrong."""
    request = decode(body, _score_update_decoder(max_increment), _SCORE_UPDATE_REFUSALS)
    return ScoreUpdateRequest(checked_user_id(request.user_id), request.score_increment)


class BoardScoreRequest(msgspec.Struct, frozen=True):
    """A valid score for a board: whose (normalised), the value, and a service's name for them."""

    user_id: str
    score: int
    username: str | None


@functools.lru_cache(maxsize=8)
def _board_score_decoder(max_score: int) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(board_score_request(max_score))


def parse_board_score(body: bytes, max_score: int) -> BoardScoreRequest:
    """The body of POST /api/boards/{boardId}/scores; InvalidRequest says what is wrong.

    The score's range depends on the board (checked_board_score), this only bounds it.
    """
    refusals: Refusals = {
        "userId": lambda: InvalidRequest("userId must be a non-empty string"),
        "score": lambda: InvalidRequest(f"score must be a JSON integer from 0 to {max_score}"),
        "username": lambda: InvalidRequest("username must be a string of 1 to 256 characters"),
    }
    request = decode(body, _board_score_decoder(max_score), refusals)
    return BoardScoreRequest(checked_user_id(request.user_id), request.score, request.username)


def checked_board_score(score: int, operator: str, max_increment: int, max_score: int) -> int:
    """`score` when the board's operator takes it: an increment, or a score itself."""
    low, high = (1, max_increment) if operator == "incr" else (0, max_score)
    if not low <= score <= high:
        what = "an increment, " if operator == "incr" else ""
        raise InvalidRequest(f"score on this board is {what}a JSON integer from {low} to {high}")
    return score


_RATE_LIMITS = msgspec.json.Decoder(RateLimits)


def parse_rate_limits(body: bytes) -> dict[str, str]:
    """The body of PUT /api/admin/rate-limits: a JSON object of tier to limit."""
    try:
        return _RATE_LIMITS.decode(body)
    except (msgspec.DecodeError, RecursionError):
        document = _untyped(body)
    if not isinstance(document, dict) or not all(isinstance(v, str) for v in document.values()):
        raise InvalidRequest("Rate limit overrides must be a JSON object of tier to limit")
    return document


_BOARD_SETTINGS = msgspec.json.Decoder(BoardSettings)
_BAD_BOARD_NAME = f"name must be 1 to {MAX_BOARD_NAME_LENGTH} printable characters"


def _one_of(field: str, values: tuple[str, ...]) -> Callable[[], InvalidRequest]:
    return lambda: InvalidRequest(f"{field} must be one of {', '.join(values)}")


_BOARD_SETTINGS_REFUSALS: Refusals = {
    "name": lambda: InvalidRequest(_BAD_BOARD_NAME),
    "operator": _one_of("operator", OPERATORS),
    "order": _one_of("order", ORDERS),
    "reset": _one_of("reset", RESETS),
    "authoritative": lambda: InvalidRequest("authoritative must be true or false"),
}


def parse_board_settings(body: bytes) -> BoardSettings:
    """The body of PUT /api/admin/boards/{boardId}, its name cleaned as display names are."""
    settings = decode(body, _BOARD_SETTINGS, _BOARD_SETTINGS_REFUSALS)
    name = identities.cleaned_name(settings.name)
    if not 1 <= len(name) <= MAX_BOARD_NAME_LENGTH:
        raise InvalidRequest(_BAD_BOARD_NAME)
    return msgspec.structs.replace(settings, name=name)


def checked_board_id(raw: str) -> str:
    """A `{boardId}` from a path; InvalidQuery when it breaks the rule."""
    if not is_board_id(raw):
        raise InvalidQuery(f"boardId must match {BOARD_ID_PATTERN}")
    return raw


_SEASON_DIGITS = re.compile(r"[1-9][0-9]{0,15}")


def checked_season(raw: str) -> int:
    """A `{season}` from a path: plain digits, 1 to 2^53-1; InvalidQuery else."""
    if not _SEASON_DIGITS.fullmatch(raw) or int(raw) > MAX_SAFE_INTEGER:
        raise InvalidQuery(f"season must be a season number from 1 to {MAX_SAFE_INTEGER}")
    return int(raw)


def checked_user_id(raw: object) -> str:
    """A userId from a body or a path, normalised; InvalidRequest says what is wrong."""
    try:
        return identities.user_id(raw)
    except identities.InvalidIdentity as exc:
        raise InvalidRequest(f"userId {exc}") from None
