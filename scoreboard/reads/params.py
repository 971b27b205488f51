"""Query and path values, parsed strictly before anything is read: one rule for every route."""

from __future__ import annotations

from dataclasses import dataclass

from multidict import MultiMapping

from scoreboard.config import MAX_SAFE_INTEGER
from scoreboard.errors import InvalidQuery

DEFAULT_LIMIT = 10
MAX_LIMIT = 100
MAX_OFFSET = MAX_SAFE_INTEGER  # exact in JavaScript, like every number the API sends
DEFAULT_AROUND = 5
MAX_AROUND = 50
_ASCII_DIGITS = frozenset("0123456789")


@dataclass(frozen=True)
class PageQuery:
    """Which rows of the board: `limit` of them from rank `offset + 1` on."""

    limit: int
    offset: int


def parse_page_query(query: MultiMapping[str]) -> PageQuery:
    """?limit=1..100 (default 10) and ?offset=0.. (default 0)."""
    return PageQuery(
        limit=query_integer(query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
        offset=query_integer(query, "offset", 0, 0, MAX_OFFSET),
    )


def parse_around(query: MultiMapping[str]) -> int:
    """?around=0..50 (default 5): neighbours wanted on each side of the user."""
    return query_integer(query, "around", DEFAULT_AROUND, 0, MAX_AROUND)


def query_integer(query: MultiMapping[str], name: str, default: int, low: int, high: int) -> int:
    """?name=… as an integer from `low` to `high`, else InvalidQuery; absent: `default`.

    Plain ASCII decimal only, written the one way a client would write it: no sign, space,
    exponent, leading zero or other script's digits, no more digits than `high` has, one value.
    """
    values = query.getall(name, [])
    if not values:
        return default
    raw = values[0]
    if (
        len(values) == 1
        and 1 <= len(raw) <= len(str(high))
        and _ASCII_DIGITS.issuperset(raw)
        and (raw == "0" or raw[0] != "0")
        and low <= int(raw) <= high
    ):
        return int(raw)
    raise InvalidQuery(f"{name} must be an integer from {low} to {high}")
