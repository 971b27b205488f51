"""The query and path values of the read endpoints, parsed strictly before anything is read."""

from __future__ import annotations

import re
from dataclasses import dataclass

from multidict import MultiMapping

from scoreboard.config import MAX_SAFE_INTEGER
from scoreboard.errors import InvalidQuery
from scoreboard.validation import MAX_USER_ID_LENGTH

DEFAULT_LIMIT = 10
MAX_LIMIT = 100
MAX_OFFSET = MAX_SAFE_INTEGER  # exact in JavaScript, like every number the API sends
DEFAULT_AROUND = 5
MAX_AROUND = 50
# Plain decimal digits only: no sign, no spaces, no exponent, at most 16 digits.
_DECIMAL = re.compile(r"[0-9]{1,16}")


@dataclass(frozen=True)
class PageQuery:
    """Which rows of the board: `limit` of them from rank `offset + 1` on."""

    limit: int
    offset: int


def parse_page_query(query: MultiMapping[str]) -> PageQuery:
    """?limit=1..100 (default 10) and ?offset=0.. (default 0)."""
    return PageQuery(
        limit=_integer(query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
        offset=_integer(query, "offset", 0, 0, MAX_OFFSET),
    )


def parse_around(query: MultiMapping[str]) -> int:
    """?around=0..50 (default 5): neighbours wanted on each side of the user."""
    return _integer(query, "around", DEFAULT_AROUND, 0, MAX_AROUND)


def parse_user_id(raw: str) -> str:
    """The {userId} path segment: at most as long as a posted userId may be.

    Any other string is looked up as it is: one no update could carry simply has no score.
    """
    if not raw or len(raw) > MAX_USER_ID_LENGTH:
        raise InvalidQuery(f"userId must be 1 to {MAX_USER_ID_LENGTH} characters")
    return raw


def _integer(query: MultiMapping[str], name: str, default: int, low: int, high: int) -> int:
    values = query.getall(name, [])
    if not values:
        return default
    if len(values) == 1 and _DECIMAL.fullmatch(values[0]) and low <= int(values[0]) <= high:
        return int(values[0])
    raise InvalidQuery(f"{name} must be an integer from {low} to {high}")
