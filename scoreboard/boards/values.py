"""A user's value on a board after one update: apply.lua's rules, for the ledger and the
single process's memory store (tests check all three agree)."""

from __future__ import annotations

from scoreboard.boards.model import Operator, Order


def value_after(operator: Operator, order: Order, current: int | None, posted: int) -> int | None:
    """The user's new value once `posted` is applied to `current` (None: no value yet).

    None when the value does not change: the user keeps the place they reached first.
    """
    if operator == "incr":
        return (current or 0) + posted
    if current is None:
        return posted
    if current == posted:
        return None
    if operator == "best" and (current > posted if order == "desc" else current < posted):
        return None
    return posted
