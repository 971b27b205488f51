"""Query parameters, declared as typed structs with their bounds; parsed by one rule everywhere.

Every integer parameter is plain ASCII digits, written the one way a client would write it: no
sign, space, exponent, leading zero or other script's digits, no more digits than its largest
value has, and given once. A parameter naming a board is a board id, given once. Anything else
is 400 with a message naming the parameter and what it takes, from the declaration.
"""

from __future__ import annotations

from typing import Annotated, TypeVar

import msgspec
from multidict import MultiMapping

from scoreboard.boards.model import BOARD_ID_PATTERN, BOARD_ID_SHAPE, is_board_id
from scoreboard.config import MAX_SAFE_INTEGER
from scoreboard.errors import InvalidQuery

DEFAULT_LIMIT = 10
MAX_LIMIT = 100
MAX_OFFSET = MAX_SAFE_INTEGER  # exact in JavaScript, like every number the API sends
DEFAULT_AROUND = 5
MAX_AROUND = 50
DEFAULT_HISTORY_LIMIT = 20
MAX_HISTORY_LIMIT = 100
MAX_ENTRY_ID = 2**63 - 1  # PostgreSQL's bigint
DEFAULT_DEAD_LETTERS_SHOWN = 20
MAX_DEAD_LETTERS_PER_CALL = 1000


class Query(msgspec.Struct, forbid_unknown_fields=False):
    """Base of every declared query: parameters not declared are ignored."""


class BoardQuery(Query):
    """?limit&offset of GET /api/leaderboard."""

    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_LIMIT, description="Rows wanted")] = (
        DEFAULT_LIMIT
    )
    offset: Annotated[
        int, msgspec.Meta(ge=0, le=MAX_OFFSET, description="Rows to skip from the top")
    ] = 0


class RankQuery(Query):
    """?around of GET /api/users/{userId}/rank."""

    around: Annotated[
        int, msgspec.Meta(ge=0, le=MAX_AROUND, description="Neighbours wanted on each side")
    ] = DEFAULT_AROUND


class HistoryQuery(Query):
    """?limit&before of GET /api/users/{userId}/history."""

    limit: Annotated[
        int, msgspec.Meta(ge=1, le=MAX_HISTORY_LIMIT, description="Entries wanted")
    ] = DEFAULT_HISTORY_LIMIT
    before: (
        Annotated[
            int,
            msgspec.Meta(ge=1, le=MAX_ENTRY_ID, description="`nextBefore` of the previous page"),
        ]
        | None
    ) = None


class DeadLetterPeekQuery(Query):
    """?limit of GET /api/admin/dead-letters."""

    limit: Annotated[
        int, msgspec.Meta(ge=1, le=MAX_DEAD_LETTERS_PER_CALL, description="Dead letters shown")
    ] = DEFAULT_DEAD_LETTERS_SHOWN


class DeadLetterReplayQuery(Query):
    """?limit of POST /api/admin/dead-letters/replay."""

    limit: Annotated[
        int,
        msgspec.Meta(ge=1, le=MAX_DEAD_LETTERS_PER_CALL, description="Dead letters replayed"),
    ] = MAX_DEAD_LETTERS_PER_CALL


class RemoveUserQuery(Query):
    """?board of DELETE /api/admin/users/{userId}."""

    board: (
        Annotated[
            str,
            msgspec.Meta(
                pattern=BOARD_ID_PATTERN, description="Only this board (default: every board)"
            ),
        ]
        | None
    ) = None


Q = TypeVar("Q", bound=Query)
_ASCII_DIGITS = frozenset("0123456789")


def parse_query(model: type[Q], query: MultiMapping[str]) -> Q:
    """The declared parameters of `model` read from `query`; InvalidQuery names a bad one."""
    values: dict[str, int | str] = {}
    for field in integer_fields(model):
        given = query.getall(field.name, [])
        if not given:
            continue
        raw = given[0]
        if (
            len(given) == 1
            and 1 <= len(raw) <= len(str(field.high))
            and _ASCII_DIGITS.issuperset(raw)
            and (raw == "0" or raw[0] != "0")
            and field.low <= int(raw) <= field.high
        ):
            values[field.name] = int(raw)
        else:
            raise InvalidQuery(f"{field.name} must be an integer from {field.low} to {field.high}")
    for board in board_id_fields(model):
        given = query.getall(board.name, [])
        if not given:
            continue
        if len(given) != 1 or not is_board_id(given[0]):
            raise InvalidQuery(f"{board.name} must be a board id: {BOARD_ID_SHAPE}")
        values[board.name] = given[0]
    return msgspec.convert(values, model)


class IntegerField(msgspec.Struct, frozen=True):
    """One declared integer parameter and its bounds."""

    name: str
    low: int
    high: int
    default: int | None
    description: str | None


class BoardIdField(msgspec.Struct, frozen=True):
    """One declared parameter naming a board; absent, it names none."""

    name: str
    description: str | None


_FIELDS: dict[type[Query], tuple[tuple[IntegerField, ...], tuple[BoardIdField, ...]]] = {}


def integer_fields(model: type[Query]) -> tuple[IntegerField, ...]:
    """The integer parameters `model` declares, for parsing and for the API document."""
    return _declared(model)[0]


def board_id_fields(model: type[Query]) -> tuple[BoardIdField, ...]:
    """The parameters naming a board that `model` declares."""
    return _declared(model)[1]


def _declared(model: type[Query]) -> tuple[tuple[IntegerField, ...], tuple[BoardIdField, ...]]:
    if (known := _FIELDS.get(model)) is not None:
        return known
    integers, boards = [], []
    info = msgspec.inspect.type_info(model)
    assert isinstance(info, msgspec.inspect.StructType)
    for field in info.fields:
        kind = field.type
        if isinstance(kind, msgspec.inspect.UnionType):  # `int | None`: optional, no default
            [kind] = [t for t in kind.types if not isinstance(t, msgspec.inspect.NoneType)]
        description = None
        if isinstance(kind, msgspec.inspect.Metadata):
            description = (kind.extra_json_schema or {}).get("description")
            kind = kind.type
        if isinstance(kind, msgspec.inspect.StrType) and kind.pattern == BOARD_ID_PATTERN:
            boards.append(BoardIdField(field.encode_name, description))
            continue
        if not isinstance(kind, msgspec.inspect.IntType) or kind.ge is None or kind.le is None:
            raise TypeError(
                f"{model.__name__}.{field.name}: only bounded integers and board ids are declared"
            )
        default = None if field.default in (msgspec.NODEFAULT, None) else field.default
        integers.append(IntegerField(field.encode_name, kind.ge, kind.le, default, description))
    _FIELDS[model] = result = (tuple(integers), tuple(boards))
    return result
