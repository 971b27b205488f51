"""What a board is: its id, how it combines scores, which way it ranks, when its season resets.

The rules here are the one source for validation, the OpenAPI document and the stores.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, get_args

Operator = Literal["incr", "best", "set"]
Order = Literal["desc", "asc"]
Reset = Literal["never", "daily", "weekly", "monthly"]

OPERATORS: tuple[str, ...] = get_args(Operator)
ORDERS: tuple[str, ...] = get_args(Order)
RESETS: tuple[str, ...] = get_args(Reset)

BOARD_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
MAX_BOARD_NAME_LENGTH = 64
GLOBAL_BOARD_ID = "global"
BOARD_ID_SHAPE = "1 to 64 of a-z, 0-9, '_' and '-', starting with a letter or digit"
BOARD_ID_RULE = f"boardId must be {BOARD_ID_SHAPE}"
_BOARD_ID = re.compile(BOARD_ID_PATTERN)


def is_board_id(text: str) -> bool:
    return _BOARD_ID.fullmatch(text) is not None


@dataclass(frozen=True)
class Board:
    """A leaderboard's settings; its scores and seasons live in the stores."""

    board_id: str
    name: str
    operator: Operator = "incr"
    order: Order = "desc"
    reset: Reset = "never"
    authoritative: bool = False  # only service tokens may write


# Always there, exactly SPEC.md's board: POST /api/score/update and GET /api/leaderboard use it.
GLOBAL_BOARD = Board(GLOBAL_BOARD_ID, "Global")
